"""One EM iteration of the mixture of Bernoullis on Fashion-MNIST's 60,000 training images (issue 4).

Measured side by side in one process, interleaved in rounds so that load from
other processes hits every variant alike (medians reported):

* ``numpy``: a straightforward NumPy float32 log-space iteration, the data
  already a float32 array: E-step ``L = X @ logit(P).T + (sum log(1-P) + log pi)``
  (one matrix product), ``scipy.special.logsumexp``, responsibilities, M-step
  ``resp.T @ X`` (the second product).
* ``genverify int8`` / ``float32``: :class:`genverify.models.BernoulliMixture`'s
  fused kernels (``backend=``), the data held once as int8 / float32.
* the roofline: two N x D x K float32 matrix products at this machine's
  measured rate for a large square float32 product (the best of torch and
  NumPy, so the bound is the stricter one).

Prints the speed-up over NumPy (goal >= 1.5x) and the ratio to the roofline
(goal <= 2x), first with one thread (robust when other processes share the
cores) and then with all cores. Asserts nothing about time. Without the Debian package
``dataset-fashion-mnist`` (or ``--data-dir``) it uses random binary data of
the same shape and says so: the timing depends only on the shape.

Usage: ``python benchmarks/bench_em.py [--k 20] [--rounds 7] [--threads T] [--data-dir DIR] [--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time

import numpy as np
import torch
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

ALPHA = 0.01


def load_data(data_dir: str | None) -> tuple[np.ndarray, str]:
    from genverify.data import load_mnist_idx

    try:
        x, _ = load_mnist_idx(data_dir, "train", kind="fashion-mnist", as_uint8=True)
        return (x > 127).astype(np.uint8), f"Fashion-MNIST train ({len(x)} images), binarised at 0.5"
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"note: Fashion-MNIST not found ({exc}); using random binary data of the same shape "
              "(60000 x 784, 30% ones): the timing depends only on the shape", file=sys.stderr)
        rng = np.random.default_rng(0)
        return (rng.random((60000, 784), dtype=np.float32) < 0.3).astype(np.uint8), "synthetic 60000 x 784"


def numpy_iteration(x: np.ndarray, weights: np.ndarray, means: np.ndarray):
    """The baseline: float32 throughout, two matrix products and a logsumexp."""
    p = means.astype(np.float32)
    log1m = np.log1p(-p)
    logit = np.log(p) - log1m
    joint = x @ logit.T + (log1m.sum(axis=1) + np.log(weights.astype(np.float32)))
    log_norm = logsumexp(joint, axis=1)
    resp = np.exp(joint - log_norm[:, None])
    nk = resp.sum(axis=0)
    sums = resp.T @ x
    return float(log_norm.sum(dtype=np.float64)), nk / len(x), (sums + ALPHA) / (nk[:, None] + 2 * ALPHA)


def matmul_rate(n: int = 3072, repeats: int = 3, device: str = "cpu") -> float:
    """Best float32 GFLOP/s of an n x n x n product (torch, and NumPy on CPU)."""
    best = 0.0
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    if device == "cpu":
        an, bn = a.numpy(), b.numpy()
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            an @ bn
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", default=None, help="folder with Fashion-MNIST's IDX files "
                        "(default /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS threads (default: 1, then all cores, each reported)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2

    from genverify.models import BernoulliMixture
    from genverify.models.em_kernels import EMKernel, int8_matmul_works

    x, what = load_data(args.data_dir)
    n, d = x.shape
    k = args.k
    rng = np.random.default_rng(0)
    means = 0.9 * x[rng.choice(n, k, replace=False)] + 0.05  # K images, softened: realistic responsibilities
    weights = np.full(k, 1.0 / k)
    x32 = x.astype(np.float32)
    device = torch.device(args.device)
    backends = ["float32"] + (["int8"] if int8_matmul_works(device.type) else [])
    kernels = {b: EMKernel(x, device, b) for b in backends}
    estimator = BernoulliMixture(k, alpha=ALPHA)

    def ours(backend):
        total, nk, sums = kernels[backend].statistics(weights, means)
        return total, *estimator._params_from_sums(nk, sums, n)

    # the variants agree (the same iteration), to float32 precision
    ref_total, _, ref_means = numpy_iteration(x32, weights, means)
    for b in backends:
        total, _, m = ours(b)
        assert abs(total - ref_total) <= 1e-5 * abs(ref_total), (b, total, ref_total)
        assert np.abs(m - ref_means).max() < 1e-4, b

    variants = {"numpy float32": lambda: numpy_iteration(x32, weights, means)} if device.type == "cpu" else {}
    variants.update({f"genverify {b}": (lambda b=b: ours(b)) for b in backends})
    print(f"{what}; K = {k}; device {device}; torch {torch.__version__}; {args.rounds} rounds per setting",
          flush=True)
    thread_counts = [args.threads] if args.threads else sorted({1, os.cpu_count() or 1})
    for threads in thread_counts if device.type == "cpu" else [None]:
        limits = threadpool_limits(limits=threads) if threads else contextlib.nullcontext()
        with limits:
            if threads:
                torch.set_num_threads(threads)
            run_setting(variants, args.rounds, n, d, k, device, threads)
    return 0


def run_setting(variants, rounds, n, d, k, device, threads) -> None:
    times = {name: [] for name in variants}
    rates = []
    for fn in variants.values():  # warm-up
        fn()
    for _ in range(rounds):
        rates.append(matmul_rate(device=device.type))
        for name, fn in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    rate = statistics.median(rates)
    roofline = 2 * (2 * n * d * k) / (rate * 1e9)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n-- {f'{threads} thread(s)' if threads else device.type}: large float32 matrix product "
          f"{rate:.0f} GFLOP/s (best of torch and NumPy); roofline, two {n} x {d} x {k} products: "
          f"{roofline * 1e3:.1f} ms")
    for name, t in med.items():
        spread = f"{min(times[name]) * 1e3:.1f}-{max(times[name]) * 1e3:.1f}"
        line = f"{name:18s} {t * 1e3:8.1f} ms/iteration (range {spread})  {t / roofline:5.2f}x roofline"
        if "numpy float32" in med and name != "numpy float32":
            line += f"  {med['numpy float32'] / t:5.2f}x faster than NumPy"
        print(line)
    best = min((t, name) for name, t in med.items() if name.startswith("genverify"))
    if "numpy float32" in med:
        print(f"speed-up over NumPy ({best[1]}): {med['numpy float32'] / best[0]:.2f}x (goal >= 1.5x)")
    print(f"ratio to roofline ({best[1]}): {best[0] / roofline:.2f}x (goal <= 2x)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
