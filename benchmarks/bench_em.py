"""One EM iteration of the mixture of Bernoullis on Fashion-MNIST's 60,000 training images (issues 4 and 18).

Measured side by side in one process, interleaved in rounds so that load from
other processes hits every variant alike (medians and ranges reported):

* ``fit``: what :meth:`genverify.models.BernoulliMixture.fit` spends per EM
  iteration, loop overhead included: ``fit(max_iter=m, tol=0)`` minus
  ``fit(max_iter=0)`` (the same initialisation, validation and data packing),
  divided by ``m`` (``--fit-iters``); default backend (``'auto'``).
* the kernels, one iteration each (the fused E+M pass and the M-step's
  update): ``int8 native`` (:mod:`genverify.models.em_native`; present when
  the C kernel builds), ``int8 torch`` (the ``torch._int_mm`` fallback) and
  ``float32``, the data held once in each one's form;
* ``numpy float32``: a straightforward NumPy float32 log-space iteration, the
  data already a float32 array: E-step ``L = X @ logit(P).T + (sum log(1-P) + log pi)``
  (one matrix product), ``scipy.special.logsumexp``, responsibilities, M-step
  ``resp.T @ X`` (the second product);
* the roofline: two N x D x K float32 matrix products at this machine's
  measured rate for a large square float32 product (the best of torch and
  NumPy, so the bound is the stricter one), measured in every round.

Prints each variant's time and its ratio to the roofline (goals for ``fit``:
<= 1.5x with one thread, <= 1.0x with two), first with one thread and then
with all cores, and the load average before and after each setting (other
processes on the machine slow everything, the two-thread figures most). With
one thread it also gives each one's CPU time and the ratio of CPU times,
which discounts the share of the core other processes took.
Asserts nothing about time, only that the variants compute the same
iteration. Without the Debian package ``dataset-fashion-mnist`` (or
``--data-dir``) it uses random binary data of the same shape and says so.

Usage: ``python benchmarks/bench_em.py [--k 20] [--rounds 7] [--fit-iters 25] [--threads T] [--data-dir DIR]
[--device cpu|cuda]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
from scipy.special import logsumexp
from threadpoolctl import threadpool_limits

ALPHA = 0.01


def load_data(data_dir: str | None) -> tuple[np.ndarray, str]:
    from genverify.data import load_mnist_idx

    try:
        x, _ = load_mnist_idx(data_dir, "train", kind="fashion-mnist", as_uint8=True)
        x = x.reshape(len(x), -1)
        return (x > 127).astype(np.uint8), f"Fashion-MNIST train ({len(x)} images), binarised at 0.5"
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        print(f"note: Fashion-MNIST not found ({exc}); using random binary data of the same shape "
              "(60000 x 784, 30% ones): the timing depends on the data (the native kernel skips zero nibbles)",
              file=sys.stderr)
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


def matmul_rate(n: int = 3072, repeats: int = 3, device: str = "cpu") -> tuple[float, float]:
    """Best float32 GFLOP/s of an n x n x n product (torch, and NumPy on CPU): by the wall clock, and by
    this thread's CPU time (meaningful with one thread, where it discounts time other processes took)."""
    best, best_cpu = 0.0, 0.0
    a = torch.rand(n, n, device=device)
    b = torch.rand(n, n, device=device)
    products = [lambda: torch.mm(a, b)]
    if device == "cpu":
        an, bn = a.numpy(), b.numpy()
        products.append(lambda: an @ bn)
    for product in products:
        for _ in range(repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.thread_time()
            product()
            if device == "cuda":
                torch.cuda.synchronize()
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
            best_cpu = max(best_cpu, 2 * n**3 / max(time.thread_time() - c0, 1e-9) / 1e9)
    return best, best_cpu


def settle(device: torch.device, pause: float = 0.3) -> None:
    """Let the previous variant's idle threads stop spinning (OpenBLAS and OpenMP workers busy-wait for a while
    after their last task, taking cores from whatever runs next), so that every variant starts alike."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    time.sleep(pause)


def load_text() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load average unknown"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--fit-iters", type=int, default=25, help="EM iterations of the timed fit (default 25)")
    parser.add_argument("--data-dir", default=None, help="folder with Fashion-MNIST's IDX files "
                        "(default /usr/share/datasets/fashion-mnist)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and BLAS threads (default: 1, then all cores, each reported)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but CUDA is not available", file=sys.stderr)
        return 2

    from genverify.models import BernoulliMixture, em_native
    from genverify.models.em_kernels import EMKernel, int8_matmul_works

    x, what = load_data(args.data_dir)
    n, d = x.shape
    k = args.k
    rng = np.random.default_rng(0)
    means = 0.9 * x[rng.choice(n, k, replace=False)] + 0.05  # K images, softened: realistic responsibilities
    weights = np.full(k, 1.0 / k)
    x32 = x.astype(np.float32)
    device = torch.device(args.device)
    kernels = {}
    if device.type == "cpu":
        if em_native.load() is not None:
            kernels["int8 native"] = EMKernel(x, device, "int8", native=True)
        if int8_matmul_works("cpu"):
            kernels["int8 torch"] = EMKernel(x, device, "int8", native=False)
    kernels["float32"] = EMKernel(x, device, "float32")
    estimator = BernoulliMixture(k, alpha=ALPHA)

    def iteration(kernel):
        total, nk, sums = kernel.statistics(weights, means)
        return total, *estimator._params_from_sums(nk, sums, n)

    # the variants agree (the same iteration), to float32 precision
    ref_total, _, ref_means = numpy_iteration(x32, weights, means)
    for name, kernel in kernels.items():
        total, _, m = iteration(kernel)
        assert abs(total - ref_total) <= 1e-5 * abs(ref_total), (name, total, ref_total)
        assert np.abs(m - ref_means).max() < 1e-4, name

    def fit_seconds(iters: int) -> float:
        bm = BernoulliMixture(k, alpha=ALPHA, max_iter=iters, tol=0.0, init_params="random_from_data",
                              random_state=0, device=args.device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a capped fit warns that it did not converge
            t0 = time.perf_counter()
            bm.fit(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t0

    variants = {"numpy float32": lambda: numpy_iteration(x32, weights, means)} if device.type == "cpu" else {}
    variants.update({f"kernel {name}": (lambda kern=kern: iteration(kern)) for name, kern in kernels.items()})
    backend = BernoulliMixture(k)._resolve_backend(device)
    native = backend == "int8" and "int8 native" in kernels
    print(f"{what}; K = {k}; device {device}; torch {torch.__version__}; {args.rounds} rounds per setting; "
          f"fit: backend {backend!r}{' (native kernel)' if native else ''}, {args.fit_iters} iterations; "
          f"native kernel: {em_native.status()}", flush=True)
    thread_counts = [args.threads] if args.threads else sorted({1, os.cpu_count() or 1})
    for threads in thread_counts if device.type == "cpu" else [None]:
        limits = threadpool_limits(limits=threads) if threads else contextlib.nullcontext()
        with limits:
            if threads:
                torch.set_num_threads(threads)
            run_setting(variants, fit_seconds, args.rounds, args.fit_iters, n, d, k, device, threads)
    return 0


def run_setting(variants, fit_seconds, rounds, fit_iters, n, d, k, device, threads) -> None:
    names = ["fit (per iteration)", *variants]
    wall = {name: [] for name in names}
    cpu = {name: [] for name in names}  # this thread's CPU time: with one thread, what the variant itself cost
    rates, cpu_rates = [], []
    before = load_text()
    for fn in variants.values():  # warm-up
        fn()
    fit_seconds(1)
    for _ in range(rounds):
        rate, cpu_rate = matmul_rate(device=device.type)
        rates.append(rate)
        cpu_rates.append(cpu_rate)
        for name, fn in variants.items():
            settle(device)
            fn()  # caches and thread pools warm again after the pause, as in a fit's loop
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.thread_time() - c0)
        settle(device)
        c0 = time.thread_time()
        start = fit_seconds(0)
        start_cpu = time.thread_time() - c0
        settle(device)
        c0 = time.thread_time()
        wall["fit (per iteration)"].append((fit_seconds(fit_iters) - start) / fit_iters)
        cpu["fit (per iteration)"].append((time.thread_time() - c0 - start_cpu) / fit_iters)
    flops = 2 * (2 * n * d * k)
    roofline = flops / (statistics.median(rates) * 1e9)
    setting = f"{threads} thread(s)" if threads else device.type
    print(f"\n-- {setting} ({before} before, {load_text()} after): large float32 matrix product "
          f"{statistics.median(rates):.0f} GFLOP/s (median; range {min(rates):.0f}-{max(rates):.0f}; best of torch "
          f"and NumPy); roofline, two {n} x {d} x {k} products: {roofline * 1e3:.1f} ms")
    one_thread = threads == 1 and device.type == "cpu"
    if one_thread:
        cpu_roofline = flops / (statistics.median(cpu_rates) * 1e9)
        print(f"   by CPU time (other processes' share discounted): {statistics.median(cpu_rates):.0f} GFLOP/s, "
              f"roofline {cpu_roofline * 1e3:.1f} ms")
    med = {name: statistics.median(t) for name, t in wall.items()}
    for name, t in med.items():
        spread = f"{min(wall[name]) * 1e3:.1f}-{max(wall[name]) * 1e3:.1f}"
        line = f"{name:22s} {t * 1e3:8.1f} ms/iteration (range {spread:>11s})  {t / roofline:5.2f}x roofline"
        if one_thread:
            c = statistics.median(cpu[name])
            line += f"  [CPU {c * 1e3:6.1f} ms, {c / cpu_roofline:5.2f}x]"
        if "numpy float32" in med and name != "numpy float32":
            line += f"  {med['numpy float32'] / t:5.2f}x faster than NumPy"
        print(line)
    goal = 1.5 if threads == 1 else 1.0
    fit = med["fit (per iteration)"]
    extra = ""
    if one_thread:
        extra = f"; by CPU time {statistics.median(cpu['fit (per iteration)']) / cpu_roofline:.2f}x"
    print(f"fit per iteration: {fit * 1e3:.1f} ms = {fit / roofline:.2f}x the float32 roofline{extra} "
          f"(goal <= {goal}x with {setting})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
