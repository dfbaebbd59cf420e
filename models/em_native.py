r"""The native EM kernel (questions 2-3): built from ``_em_native.c`` at first use, cached, loaded with ctypes.

One iteration of EM for a mixture of Bernoullis is two products with the
binary data X, :math:`X w^\top` (the E-step's logits) and :math:`\eta^\top X`
(the M-step's sums). Dense int8 or float32 products do 784 multiply-adds per
image and component; this kernel exploits that X is binary and does not change
during a fit:

* **E-step, by table look-up.** The pixels are cut into groups of 4; the 4
  bits of a group form a nibble :math:`v`, and every image is stored once as
  the list of its nonzero nibbles (Fashion-MNIST: 85 of 196 per image). A
  table holds, for every group and nibble, the sum of the fixed-point weights
  of its set pixels for all K components, so :math:`x_n^\top q_k` is one
  table row per listed nibble, added in int32 (< 2^30) and widened to int64.
* **M-step, by buckets.** The responsibilities in fixed point,
  :math:`r_{nk} = \mathrm{round}(\eta_{nk}(2^{24} - 1))`, are added into one
  bucket per (component, group, nibble) over the same lists; then
  :math:`S_{kd} = \sum_{v \ni b} B_{k,g,v}` for pixel :math:`d = 4g + b`.
  An image's :math:`r_{nk}` is exactly 0 for all but one or two components
  (:math:`\eta < 2^{-25}`; Fashion-MNIST, K = 20: 89% of the images have one,
  10% two), so most images add one scalar per nibble, into that component's
  13 KB of buckets; images with more than four add all K at once into
  entry-major buckets. The int32 buckets are moved into int64 before any could
  exceed :math:`2^{31} - 1`.
* **Fused, threaded.** Blocks of 256 images: each image's logits, log-sum-exp
  and responsibilities, then the block's bucket additions grouped by
  component (so a component's buckets stay in L1 while its images are added).
  Threads take contiguous ranges of images (``torch.get_num_threads()``) and
  their integer sums are added. Vectors are 8 int32 lanes (K = 20 takes three:
  a table row is 96 bytes).

The fixed point is the torch int8 kernel's (:func:`fixed_point_logits`): the
same integers :math:`q_{kd} = \mathrm{round}(w_{kd} 2^{s_k})`, :math:`|q| < 2^{23}`,
so both give bit-identical logits; every sum over pixels and images is exact,
whatever the order or the number of threads.

**Build.** At first use the C file is compiled with ``$CC`` (else ``cc``,
``gcc`` or ``clang``) and ``-O2 -march=native`` into
``~/.cache/genverify/native`` (``$GENVERIFY_NATIVE_CACHE``; the file name
hashes the source, the compiler, the flags and the CPU, so a shared home
directory never loads a library built for another CPU), written atomically
(parallel test workers may build at once), loaded and checked against exact
NumPy integer arithmetic on a small problem. Without a compiler, on a failed
build or check, on Windows, or with ``GENVERIFY_NATIVE=0``, :func:`load`
returns None (:func:`status` says why) and the torch kernels run instead.
Limits: K <= 64 components and at most 65,536 (group, nibble) entries,
i.e. D <= 16,384 pixels.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import itertools
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from genverify.data import default_cache_dir
from genverify.io import atomic_path

__all__ = ["MAX_COMPONENTS", "R_SCALE", "W_MAX", "NativeEM", "fixed_point_logits", "load", "status"]

_SOURCE = Path(__file__).with_name("_em_native.c")
_ABI = 2
#: The kernel keeps up to 8 vectors of 8 components in registers.
MAX_COMPONENTS = 64
#: An integer |q| <= W_MAX has three balanced base-256 digits in [-128, 127] (the torch int8 kernel's limbs).
W_MAX = (1 << 23) - (1 << 16)
#: Responsibilities in fixed point: round(eta * R_SCALE), three bytes.
R_SCALE = (1 << 24) - 1
#: Images per thread below which one thread does it all (a thread costs ~50 us to start).
_ROWS_PER_THREAD = 4096
_FLAGS = ["-O2", "-fno-math-errno", "-std=gnu11", "-shared", "-fPIC"]  # -O3: no faster, compiles 2.6x slower
_NATIVE_FLAGS = ["-march=native"]

#: Components per vector (int32 lanes of 32 bytes).
_LANES = 8


def _vectors(k: int) -> int:
    """Vectors of _LANES components for K (the kernel is compiled for 1, 2, 3, 4 and 8 of them)."""
    kv = -(-k // _LANES)
    return kv if kv <= 4 else 8
# table lane -> component within its vector: lane 2i holds component i, lane 2i + 1 component 4 + i
_LANE = np.arange(_LANES)
_LANE_PERM = _LANE // 2 + _LANES // 2 * (_LANE % 2)

_status = "not loaded yet"


def fixed_point_logits(weights: np.ndarray, means: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The E-step's parameters in fixed point: ``(q, shift, c)``.

    With :math:`w_{kd} = \log p_{kd} - \log(1 - p_{kd})` and
    :math:`c_k = \log\pi_k + \sum_d \log(1 - p_{kd})`, the log joint is
    :math:`\ell_{nk} = c_k + x_n^\top w_k \approx c_k + 2^{-s_k} x_n^\top q_k`, where
    :math:`q_{kd} = \mathrm{round}(w_{kd} 2^{s_k})` (int64, (K, D)) and :math:`2^{s_k}` is the largest
    power of two keeping :math:`|q_{kd}| \le` ``W_MAX`` (24 significant bits, float32's precision).
    ``shift`` is :math:`2^{-s_k}`: every product of an integer sum with it is exact.
    """
    p = np.asarray(means, dtype=np.float64)
    log1m = np.log1p(-p)
    w = np.log(p) - log1m
    c = log1m.sum(axis=1) + np.log(np.asarray(weights, dtype=np.float64))
    top = np.maximum(np.abs(w).max(axis=1), 1e-30)
    s = np.minimum(np.floor(np.log2(W_MAX / top)), 200.0)
    q = np.rint(w * np.exp2(s)[:, None]).astype(np.int64)
    return q, np.exp2(-s), c


# ------------------------------------------------------------------ build, cache, load


def status() -> str:
    """Why :func:`load` returned what it did: the library's path, or the reason the torch kernels run."""
    return _status


def _cache_dir() -> Path:
    """``$GENVERIFY_NATIVE_CACHE``, else ``native`` in genverify's cache folder, else (not writable) a private
    folder in the temporary directory."""
    if os.environ.get("GENVERIFY_NATIVE_CACHE"):
        return Path(os.environ["GENVERIFY_NATIVE_CACHE"])
    preferred = default_cache_dir() / "native"
    try:
        preferred.mkdir(parents=True, exist_ok=True)
        if os.access(preferred, os.W_OK):
            return preferred
    except OSError:
        pass
    private = Path(tempfile.gettempdir()) / f"genverify-native-{os.getuid()}"
    private.mkdir(mode=0o700, exist_ok=True)
    info = private.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:  # never load a library others could have written
        raise RuntimeError(f"{private} is not a private folder of this user")
    return private


def _compiler() -> list[str] | None:
    """``$CC`` if set (only it: the user chose it), else the first of cc, gcc, clang on the PATH."""
    if os.environ.get("CC"):
        cc = shlex.split(os.environ["CC"])
        return cc if cc and shutil.which(cc[0]) else None
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return [path]
    return None


def _cpu_identity() -> str:
    """What -march=native depends on: the CPU model and its instruction-set flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = [line for line in f if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


class _CompileError(Exception):
    pass


def _compile(cc: list[str]) -> Path:
    """The cached library, compiled first if needed: with -march=native, else with portable flags."""
    version = subprocess.run([*cc, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    failures = []
    for flags in (_FLAGS + _NATIVE_FLAGS, _FLAGS):
        key = hashlib.sha256("\0".join([_SOURCE.read_text(), str(_ABI), " ".join(cc), version, " ".join(flags),
                                        platform.machine(), _cpu_identity()]).encode()).hexdigest()[:20]
        lib = _cache_dir() / f"em_native-{key}.so"
        if lib.is_file():
            return lib
        try:
            with atomic_path(lib, suffix=".so") as tmp:  # parallel builders each write their own file
                done = subprocess.run([*cc, *flags, "-o", str(tmp), str(_SOURCE), "-lm"], capture_output=True,
                                      text=True, timeout=300, check=False)
                if done.returncode != 0:
                    raise _CompileError((done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1])
            return lib
        except _CompileError as exc:
            failures.append(f"{' '.join(flags)}: {exc}")
    raise RuntimeError(f"{' '.join(cc)} failed ({'; '.join(failures)})")


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    p, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.em_abi.restype, lib.em_abi.argtypes = i32, []
    lib.em_fused.restype = ctypes.c_double
    lib.em_fused.argtypes = [p, p, i64, i64, p, p, p, p, i32, i32, p, p, p, p, i64, p, p]
    lib.em_msums.restype = None
    lib.em_msums.argtypes = [p, p, i64, i64, p, i32, i32, p, p, p, p, i64, p, p]
    lib.em_logits.restype = None
    lib.em_logits.argtypes = [p, p, i64, i64, p, i32, p]
    lib.em_table.restype = None
    lib.em_table.argtypes = [p, i64, i32, p]
    return lib


def _self_test(lib: ctypes.CDLL) -> str | None:
    """None if the library's integer sums are exact on a small problem (1, 2 and 4 vectors of components,
    images with one, two and many nonzero responsibilities), else what differs."""
    rng = np.random.default_rng(12345)
    for n, d, k in ((37, 23, 3), (50, 9, 20), (41, 33, 64)):
        x = (rng.random((n, d)) < 0.4).astype(np.uint8)
        em = NativeEM(lib, x, threads=1)
        means = rng.uniform(0.01, 0.99, (k, d))
        weights = rng.dirichlet(np.ones(k))
        q, shift, c = fixed_point_logits(weights, means)
        if not np.array_equal(em.logits(q), x.astype(np.int64) @ q.T):
            return f"logits differ (n={n}, d={d}, k={k})"
        r = rng.integers(0, R_SCALE + 1, (n, k))
        r[: n // 3] *= rng.random((n // 3, k)) < 1.5 / k  # sparse rows (scalar path), the rest dense
        nk, sums = em.resp_sums_fixed(r)
        if not (np.array_equal(nk, r.sum(axis=0)) and np.array_equal(sums, r.T @ x.astype(np.int64))):
            return f"M-step sums differ (n={n}, d={d}, k={k})"
        total, nk, sums = em.statistics(weights, means)
        joint = x @ (q.T * shift) + c
        top = joint.max(axis=1, keepdims=True)
        want = float((top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))).sum())
        eta = np.exp(joint - top)
        eta /= eta.sum(axis=1, keepdims=True)
        if not (abs(total - want) <= 1e-6 * abs(want) and np.allclose(nk / R_SCALE, eta.sum(axis=0), atol=1e-5)
                and np.allclose(sums / R_SCALE, eta.T @ x, atol=1e-5)):
            return f"fused pass differs from the reference (n={n}, d={d}, k={k})"
    return None


_load_lock = threading.Lock()


@functools.cache
def load() -> ctypes.CDLL | None:
    """The checked native library, or None (then :func:`status` says why and the torch kernels run)."""
    global _status
    with _load_lock:
        if os.environ.get("GENVERIFY_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
            _status = "disabled by GENVERIFY_NATIVE"
            return None
        if os.name == "nt" or sys.byteorder != "little":
            _status = f"not supported on {os.name} / {sys.byteorder}-endian"
            return None
        cc = _compiler()
        if cc is None:
            _status = "no C compiler ($CC, cc, gcc or clang)"
            return None
        try:
            path = _compile(cc)
            lib = _bind(ctypes.CDLL(str(path)))
            if lib.em_abi() != _ABI:
                raise RuntimeError(f"{path} is ABI {lib.em_abi()}, expected {_ABI}")
            problem = _self_test(lib)
        except Exception as exc:  # noqa: BLE001 -- whatever fails here, the torch kernels still run
            _status = f"build failed: {exc}"
            warnings.warn(f"genverify's native EM kernel is unavailable, using torch ({_status})", RuntimeWarning,
                          stacklevel=2)
            return None
        if problem is not None:
            _status = f"self-test failed: {problem}"
            warnings.warn(f"genverify's native EM kernel is unavailable, using torch ({_status})", RuntimeWarning,
                          stacklevel=2)
            return None
        _status = f"loaded {path}"
        return lib


# ------------------------------------------------------------------ the kernel

_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """Worker threads for the ranges after the first (which the calling thread runs); they wait on a queue,
    idle threads cost nothing. A forked child (a process pool) gets its own: the parent's threads are not
    in it."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                                     thread_name_prefix="genverify-em"))
        return _pool[1]


def _ptr(t: torch.Tensor | np.ndarray, offset: int = 0) -> int:
    base = t.data_ptr() if isinstance(t, torch.Tensor) else t.ctypes.data
    return base + offset


def _buffer(shape, dtype) -> torch.Tensor:
    """A host buffer aligned to 64 bytes, as the kernel's vector loads want (torch's allocator aligns so)."""
    t = torch.empty(shape, dtype=dtype)
    if t.data_ptr() % 64:  # not seen with torch's CPU allocator; realign by hand if ever so
        raw = torch.empty(t.numel() * t.element_size() + 64, dtype=torch.uint8)
        start = -raw.data_ptr() % 64
        t = raw[start:start + t.numel() * t.element_size()].view(dtype).view(shape)
    return t


class NativeEM:
    """Binary data ``x`` (uint8 (N, D) of 0/1) in the native kernel's form, and its EM passes.

    Integer results (the ``*_fixed`` methods and :meth:`statistics`'s sums) are exact: ``N_k`` and
    ``S = r^T X`` in units of ``1 / R_SCALE``.
    """

    def __init__(self, lib: ctypes.CDLL, x: np.ndarray, threads: int | None = None):
        self.lib, self.threads = lib, threads
        self.n, self.d = x.shape
        packed = np.packbits(x, axis=1, bitorder="little")  # 8 pixels a byte, pixel 8j + b is bit b of byte j
        self.groups = 2 * packed.shape[1]  # groups of 4 pixels, the last ones padded with zeros
        self.n_entries = 16 * self.groups
        if self.n_entries > 1 << 16:
            raise ValueError(f"the native EM kernel handles up to 16384 pixels, got {self.d}")
        nibbles = np.empty((self.n, self.groups), dtype=np.uint8)
        nibbles[:, 0::2] = packed & 15
        nibbles[:, 1::2] = packed >> 4
        nonzero = nibbles != 0
        del packed
        entries = (np.arange(0, self.n_entries, 16, dtype=np.uint16)[None, :] + nibbles)[nonzero]
        self.entries = _buffer(len(entries), torch.int16)  # bit pattern of uint16: 16 g + v
        self.entries.numpy()[:] = entries.view(np.int16)
        self.rowptr = _buffer(self.n + 1, torch.int64)
        rowptr = self.rowptr.numpy()
        rowptr[0] = 0
        np.cumsum(nonzero.sum(axis=1), out=rowptr[1:])
        self._scratch: dict[int, tuple[torch.Tensor, ...]] = {}
        self._kv = 0

    # -------------------------------------------------------------- helpers

    def _ranges(self) -> list[tuple[int, int]]:
        threads = self.threads or torch.get_num_threads()
        parts = max(1, min(threads, self.n // _ROWS_PER_THREAD))
        bounds = np.linspace(0, self.n, parts + 1).astype(np.int64)
        return [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    @staticmethod
    def _run(fn, ranges: list[tuple[int, int]]) -> list:
        """fn(i, r0, r1) for every range, the first in this thread (ctypes releases the GIL meanwhile)."""
        if len(ranges) == 1:
            return [fn(0, *ranges[0])]
        futures = [_executor().submit(fn, i, *r) for i, r in enumerate(ranges) if i > 0]
        first = fn(0, *ranges[0])
        return [first] + [f.result() for f in futures]

    def _buffers(self, i: int, kv: int) -> tuple[torch.Tensor, ...]:
        """Thread i's scratch and results: int32 component-major and entry-major buckets and their int64
        parts, then N_k and the pixel sums S (kv*8 x 4G) it returns."""
        if kv != self._kv:
            self._scratch.clear()
            self._kv = kv
        if i not in self._scratch:
            size = _LANES * kv * self.n_entries
            self._scratch[i] = (_buffer(size, torch.int32), _buffer(size, torch.int64), _buffer(size, torch.int32),
                                _buffer(size, torch.int64), _buffer(_LANES * kv, torch.int64),
                                _buffer((_LANES * kv, 4 * self.groups), torch.int64))
        return self._scratch[i]

    def _table(self, q: np.ndarray) -> tuple[torch.Tensor, int]:
        """The E-step table from integer weights ``q`` (K, D): row 16 g + v holds, for every component,
        the sum of q over the set bits of nibble v in group g (int32, lanes permuted as the kernel wants)."""
        k = q.shape[0]
        kv = _vectors(k)
        padded = np.zeros((4 * self.groups, _LANES * kv), dtype=np.int32)
        padded[:self.d, :k] = q.T
        perm = (_LANES * np.arange(kv)[:, None] + _LANE_PERM).ravel()
        permuted = np.ascontiguousarray(padded[:, perm])
        table = _buffer((self.n_entries, _LANES * kv), torch.int32)
        self.lib.em_table(_ptr(permuted), self.groups, kv, _ptr(table))
        return table, kv

    def _sums(self, results: list[tuple[torch.Tensor, ...]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The threads' N_k and S = r^T X added (exact int64)."""
        nk = sum(r[4].numpy()[:k] for r in results)
        sums = sum(r[5].numpy()[:k, :self.d] for r in results)
        return np.array(nk), np.array(sums)

    # -------------------------------------------------------------- passes

    def logits(self, q: np.ndarray) -> np.ndarray:
        """x_n . q_k, exact, int64 (N, K), for integer weights |q| < 2^23 (K in blocks of 64)."""
        if q.size and np.abs(q).max() > W_MAX:  # the kernel's int32 partial sums rely on it
            raise ValueError(f"integer weights must satisfy |q| <= {W_MAX}, got {np.abs(q).max()}")
        if q.shape[0] > MAX_COMPONENTS:
            return np.concatenate([self.logits(q[i:i + MAX_COMPONENTS])
                                   for i in range(0, q.shape[0], MAX_COMPONENTS)], axis=1)
        table, kv = self._table(q)
        out = _buffer((self.n, _LANES * kv), torch.int64)

        def run(i, r0, r1):
            self.lib.em_logits(_ptr(self.entries), _ptr(self.rowptr), r0, r1, _ptr(table), kv,
                               _ptr(out, r0 * _LANES * kv * 8))

        self._run(run, self._ranges())
        return out.numpy()[:, :q.shape[0]]

    def resp_sums_fixed(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N_k, S = r^T X) exactly (int64) for fixed-point responsibilities 0 <= r < 2^24, (N, K)."""
        if r.size and (r.min() < 0 or r.max() > R_SCALE):  # the overflow guard counts on 0 <= r < 2^24
            raise ValueError(f"fixed-point responsibilities must lie in [0, {R_SCALE}], got [{r.min()}, {r.max()}]")
        k = r.shape[1]
        if k > MAX_COMPONENTS:
            raise ValueError(f"the native kernel handles up to {MAX_COMPONENTS} components, got {k}")
        kv = _vectors(k)
        fixed = _buffer((self.n, _LANES * kv), torch.int32)
        fixed.numpy()[:] = 0
        fixed.numpy()[:, :k] = r
        ranges = self._ranges()
        scratch = [self._buffers(i, kv) for i in range(len(ranges))]

        def run(i, r0, r1):
            bufs = scratch[i]
            self.lib.em_msums(_ptr(self.entries), _ptr(self.rowptr), r0, r1, _ptr(fixed, r0 * _LANES * kv * 4), k, kv,
                              *(_ptr(b) for b in bufs[:4]), self.n_entries, _ptr(bufs[4]), _ptr(bufs[5]))

        self._run(run, ranges)
        return self._sums(scratch, k)

    def statistics(self, weights: np.ndarray, means: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """One fused E+M pass: (sum_n log P(x_n), N_k, S) with N_k and S exact int64 in units of 1 / R_SCALE."""
        q, shift, c = fixed_point_logits(weights, means)
        k = q.shape[0]
        if k > MAX_COMPONENTS:
            raise ValueError(f"the native kernel handles up to {MAX_COMPONENTS} components, got {k}")
        table, kv = self._table(q)
        kp = _LANES * kv
        scale, offset, mask = np.zeros(kp), np.full(kp, -np.inf), np.zeros(kp, dtype=np.float32)
        scale[:k], offset[:k], mask[:k] = shift, c, 1.0
        ranges = self._ranges()
        scratch = [self._buffers(i, kv) for i in range(len(ranges))]

        def run(i, r0, r1):
            bufs = scratch[i]
            return self.lib.em_fused(_ptr(self.entries), _ptr(self.rowptr), r0, r1, _ptr(table), _ptr(scale),
                                     _ptr(offset), _ptr(mask), k, kv, *(_ptr(b) for b in bufs[:4]), self.n_entries,
                                     _ptr(bufs[4]), _ptr(bufs[5]))

        totals = self._run(run, ranges)  # in range order: the same sum for the same thread count
        return float(sum(totals)), *self._sums(scratch, k)
