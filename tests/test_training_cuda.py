"""Training on CUDA (issue 18): which speed techniques a device gets, the compiled and CUDA-graph steps, their
fallbacks, the wall-time projection, and ``benchmarks/bench_train.py --device cuda``.

Everything that does not need a GPU runs everywhere: the plan from made-up
device capabilities (an H100, a V100, CPUs with and without native bf16),
the :class:`~genverify.models.steps.StepRunner` state machine with a stand-in
for torch's CUDA graphs (capture records, replay re-runs: on the CPU that must
give exactly the eager step's numbers), the fallbacks when a capture or a
compile fails, the projection arithmetic, the benchmark's CUDA report with
stand-ins, and its one-line exit on a machine without CUDA. The tests at the
end need a GPU and are skipped without one (with the reason).
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
import warnings
from pathlib import Path

import pytest
import torch

from genverify.core import ParameterError
from genverify.models import steps as S
from genverify.models import training as T
from genverify.models.devices import Capability, capability, use_bf16

H100 = Capability("cuda", native_bf16=True, cuda_graphs=True, name="NVIDIA H100 80GB HBM3")
V100 = Capability("cuda", native_bf16=False, cuda_graphs=True, name="Tesla V100-SXM2-16GB")
CPU_BF16 = Capability("cpu", native_bf16=True, name="cpu")
CPU_FP32 = Capability("cpu", native_bf16=False, name="cpu")
MPS = Capability("mps", name="mps")

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")

TINY = {
    "nice": dict(n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8),
    "vae": dict(vae_arch="mlp", mlp_hidden=(8,), latent_dim=2),
    "conv": dict(hidden_channels=8, residual_channels=4, latent_channels=2),
}


@pytest.fixture
def one_thread():
    # Tiny models: with two threads on cores other processes share, OpenMP's barriers cost more than the work.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(kind="nice", **kw):
    model = "nice" if kind == "nice" else "vae"
    settings = dict(TINY[kind], model=model, preset="test", epochs=2, batch_size=16, precision="fp32",
                    device="cpu", seed=3)
    settings.update(kw)
    return T.TrainConfig(**settings)


# ---------------------------------------------------------------- the plan


@pytest.mark.parametrize("model", ["nice", "vae"])
def test_homework_preset_on_an_h100_uses_every_technique(model):
    plan = S.plan_step(T.preset("homework", model), H100)
    assert plan.data_on_device and plan.fused_adam and plan.amp
    assert plan.cuda_graphs and plan.capturable_adam  # capturing optimizer.step() needs the capturable Adam
    assert not plan.compile  # opt-in: it compiles longer than it saves on a run of about a minute
    assert plan.channels_last == plan.cudnn_benchmark == (model == "vae")  # the conv VAE's convolutions
    assert "CUDA graph" in plan.describe() and "bf16 autocast" in plan.describe()


def test_bf16_autocast_only_where_the_device_has_native_bf16_unless_asked_for():
    nice = T.preset("homework", "nice")
    assert not S.plan_step(nice, V100).amp  # bf16 is only emulated before compute capability 8.0
    assert S.plan_step(T.preset("homework", "nice", precision="bf16"), V100).amp
    assert S.plan_step(nice, CPU_BF16).amp and not S.plan_step(nice, CPU_FP32).amp
    assert not S.plan_step(T.preset("homework", "nice", precision="fp32"), H100).amp
    with pytest.raises(ParameterError) as err:
        S.plan_step(T.preset("homework", "nice", precision="bf16"), MPS)
    assert err.value.param == "precision"


def test_the_cpu_plan_is_the_eager_step_of_before():
    for cap in (CPU_BF16, CPU_FP32):
        plan = S.plan_step(T.preset("homework", "vae"), cap)
        assert not (plan.cuda_graphs or plan.capturable_adam or plan.compile or plan.cudnn_benchmark)
        assert plan.channels_last and plan.fused_adam and plan.data_on_device
    plan = S.plan_step(tiny("nice"), capability(torch.device("cpu")))
    step = T.make_step(torch.nn.Linear(1, 1), None, plan)
    assert not isinstance(step, S.StepRunner)  # train() calls train_step itself, as before
    # The probe agrees with the bf16 decision train() made before this module existed.
    assert capability(torch.device("cpu")).native_bf16 == bool(torch.cpu._is_avx512_bf16_supported())
    assert use_bf16("auto", torch.device("cpu")) == capability(torch.device("cpu")).native_bf16


def test_cuda_graphs_and_compile_settings():
    assert not S.plan_step(T.preset("homework", "nice", cuda_graphs="off"), H100).cuda_graphs
    assert not S.plan_step(T.preset("homework", "nice", cuda_graphs="off"), H100).capturable_adam
    assert S.plan_step(T.preset("homework", "nice", cuda_graphs="on"), H100).cuda_graphs
    assert not S.plan_step(T.preset("homework", "nice"), CPU_BF16).cuda_graphs  # auto: only where possible
    with pytest.raises(ParameterError, match="^cuda_graphs 'on' needs a CUDA device; this run is on cpu") as err:
        S.plan_step(T.preset("homework", "nice", cuda_graphs="on"), CPU_BF16)
    assert err.value.param == "cuda_graphs"
    assert S.plan_step(T.preset("homework", "vae", compile="on"), CPU_FP32).compile
    for field, value in (("cuda_graphs", "yes"), ("compile", "max-autotune")):
        with pytest.raises(ValueError, match=field):
            T.TrainConfig(**{field: value})


def test_make_optimizer_is_fused_and_capturable_when_the_step_is_captured(monkeypatch):
    monkeypatch.setattr(S, "_torch_compile", lambda fn: fn)  # what is compiled is not the point here
    model = torch.nn.Linear(3, 2)
    plain = T.make_optimizer(model, 1e-3)
    assert plain.defaults["fused"] and not plain.defaults["capturable"]
    assert T.make_optimizer(model, 1e-3, capturable=True).defaults["capturable"]
    assert isinstance(T.make_step(model, plain, S.plan_step(tiny(compile="on"), CPU_FP32)), S.StepRunner)


# ---------------------------------------------------------------- the runner, with stand-ins


class RerunGraphs:
    """Stands in for :class:`~genverify.models.steps.CudaGraphs` on the CPU: capture records, replay re-runs."""

    def __init__(self, fail: bool = False):
        self.fail, self.warmups, self.captures, self.replays, self.generators = fail, 0, 0, 0, ()

    def warmup(self, fn):
        self.warmups += 1
        return fn()

    def capture(self, fn, generators=()):
        self.captures += 1
        self.generators = generators
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        out = torch.zeros(())  # like a real capture, nothing runs yet

        def replay():
            self.replays += 1
            out.copy_(fn())

        return replay, out


SIZES = [16, 16, 16, 16, 16, 8, 16, 16, 16]  # a smaller batch in between, like an epoch's last


def _batches(cfg):
    gen = torch.Generator().manual_seed(0)
    return [T.model_input(torch.rand(n, 1, 28, 28, generator=gen), cfg, gen) for n in SIZES]


def _run(cfg, make):
    """Losses and final parameters of the steps ``make(model, optimizer, generator)`` returns, on fixed batches."""
    torch.manual_seed(cfg.seed)
    model = T.build_model(cfg)
    optimizer = T.make_optimizer(model, cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    step = make(model, optimizer, gen)
    losses = [float(step(x)) for x in _batches(cfg)]
    return losses, {k: v.clone() for k, v in model.state_dict().items()}, step


def _eager(model, optimizer, gen):
    return lambda x: T.train_step(model, optimizer, x, gen)


def _runner(plan_kw, **kw):
    plan = S.StepPlan("cpu", amp=False, channels_last=False, **plan_kw)
    return lambda model, optimizer, gen: S.StepRunner(
        model, optimizer, lambda m, x, g: T.training_loss(m, x, g), plan, gen, **kw)


def _same(a, b):
    assert a[0] == b[0]
    assert all(torch.equal(a[1][k], b[1][k]) for k in a[1])


@pytest.mark.parametrize("kind", ["nice", "vae"])
def test_graph_runner_warms_up_captures_once_replays_and_equals_the_eager_step(kind):
    # The VAE draws its reparameterisation noise inside the step: the generator is handed to the capture.
    cfg = tiny(kind)
    graphs = RerunGraphs()
    runner = _run(cfg, _runner(dict(cuda_graphs=True, compile=False), graphs=graphs))
    _same(_run(cfg, _eager), runner)
    assert (graphs.warmups, graphs.captures, graphs.replays) == (S.WARMUP_STEPS, 1, 8 - S.WARMUP_STEPS)
    assert runner[2].mode == "graph" and runner[2].events == ["captured"]
    assert graphs.generators == (runner[2].generator,)


def test_a_failed_capture_warns_and_training_continues_eagerly_with_the_same_numbers():
    cfg = tiny("vae")
    graphs = RerunGraphs(fail=True)
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .*operation not permitted.*eager step"):
        runner = _run(cfg, _runner(dict(cuda_graphs=True, compile=False), graphs=graphs))
    _same(_run(cfg, _eager), runner)
    assert graphs.captures == 1 and graphs.replays == 0 and runner[2].mode == "eager"


def _failing_compiler(fn):
    def compiled(*args):
        raise RuntimeError("backend compiler failed: no C++ compiler")
    return compiled


def test_a_failed_compile_warns_and_training_continues_eagerly_with_the_same_numbers():
    cfg = tiny("nice")
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no C\\+\\+ compiler"):
        runner = _run(cfg, _runner(dict(cuda_graphs=False, compile=True), compiler=_failing_compiler))
    _same(_run(cfg, _eager), runner)
    assert runner[2].mode == "eager"


def test_compiled_steps_serve_the_first_batch_shape_and_other_shapes_run_eagerly():
    calls = []

    def counting_compiler(fn):
        def compiled(model, x, gen):
            calls.append(len(x))
            return fn(model, x, gen)
        return compiled

    cfg = tiny("vae")
    graphs = RerunGraphs()
    runner = _run(cfg, _runner(dict(cuda_graphs=True, compile=True), graphs=graphs, compiler=counting_compiler))
    _same(_run(cfg, _eager), runner)
    assert runner[2].mode == "compiled graph" and runner[2].events == ["compiled", "captured"]
    assert set(calls) == {16}  # the smaller batch never reaches the compiled function (no recompilation)


@pytest.mark.parametrize("kind", ["nice", "vae"])
def test_torch_compile_traces_the_training_loss_and_changes_no_number(kind):
    # Dynamo's "eager" backend: the real tracing (generator argument included) without a C++ toolchain.
    cfg = tiny(kind)
    runner = _run(cfg, _runner(dict(cuda_graphs=False, compile=True),
                               compiler=lambda fn: torch.compile(fn, backend="eager")))
    _same(_run(cfg, _eager), runner)
    assert runner[2].mode == "compiled"


def test_train_survives_a_failing_compiler_and_matches_the_eager_run(tmp_path, monkeypatch):
    x = (torch.rand(40, 784, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    eager = T.train(tiny("nice"), tmp_path / "eager", data=x, show_progress=False)
    monkeypatch.setattr(S, "_torch_compile", _failing_compiler)
    logs = []
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        compiled = T.train(tiny("nice", compile="on"), tmp_path / "compiled", data=x, show_progress=False,
                           log=logs.append)
    assert [h["loss"] for h in compiled.history] == [h["loss"] for h in eager.history]
    assert any("step eager (torch.compile failed" in line for line in logs)
    with pytest.raises(ParameterError) as err:
        T.train(tiny("nice", cuda_graphs="on"), tmp_path / "graphs", data=x, show_progress=False)
    assert err.value.param == "cuda_graphs"


def test_checkpoints_from_before_the_step_settings_still_load_and_resume(tmp_path):
    x = (torch.rand(40, 784, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    T.train(tiny("nice", epochs=1), tmp_path, data=x, show_progress=False)
    path = tmp_path / T.CHECKPOINT
    ckpt = torch.load(path, weights_only=True)
    for key in ("cuda_graphs", "compile"):  # an older genverify wrote neither
        del ckpt["config"][key]
    torch.save(ckpt, path)
    model, _ = T.load_checkpoint(tmp_path)
    resumed = T.train(tiny("nice", epochs=2, compile="off", cuda_graphs="off"), tmp_path, resume=True, data=x,
                      show_progress=False)
    assert resumed.epochs_done == 2


# ---------------------------------------------------------------- the projection


def test_projection_counts_full_steps_the_partial_batch_checkpoints_and_set_up():
    mnist = S.project_training_time(60_000, 256, 50, step_seconds=0.001, partial_step_seconds=0.002,
                                    checkpoint_seconds=0.1, setup_seconds=2.0)
    assert (mnist.full_steps, mnist.partial_batch, mnist.steps_per_epoch) == (234, 96, 235)
    assert mnist.epoch_seconds == pytest.approx(0.234 + 0.002 + 0.1)
    assert mnist.total_seconds == pytest.approx(2.0 + 50 * 0.336)
    embedded = S.project_training_time(4_000, 256, 50, step_seconds=0.01)  # 5,000 minus 1,000 held out
    assert (embedded.full_steps, embedded.partial_batch) == (15, 160)
    assert embedded.total_seconds == pytest.approx(50 * 16 * 0.01)  # the partial step costs a full one by default
    exact = S.project_training_time(512, 256, 3, step_seconds=1.0, partial_step_seconds=99.0)
    assert exact.steps_per_epoch == 2 and exact.total_seconds == 6.0  # no partial batch, nothing charged for it


@pytest.mark.parametrize("kw, param", [(dict(n_train=0), "n_train"), (dict(epochs=2.5), "epochs"),
                                       (dict(step_seconds=-1.0), "step_seconds"),
                                       (dict(checkpoint_seconds=math.nan), "checkpoint_seconds")])
def test_projection_rejects_impossible_inputs_naming_the_parameter(kw, param):
    args = dict(n_train=100, batch_size=10, epochs=2, step_seconds=0.1) | kw
    with pytest.raises(ParameterError) as err:
        S.project_training_time(**args)
    assert err.value.param == param


# ---------------------------------------------------------------- the benchmark


def _bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
    spec = importlib.util.spec_from_file_location("bench_train_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_help_documents_the_cuda_projection_and_exit_status(capsys):
    with pytest.raises(SystemExit) as exit_:
        _bench().main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "--device" in out and "project its 50 epochs" in out and "--data-dir" in out and "--compile" in out
    assert "without CUDA" in out


@pytest.mark.skipif(CUDA, reason="this machine has CUDA: the benchmark would measure")
def test_bench_on_a_machine_without_cuda_says_so_in_one_line_and_exits_0(capsys):
    assert _bench().main(["--device", "cuda"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "CUDA is not available" in out and "nothing measured" in out and not err


class InProcessWorker:
    """The benchmark's worker without a process (the stand-ins below are patched into this process only)."""

    def __init__(self, bench, kind, mode, device, partial):
        self.runner = bench.Runner(kind, bench.load_uint8_images()[:600], device, mode)
        self.costs = self.runner.cuda_costs(partial)

    def ready(self):
        return 1, False, dict(self.costs, mode=self.runner.mode)

    def timed(self, steps):
        return self.runner.timed(steps), self.runner.last_loss

    def close(self):
        pass


@pytest.mark.parametrize("fail", [False, True])
def test_bench_cuda_report_with_stand_ins_projects_both_models_against_the_goal(monkeypatch, capsys, fail,
                                                                               one_thread):
    # The CUDA report's code path on the CPU: a made-up H100, graphs re-run on the CPU, compile as identity,
    # tiny models. On a GPU the GPU test below runs the real thing.
    bench = _bench()
    real_preset = T.preset
    monkeypatch.setattr(T, "preset", lambda name, model, **kw: real_preset(
        name, model, **{**TINY["nice" if model == "nice" else "vae"], **kw}))
    monkeypatch.setattr(bench, "capability", lambda device: Capability("cpu", cuda_graphs=True, name="Fake H100"))
    monkeypatch.setattr(S, "CudaGraphs", lambda device: RerunGraphs(fail=fail))
    monkeypatch.setattr(S, "_torch_compile", lambda fn: fn)
    monkeypatch.setattr(bench, "Worker", lambda ctx, kind, mode, device, threads, partial=0:
                        InProcessWorker(bench, kind, mode, device, partial))
    args = bench.build_parser().parse_args(["--device", "cuda", "--compile", "--rounds", "1", "--steps", "2"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert bench.main_cuda(args, torch.device("cpu"), None, None) == 0
    out = capsys.readouterr().out
    assert "4,000 training images (embedded MNIST-5k minus 1,000 held out): 15 full steps + 1 of 160 images" in out
    for mode in bench.CUDA_MODES:  # a line per model
        assert len(re.findall(rf"^  {re.escape(mode)}( \*)? +[0-9.]+ ms", out, re.MULTILINE)) == 2, mode
    assert out.count("\n  CUDA graph * ") == 2  # the default, starred for both models
    final = out.strip().splitlines()[-1]
    assert final.startswith("projected wall time of the homework preset's 50 epochs (4,000 images)")
    assert "nice " in final and " + vae " in final and "goal under 120 s for both models on one H100" in final
    assert ("[ran eager: CUDA graph capture failed" in out) == fail


# ---------------------------------------------------------------- on a GPU (skipped without one)


def _cuda_run(cfg, graphs: bool, amp: bool):
    torch.manual_seed(cfg.seed)
    device = torch.device("cuda")
    model = T.build_model(cfg).to(device=device, memory_format=T.memory_format(cfg))
    optimizer = T.make_optimizer(model, cfg.lr, capturable=True)  # the same Adam kernel both ways
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    plan = S.StepPlan("cuda", amp=amp, cuda_graphs=graphs, compile=False, channels_last=False)
    step = S.StepRunner(model, optimizer, lambda m, x, g: T.training_loss(m, x, g), plan, gen)
    data_gen = torch.Generator(device=device).manual_seed(0)
    losses = []
    for n in SIZES + [16] * 4:
        x = T.model_input(torch.rand(n, 1, 28, 28, generator=data_gen, device=device), cfg, data_gen)
        losses.append(float(step(x.contiguous(memory_format=T.memory_format(cfg)))))
    return losses, model, step


@needs_cuda
@pytest.mark.parametrize("kind", ["nice", "vae", "conv"])
@pytest.mark.parametrize("amp", [False, True])
def test_cuda_graph_step_matches_the_eager_step_on_the_gpu(kind, amp):
    if amp and not capability(torch.device("cuda")).native_bf16:
        pytest.skip("this GPU has no native bf16")
    cfg = tiny(kind, device="cuda")
    eager_losses, eager_model, _ = _cuda_run(cfg, graphs=False, amp=amp)
    graph_losses, graph_model, runner = _cuda_run(cfg, graphs=True, amp=amp)
    assert runner.mode == "graph", runner.events
    tol = 2e-2 if amp else 1e-4
    assert graph_losses == pytest.approx(eager_losses, rel=tol)  # replays draw the VAE's noise as eager steps do
    for (name, a), b in zip(eager_model.state_dict().items(), graph_model.state_dict().values()):
        assert torch.allclose(a, b, rtol=tol, atol=tol), name


@needs_cuda
@pytest.mark.parametrize("kind", ["nice", "conv"])
def test_train_on_cuda_captures_the_step_and_resumes(tmp_path, kind):
    x = (torch.rand(80, 784, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    logs = []
    first = T.train(tiny(kind, device="cuda", epochs=2), tmp_path, data=x, show_progress=False, log=logs.append)
    assert any("step graph (captured)" in line for line in logs), logs
    assert all(math.isfinite(h["loss"]) for h in first.history)
    resumed = T.train(tiny(kind, device="cuda", epochs=3), tmp_path, resume=True, data=x, show_progress=False)
    assert resumed.epochs_done == 3 and math.isfinite(resumed.history[-1]["loss"])


@needs_cuda
def test_a_failed_capture_on_cuda_warns_and_trains_on(tmp_path, monkeypatch):
    def failing(self, fn, generators=()):
        raise RuntimeError("capture refused")

    monkeypatch.setattr(S.CudaGraphs, "capture", failing)
    x = (torch.rand(80, 784, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed"):
        result = T.train(tiny("vae", device="cuda", epochs=2), tmp_path, data=x, show_progress=False)
    assert result.epochs_done == 2


@needs_cuda
def test_compile_on_cuda_trains_or_falls_back_with_a_warning(tmp_path):
    x = (torch.rand(80, 784, generator=torch.Generator().manual_seed(0)) * 255).round() / 255
    logs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # without triton the fallback's warning is expected
        result = T.train(tiny("nice", device="cuda", compile="on"), tmp_path, data=x, show_progress=False,
                         log=logs.append)
    assert result.epochs_done == 2 and any("step " in line for line in logs)


@needs_cuda
def test_bench_on_cuda_prints_the_projection(capsys):
    assert _bench().main(["--device", "cuda", "--models", "nice", "--steps", "3", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "projected wall time of the homework preset's 50 epochs" in out and "goal under 120 s" in out
    print(out, file=sys.stderr)
