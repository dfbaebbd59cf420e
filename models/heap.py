"""glibc heap settings for CPU training: keep the large blocks a training step frees for the next step.

A conv VAE step at batch 256 allocates and frees activations of 1-16 MiB.
glibc serves them with fresh ``mmap`` pages or trims them off the top of its
heap, so every step page-faults its activations in again (about 10^5 faults
a step, 5-10% of the bfloat16 step on a 2-core AMD EPYC; see
``benchmarks/bench_train.py``). :func:`tune_cpu_allocator` serves blocks up
to 32 MiB from the heap (``M_MMAP_THRESHOLD``) and trims only beyond 1 GiB
of free heap (``M_TRIM_THRESHOLD``), which removes most of them; the cost is
that the process keeps its peak heap until it exits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_cpu_allocator"]

# glibc's mallopt parameters (malloc.h) and its largest allowed mmap threshold on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20
_TRIM_THRESHOLD = 2**30
_allocator_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Let glibc's malloc keep the large blocks a CPU training step frees, for the next step to reuse.

    Setting only the trim threshold would be worse than nothing: it switches
    off glibc's adaptive mmap threshold, so the mmap threshold is set first.

    This changes the whole process, so only :func:`genverify.models.training.train`
    calls it, and only for CPU training; ``GENVERIFY_MALLOC_TUNING=0`` in the
    environment turns it off. Returns whether the settings are in effect
    (False off glibc, e.g. on macOS or musl). Idempotent.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        if sys.platform.startswith("linux") and os.environ.get("GENVERIFY_MALLOC_TUNING", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # not glibc: nothing to tune
                return False
            # mmap first: the trim setting alone would disable the adaptive mmap threshold.
            _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
                mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _allocator_tuned
