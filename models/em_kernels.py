r"""The fused E+M kernels that :class:`~genverify.models.BernoulliMixture` runs (questions 2-3).

Both steps are fused: the rows of X are visited once per iteration, each
row's (or chunk's) responsibilities multiplied back into :math:`S` right away.
Nothing of size N x K x D is ever formed.

Two backends (``backend``):

* ``'int8'`` (the CPU default): exact integer arithmetic on fixed-point
  parameters. The logits' weights are integers
  :math:`q_{kd} = \mathrm{round}(w_{kd} 2^{s_k})` with 24 significant bits
  (float32's precision; :func:`~genverify.models.em_native.fixed_point_logits`)
  and the responsibilities :math:`r_{nk} = \mathrm{round}(\eta_{nk}(2^{24} - 1))`,
  so :math:`x^\top q_k`, :math:`N_k` and :math:`S = r^\top X` are exact integer
  sums: the only roundings are of the logits and of the responsibilities, and
  the sufficient statistics do not depend on how rows are chunked or threaded.
  Two implementations give the same integers:

  - the native kernel (:mod:`genverify.models.em_native`, compiled at first
    use): table look-ups over the nonzero nibbles of each binary image;
  - the torch fallback (no C compiler, K > 64, or ``native=False``): X as
    int8, the weights split into three signed 8-bit limbs,
    :math:`q = l_0 + 2^8 l_1 + 2^{16} l_2`, and the responsibilities into
    three bytes :math:`b_j` (stored as :math:`b_j - 128`), each step one
    ``torch._int_mm`` (int8 x int8 -> int32, private torch API:
    :func:`int8_matmul_works` checks at first use that it exists and is exact).

* ``'float32'``: float32 matrix products, sums accumulated in float64 (CUDA,
  or on request).

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), section 9.3.3.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch

from . import em_native
from .em_native import MAX_COMPONENTS, R_SCALE, NativeEM, fixed_point_logits

__all__ = ["EMKernel", "int8_available", "int8_matmul_works", "log_params"]


def log_params(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, c): w = log p - log(1 - p) (K, D) and c = sum_d log(1 - p) (K,)."""
    log1m = torch.log1p(-means)
    return torch.log(means) - log1m, log1m.sum(dim=1)


# ------------------------------------------------------------------ fused, chunked kernels

_LIMBS = (1, 1 << 8, 1 << 16)  # weights of three base-256 digits
_R_OFFSET = 128 * (_LIMBS[0] + _LIMBS[1] + _LIMBS[2])  # a byte b is multiplied as the int8 b - 128


@functools.cache
def int8_matmul_works(device_type: str) -> bool:
    """Whether ``torch._int_mm`` (int8 x int8 -> int32) runs and is exact here (and bytes are little-endian,
    which the responsibilities' byte split relies on)."""
    if not hasattr(torch, "_int_mm") or sys.byteorder != "little":
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randint(-128, 128, (32, 40), generator=gen, dtype=torch.int8)
        b = torch.randint(-128, 128, (40, 24), generator=gen, dtype=torch.int8)
        got = torch._int_mm(a.to(device_type), b.to(device_type)).cpu()
        return bool(torch.equal(got.to(torch.int64), a.to(torch.int64) @ b.to(torch.int64)))
    except (RuntimeError, NotImplementedError):
        return False


def int8_available(n_components: int) -> bool:
    """Whether the exact int8 backend can run on the CPU for K = ``n_components``: the native kernel
    (K <= 64) or an exact ``torch._int_mm``."""
    return (n_components <= MAX_COMPONENTS and em_native.load() is not None) or int8_matmul_works("cpu")


def _dense(t: torch.Tensor) -> torch.Tensor:
    """A copy with the standard row-major strides. ``torch._int_mm`` on CPU (torch 2.13) reads garbage
    from an operand whose size-1 dimension has another stride, which ``.contiguous()`` keeps."""
    return torch.empty(t.shape, dtype=t.dtype, device=t.device).copy_(t)


def _limbs(q: np.ndarray) -> torch.Tensor:
    """Integer weights ``q`` (K, D), ``|q| <= W_MAX``, as int8 limbs (D, >= 3K): balanced base-256 digits,
    ``q = d0 + 2^8 d1 + 2^16 d2``, digit j of component k in column jK + k."""
    digits = []
    for _ in _LIMBS:
        d = (q + 128) % 256 - 128
        digits.append(d)
        q = (q - d) // 256
    limbs = np.concatenate(digits).astype(np.int8)
    pad = -len(limbs) % 16  # int8 GEMM kernels run ~1.4x faster on a multiple of 16 columns (60 -> 64)
    limbs = np.concatenate([limbs, np.zeros((pad, limbs.shape[1]), dtype=np.int8)])
    return torch.from_numpy(np.ascontiguousarray(limbs.T))


class EMKernel:
    """Binary data held once in the form the backend reads, and the EM passes over it.

    ``x`` is a uint8 (N, D) array of 0/1. The int8 backend on the CPU runs the
    native kernel when it is available (``native=None``; ``True`` requires it,
    ``False`` forbids it) and K <= 64, else the torch int8 products; both give
    the same integer sums. The torch kernels visit chunks of ``chunk_rows``
    rows: two matrix products and a few in-place passes over the (B, K) block
    each; the sufficient statistics accumulate in float64 (float32 backend) or
    exactly in int64 (int8). Never N x K x D.
    """

    def __init__(self, x: np.ndarray, device: torch.device, backend: str, chunk_rows: int | None = None, *,
                 native: bool | None = None):
        self.device, self.backend = device, backend
        self.n, self.d = x.shape
        self.native: NativeEM | None = None
        if backend == "int8" and device.type == "cpu" and native is not False:
            lib = em_native.load()
            if lib is None and native:
                raise RuntimeError(f"the native EM kernel is unavailable: {em_native.status()}")
            if lib is not None and (self.d <= 16384 or native):
                self.native = NativeEM(lib, x)
        self._source = x if self.native is not None else None  # for the torch data, built if ever needed
        self._x = None if self.native is not None else self._device_data(x)
        if chunk_rows is None:
            # CPU: a chunk and its (B, K) block stay in cache between the two products; GPU: one launch.
            chunk_rows = (1 << 16) if device.type != "cpu" else 2048
        self.chunk_rows = max(1, int(chunk_rows))

    def _device_data(self, x: np.ndarray) -> torch.Tensor:
        if self.backend == "int8":
            # int8, with a column of ones appended: the M-step product then also yields N_k (exactly)
            aug = np.ones((self.n, self.d + 1), dtype=np.int8)
            aug[:, :self.d] = x
            # sum_n x_nd (and N for the ones column), for the byte offset of the responsibilities
            self.colsum = torch.from_numpy(np.append(x.sum(axis=0, dtype=np.int64), self.n)).to(self.device)
            return torch.from_numpy(aug).to(self.device)
        if not x.flags.writeable:  # torch warns on read-only buffers
            x = x.copy()
        return torch.from_numpy(np.ascontiguousarray(x)).to(device=self.device, dtype=torch.float32)

    @property
    def x(self) -> torch.Tensor:
        """The data as the torch kernels read it (int8 with a ones column, or float32)."""
        if self._x is None:
            self._x = self._device_data(self._source)
        return self._x

    def _uses_native(self, k: int) -> bool:
        return self.native is not None and k <= MAX_COMPONENTS

    def _chunks(self):
        for start in range(0, self.n, self.chunk_rows):
            yield self.x[start:start + self.chunk_rows]

    def _prepare(self, weights: np.ndarray, means: np.ndarray):
        if self.backend == "int8":
            q, shift, c = fixed_point_logits(weights, means)
            q = np.concatenate([q, np.zeros_like(q[:, :1])], axis=1)  # the ones column carries no weight
            as_tensor = functools.partial(torch.as_tensor, dtype=torch.float64, device=self.device)
            return _limbs(q).to(self.device), as_tensor(shift), as_tensor(c)
        p = torch.as_tensor(means, dtype=torch.float64, device=self.device)
        w, c = log_params(p)
        c = c + torch.log(torch.as_tensor(weights, dtype=torch.float64, device=self.device))
        return w.to(torch.float32).T.contiguous(), None, c

    def _joint(self, xb: torch.Tensor, prepared) -> torch.Tensor:
        """(B, K) float64 log pi_k + log P(x_n | p_k) for one chunk (a fresh tensor)."""
        wt, shift, c = prepared
        if self.backend == "int8":
            k = c.shape[0]
            a = torch._int_mm(xb, wt)[:, :3 * k].to(torch.float64).view(-1, 3, k)
            # x.q = d0 + 2^8 d1 + 2^16 d2, exact in float64 (< 2^34); times the power of two 2^-s exactly,
            # so c + x.q 2^-s is rounded once, as the native kernel does
            q = a[:, 2].mul(_LIMBS[2]).add_(a[:, 1], alpha=_LIMBS[1]).add_(a[:, 0])
            return torch.addcmul(c, q, shift)
        return torch.mm(xb, wt).to(torch.float64).add_(c)

    def _accumulators(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.backend == "int8":  # (3 bytes x K, D + 1) sums of the responsibilities' bytes, exact
            return (torch.zeros(k, dtype=torch.float64, device=self.device),
                    torch.zeros(3 * k, self.d + 1, dtype=torch.int64, device=self.device))
        return (torch.zeros(k, dtype=torch.float64, device=self.device),
                torch.zeros(k, self.d, dtype=torch.float64, device=self.device))

    def _add_resp_sums(self, xb: torch.Tensor, resp: torch.Tensor, nk: torch.Tensor, sums: torch.Tensor) -> None:
        """Add one chunk's N_k and eta^T x to the accumulators; ``resp`` (B, K) float32 is overwritten.

        int8: q = round(eta * (2^24 - 1)) is an exact float32 integer. Viewed as bytes, an int32 is
        (b_0, b_1, b_2, 0) little-endian; XOR 0x808080 turns b_j into the int8 b_j - 128, so one int8
        product of the (3K, B) byte matrix gives sum_n (b_j - 128) x_n for every byte at once, and
        eta^T x = (sum_j 2^{8j} sum_n (b_j - 128) x_n + 128 (1 + 2^8 + 2^16) sum_n x_n) / (2^24 - 1),
        every sum an exact integer (N_k from the ones column)."""
        if self.backend == "int8":
            b, k = resp.shape
            qi = resp.mul_(R_SCALE).round_().to(torch.int32).bitwise_xor_(0x808080)
            # bytes 0-2 of every q as a dense (3K, B) matrix: ~20% cheaper than multiplying all four
            digits = _dense(qi.view(torch.int8).view(b, k, 4)[:, :, :3].permute(2, 1, 0)).view(3 * k, b)
            sums += torch._int_mm(digits, xb)  # (3K, D + 1)
        else:
            nk += resp.sum(dim=0, dtype=torch.float64)
            sums += torch.mm(resp.T, xb)

    def _finish(self, nk: torch.Tensor, sums: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "int8":
            by_byte = sums.view(3, -1, self.d + 1)  # rows j * K + k: byte j of component k
            exact = by_byte[0] + by_byte[1] * _LIMBS[1] + by_byte[2] * _LIMBS[2] + _R_OFFSET * self.colsum
            exact = exact.cpu().numpy().astype(np.float64) / R_SCALE
            return exact[:, self.d], exact[:, :self.d]
        return nk.cpu().numpy(), sums.cpu().numpy()

    @torch.inference_mode()
    def statistics(self, weights: np.ndarray, means: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """One fused E+M pass: (sum_n log P(x_n), N_k, S = eta^T X) at the given parameters."""
        if self._uses_native(len(weights)):
            total, nk, sums = self.native.statistics(weights, means)
            return total, nk / R_SCALE, sums / R_SCALE
        prepared = self._prepare(weights, means)
        nk, sums = self._accumulators(len(weights))
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for xb in self._chunks():
            joint = self._joint(xb, prepared)
            top = joint.amax(dim=1, keepdim=True)
            # After the float64 shift every exponent is <= 0 and float32 keeps eta to its own precision.
            # Exponents below -80 are raised to -80: e^-80 is already invisible next to the largest
            # term (1) at float32 precision, and exp of a float32 denormal result is ~10x slower.
            e = joint.sub_(top).to(torch.float32).clamp_(min=-80.0).exp_()
            norm = e.sum(dim=1, keepdim=True)
            total += (top + norm.log()).sum()
            self._add_resp_sums(xb, e.div_(norm), nk, sums)
        return (float(total), *self._finish(nk, sums))

    @torch.inference_mode()
    def resp_sums(self, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N_k, eta^T X) for given responsibilities (the M-step of an initialisation)."""
        if self._uses_native(resp.shape[1]):
            # the same fixed point as the fused pass: round(float32(eta) * float32(2^24 - 1)), half to even
            fixed = np.rint(np.asarray(resp, dtype=np.float32) * np.float32(R_SCALE)).astype(np.int64)
            nk, sums = self.native.resp_sums_fixed(fixed)
            return nk / R_SCALE, sums / R_SCALE
        r = torch.as_tensor(resp, dtype=torch.float32, device=self.device)
        nk, sums = self._accumulators(r.shape[1])
        for start, xb in zip(range(0, self.n, self.chunk_rows), self._chunks()):
            self._add_resp_sums(xb, r[start:start + len(xb)].clone(), nk, sums)
        return self._finish(nk, sums)

    @torch.inference_mode()
    def joint(self, weights: np.ndarray, means: np.ndarray) -> np.ndarray:
        """The full (N, K) float64 log joint (for predict / score)."""
        if self.native is not None:
            q, shift, c = fixed_point_logits(weights, means)
            return self.native.logits(q) * shift + c  # exact products, one rounding: as the kernels
        prepared = self._prepare(weights, means)
        return torch.cat([self._joint(xb, prepared) for xb in self._chunks()]).cpu().numpy()

    @torch.inference_mode()
    def dot(self, rows: np.ndarray) -> np.ndarray:
        """X @ rows.T for 0/1 ``rows`` (M, D): exact counts of shared ones, float64 (N, M)."""
        if self.native is not None:
            return self.native.logits(np.asarray(rows, dtype=np.int64)).astype(np.float64)
        r = torch.as_tensor(np.ascontiguousarray(rows), device=self.device)
        if self.backend == "int8":
            rt = _dense(torch.cat([r, torch.zeros_like(r[:, :1])], dim=1).to(torch.int8).T)
            out = [torch._int_mm(xb, rt) for xb in self._chunks()]
        else:
            rt = r.to(torch.float32).T.contiguous()
            out = [torch.mm(xb, rt) for xb in self._chunks()]
        return torch.cat(out).to(torch.float64).cpu().numpy()
