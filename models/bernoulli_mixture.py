r"""A mixture of multivariate Bernoullis fitted by EM, on torch (questions 2 and 3).

The model (question 2): pick a component :math:`k` with probability
:math:`\pi_k`, then draw every pixel independently,
:math:`x_d \sim \mathrm{Bernoulli}(p_{kd})`, so

.. math:: P(x \mid \pi, p) = \sum_{k=1}^{K} \pi_k \prod_{d=1}^{D} p_{kd}^{x_d} (1 - p_{kd})^{1 - x_d}.

EM alternates (2b, 2c; Bishop, *PRML* 9.3.3):

* E-step, in log space: :math:`\ell_{nk} = \log\pi_k + \sum_d x_{nd} \log p_{kd} + (1 - x_{nd})\log(1 - p_{kd})
  = \log\pi_k + c_k + x_n^\top w_k` with :math:`w_{kd} = \log p_{kd} - \log(1 - p_{kd})`
  and :math:`c_k = \sum_d \log(1 - p_{kd})`: ONE (N x D)(D x K) matrix product;
  then :math:`\log P(x_n) = \mathrm{logsumexp}_k\, \ell_{nk}` and
  :math:`\eta_{nk} = \exp(\ell_{nk} - \log P(x_n))`.
* M-step: :math:`N_k = \sum_n \eta_{nk}`, :math:`S = \eta^\top X` (the second
  matrix product), :math:`\pi_k = N_k / N` and, with additive smoothing
  :math:`\alpha` (the MAP update under a :math:`\mathrm{Beta}(1 + \alpha, 1 + \alpha)`
  prior, as ``BernoulliNB``'s ``alpha``),
  :math:`p_{kd} = (S_{kd} + \alpha) / (N_k + 2\alpha)`, strictly inside (0, 1)
  for :math:`\alpha > 0`, so a pixel that is 0 (or 1) in every image never
  gives :math:`\log 0`.

Both steps are fused: the rows of X are visited in cache-sized chunks, and
each chunk's responsibilities are multiplied back into :math:`S` while the
chunk is still in cache. Nothing of size N x K x D is ever formed.

Two kernels (``backend``):

* ``'float32'``: float32 matrix products, sums accumulated in float64.
* ``'int8'`` (the CPU default): binary X is exact in int8, and the CPU's
  int8 dot-product instructions (AVX512-VNNI) multiply 4x faster than float32.
  The parameters are written in fixed point and split into three signed 8-bit
  limbs, :math:`w_k \approx 2^{-s_k}(l_0 + 2^8 l_1 + 2^{16} l_2)` (24 bits,
  float32's precision), so :math:`x^\top w_k` is three exact int32 products;
  likewise the responsibilities, :math:`\eta \approx (b_0 + 2^8 b_1 + 2^{16} b_2)/(2^{24} - 1)` with
  bytes :math:`b_j` (stored as :math:`b_j - 128`).
  Every sum over pixels and images is then exact integer arithmetic: the only
  roundings are of the logits and of the responsibilities, to float32's 24
  bits, and the sufficient statistics do not depend on how rows are chunked.
  (``torch._int_mm``, the int8 x int8 -> int32 product, is private
  torch API; ``backend='auto'`` checks at first use that it exists and is
  exact, else uses float32.)

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006),
section 9.3.3; scikit-learn's ``sklearn.mixture.GaussianMixture`` for the
estimator interface.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["BernoulliMixture", "e_step", "log_joint", "m_step"]


# ------------------------------------------------------------------ the two steps (any float dtype)


def _log_params(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, c): w = log p - log(1 - p) (K, D) and c = sum_d log(1 - p) (K,)."""
    log1m = torch.log1p(-means)
    return torch.log(means) - log1m, log1m.sum(dim=1)


def log_joint(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""The (N, K) matrix :math:`\log\pi_k + \log P(x_n \mid p_k)`, in ``x``'s float dtype.

    One matrix product: :math:`X w^\top + (c + \log\pi)`; ``means`` must lie
    strictly inside (0, 1).
    """
    w, c = _log_params(means.to(torch.float64))  # before any rounding: p near 1 must not become 1
    return torch.addmm((c + torch.log(weights.to(torch.float64))).to(x.dtype), x, w.T.to(x.dtype))


def e_step(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""E-step (2b): ``(log P(x_n), log eta_nk)``, shapes (N,) and (N, K).

    .. math:: \log\eta_{nk} = \ell_{nk} - \log\sum_j e^{\ell_{nj}}
    """
    joint = log_joint(x, weights, means)
    log_norm = torch.logsumexp(joint, dim=1)
    return log_norm, joint - log_norm[:, None]


def m_step(x: torch.Tensor, resp: torch.Tensor, alpha: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""M-step (2c): ``(weights, means)`` from responsibilities ``resp`` (N, K).

    .. math:: \pi_k = \frac{N_k}{N}, \qquad p_{kd} = \frac{\sum_n \eta_{nk} x_{nd} + \alpha}{N_k + 2\alpha}

    ``alpha = 0`` is the maximum-likelihood update; ``alpha > 0`` the MAP
    update under a Beta(1 + alpha, 1 + alpha) prior. Sums in float64.
    """
    resp64 = resp.to(torch.float64)
    nk = resp64.sum(dim=0)
    sums = (resp.T @ x.to(resp.dtype)).to(torch.float64)
    return nk / x.shape[0], (sums + alpha) / (nk[:, None] + 2.0 * alpha)


# ------------------------------------------------------------------ fused, chunked kernels

_LIMBS = (1, 1 << 8, 1 << 16)  # weights of three base-256 digits
_W_MAX = (1 << 23) - (1 << 16)  # an integer |q| <= this has three balanced digits in [-128, 127]
_R_SCALE = (1 << 24) - 1  # responsibilities in fixed point: three bytes
_R_OFFSET = 128 * (_LIMBS[0] + _LIMBS[1] + _LIMBS[2])  # a byte b is multiplied as the int8 b - 128


@functools.cache
def _int8_matmul_works(device_type: str) -> bool:
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


def _dense(t: torch.Tensor) -> torch.Tensor:
    """A copy with the standard row-major strides. ``torch._int_mm`` on CPU (torch 2.13) reads garbage
    from an operand whose size-1 dimension has another stride, which ``.contiguous()`` keeps."""
    return torch.empty(t.shape, dtype=t.dtype, device=t.device).copy_(t)


def _fixed_point_limbs(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 logits ``w`` (K, D) as int8 limbs (D, >= 3K) and float64 scales (3, K) such that
    ``X @ q.T * 2^-s = sum_j (X @ limbs)[:, jK:(j+1)K] * scales[j]`` with ``q = round(w * 2^s)`` per row:
    balanced base-256 digits, ``q = d0 + 2^8 d1 + 2^16 d2``, and ``2^s`` the largest power of two
    keeping ``|q| <= _W_MAX`` (24 significant bits, as float32). The scales are powers of two, so
    every product of an integer sum with its scale is exact."""
    top = w.abs().amax(dim=1).clamp_min(1e-30)
    s = torch.floor(torch.log2(_W_MAX / top)).clamp(max=200.0)
    q = torch.round(w * torch.exp2(s)[:, None]).to(torch.int64)
    digits = []
    for _ in _LIMBS:
        d = torch.remainder(q + 128, 256) - 128
        digits.append(d)
        q = (q - d) // 256
    limbs = torch.cat(digits, dim=0).to(torch.int8)
    pad = -len(limbs) % 16  # int8 GEMM kernels run ~1.4x faster on a multiple of 16 columns (60 -> 64)
    limbs = _dense(torch.cat([limbs, limbs.new_zeros(pad, limbs.shape[1])]).T)
    scales = torch.stack([weight * torch.exp2(-s) for weight in _LIMBS])
    return limbs, scales


class _EMKernel:
    """Binary data held once on the device in the form the backend multiplies, visited in chunks.

    ``x`` is a uint8 (N, D) array of 0/1. Per chunk of B rows the work is two
    matrix products and a few in-place passes over the (B, K) block; the
    sufficient statistics accumulate in float64 (float32 backend) or exactly
    in int64 (int8 backend). Never N x K x D.
    """

    def __init__(self, x: np.ndarray, device: torch.device, backend: str, chunk_rows: int | None = None):
        self.device, self.backend = device, backend
        self.n, self.d = x.shape
        if backend == "int8":
            # int8, with a column of ones appended: the M-step product then also yields N_k (exactly)
            aug = np.ones((self.n, self.d + 1), dtype=np.int8)
            aug[:, :self.d] = x
            self.x = torch.from_numpy(aug).to(device)
            # sum_n x_nd (and N for the ones column), for the byte offset of the responsibilities
            colsum = np.append(x.sum(axis=0, dtype=np.int64), self.n)
            self.colsum = torch.from_numpy(colsum).to(device)
        else:
            if not x.flags.writeable:  # torch warns on read-only buffers
                x = x.copy()
            self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float32)
        if chunk_rows is None:
            # CPU: a chunk and its (B, K) block stay in cache between the two products; GPU: one launch.
            chunk_rows = (1 << 16) if device.type != "cpu" else 2048
        self.chunk_rows = max(1, int(chunk_rows))

    def _chunks(self):
        for start in range(0, self.n, self.chunk_rows):
            yield self.x[start:start + self.chunk_rows]

    def _prepare(self, weights: np.ndarray, means: np.ndarray):
        p = torch.as_tensor(means, dtype=torch.float64, device=self.device)
        w, c = _log_params(p)
        c = c + torch.log(torch.as_tensor(weights, dtype=torch.float64, device=self.device))
        if self.backend == "int8":
            w = torch.cat([w, torch.zeros_like(w[:, :1])], dim=1)  # the ones column carries no weight
            return (*_fixed_point_limbs(w), c)
        return w.to(torch.float32).T.contiguous(), None, c

    def _joint(self, xb: torch.Tensor, prepared) -> torch.Tensor:
        """(B, K) float64 log pi_k + log P(x_n | p_k) for one chunk (a fresh tensor)."""
        wt, scales, c = prepared
        if self.backend == "int8":
            k = c.shape[0]
            a = torch._int_mm(xb, wt)[:, :3 * k].to(torch.float64).view(-1, 3, k)
            return (torch.addcmul(c, a[:, 0], scales[0]).addcmul_(a[:, 1], scales[1])
                    .addcmul_(a[:, 2], scales[2]))
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
            qi = resp.mul_(_R_SCALE).round_().to(torch.int32).bitwise_xor_(0x808080)
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
            exact = exact.cpu().numpy().astype(np.float64) / _R_SCALE
            return exact[:, self.d], exact[:, :self.d]
        return nk.cpu().numpy(), sums.cpu().numpy()

    @torch.inference_mode()
    def statistics(self, weights: np.ndarray, means: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """One fused E+M pass: (sum_n log P(x_n), N_k, S = eta^T X) at the given parameters."""
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
        r = torch.as_tensor(resp, dtype=torch.float32, device=self.device)
        nk, sums = self._accumulators(r.shape[1])
        for start, xb in zip(range(0, self.n, self.chunk_rows), self._chunks()):
            self._add_resp_sums(xb, r[start:start + len(xb)].clone(), nk, sums)
        return self._finish(nk, sums)

    @torch.inference_mode()
    def joint(self, weights: np.ndarray, means: np.ndarray) -> np.ndarray:
        """The full (N, K) float64 log joint (for predict / score)."""
        prepared = self._prepare(weights, means)
        return torch.cat([self._joint(xb, prepared) for xb in self._chunks()]).cpu().numpy()

    @torch.inference_mode()
    def dot(self, rows: np.ndarray) -> np.ndarray:
        """X @ rows.T for 0/1 ``rows`` (M, D): exact counts of shared ones, float64 (N, M)."""
        r = torch.as_tensor(np.ascontiguousarray(rows), device=self.device)
        if self.backend == "int8":
            rt = _dense(torch.cat([r, torch.zeros_like(r[:, :1])], dim=1).to(torch.int8).T)
            out = [torch._int_mm(xb, rt) for xb in self._chunks()]
        else:
            rt = r.to(torch.float32).T.contiguous()
            out = [torch.mm(xb, rt) for xb in self._chunks()]
        return torch.cat(out).to(torch.float64).cpu().numpy()


# ------------------------------------------------------------------ the estimator


class BernoulliMixture(DensityMixin, BaseEstimator):
    r"""Mixture of K multivariate Bernoullis over binary vectors (MNIST digits), fitted by EM.

    .. math:: P(x) = \sum_{k=1}^{K} \pi_k \prod_{d=1}^{D} p_{kd}^{x_d}(1 - p_{kd})^{1 - x_d}

    Follows ``sklearn.mixture.GaussianMixture``: ``fit``, ``predict``,
    ``predict_proba``, ``score`` (mean log-likelihood per sample, nats),
    ``score_samples``, ``sample``, ``bic``, ``aic``; the best of ``n_init``
    runs is kept. Computes on torch (``device``); the module docstring has the
    E and M steps and the two kernels.

    Parameters
    ----------
    n_components : int, default=1
        K, the number of mixture components.
    tol : float, default=1e-4
        Stop when the mean log-likelihood per sample changes by less than this.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the run with the highest final
        log-likelihood is kept.
    init_params : {'kmeans', 'k-means++', 'random_from_data', 'random'}, default='kmeans'
        How the first M-step gets its responsibilities. 'kmeans': the labels
        of one ``sklearn.cluster.KMeans`` run (as GaussianMixture).
        'k-means++': K images chosen by D^2 sampling (Hamming distance), then
        each image assigned to the nearest; cheaper, but it favours outlying
        images and lands in poor optima more often. 'random_from_data': the
        same with K distinct images drawn uniformly. 'random': random
        responsibilities.
    alpha : float, default=0.01
        Additive smoothing, > 0: the M-step is the MAP update under a
        Beta(1 + alpha, 1 + alpha) prior on every p, which keeps every p
        strictly inside (0, 1) so a pixel constant across the data never
        yields log 0.
    binarize : float or None, default=None
        None: X must contain only 0 and 1 (else ``ValueError``). A float:
        values strictly above it become 1, others 0 (as ``BernoulliNB``).
    device : {'cpu', 'cuda', 'cuda:N', 'auto'}, default='cpu'
        Where the data and the matrix products live; 'cuda:N' is the N-th
        CUDA device, 'auto' picks CUDA when available.
    backend : {'auto', 'int8', 'float32'}, default='auto'
        The matrix-product kernel: 'int8' exact integer products of
        fixed-point limbs (CPU only), 'float32' plain float32 products.
        'auto' = 'int8' on CPU when ``torch._int_mm`` is exact there, else
        'float32' (on CUDA always).
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    verbose : int, default=0
        > 0: a progress bar per initialisation with the current
        log-likelihood.

    Attributes
    ----------
    weights_ : ndarray (K,)
        Mixing proportions pi.
    means_ : ndarray (K, n_features)
        Bernoulli parameters p, strictly inside (0, 1).
    converged_ : bool
        Whether the kept run met ``tol`` within ``max_iter``.
    n_iter_ : int
        EM iterations of the kept run.
    lower_bound_ : float
        Mean log-likelihood per training sample (nats) at the fitted
        parameters (EM increases it, together with the log prior, at
        every iteration).
    lower_bounds_ : list of float
        That value after each iteration of the kept run, starting from the
        initial parameters (``n_iter_ + 1`` entries).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = np.array([[0.9] * 8 + [0.1] * 8, [0.1] * 8 + [0.9] * 8])
    >>> X = (rng.random((400, 16)) < p[rng.integers(0, 2, 400)]).astype(np.uint8)
    >>> bm = BernoulliMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(np.sort(bm.means_[:, 0]), 1).tolist()
    [0.1, 0.9]
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0.0, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init_params": [StrOptions({"k-means++", "random_from_data", "kmeans", "random"})],
        "alpha": [Interval(Real, 0.0, None, closed="neither")],
        "binarize": [None, Interval(Real, None, None, closed="neither")],
        "device": [str],  # the values are checked in _resolve_device ('cuda:N' has no finite option set)
        "backend": [StrOptions({"auto", "int8", "float32"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_components=1, *, tol=1e-4, max_iter=100, n_init=1, init_params="kmeans",
                 alpha=0.01, binarize=None, device="cpu", backend="auto", random_state=None, verbose=0):
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.alpha = alpha
        self.binarize = binarize
        self.device = device
        self.backend = backend
        self.random_state = random_state
        self.verbose = verbose

    # -------------------------------------------------------------- input

    def _binary(self, X: np.ndarray) -> np.ndarray:
        """uint8 0/1 copy (or view) of validated X."""
        if self.binarize is not None:
            return (X > self.binarize).astype(np.uint8)
        if X.dtype == np.uint8 or X.dtype == np.bool_:
            bad = X.dtype == np.uint8 and bool((X > 1).any())
        else:
            bad = bool(((X != 0) & (X != 1)).any())
        if bad:
            raise ValueError(f"X must contain only 0 and 1 (got values in [{X.min()}, {X.max()}]); "
                             "pass binarize=threshold (e.g. binarize=0.5 for pixels in [0, 1]) to binarise it")
        return X.astype(np.uint8, copy=False)

    def _resolve_device(self) -> torch.device:
        name = self.device
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if name == "cpu":
            return torch.device("cpu")
        if name == "cuda" or re.fullmatch(r"cuda:\d+", name):
            if not torch.cuda.is_available():
                raise ValueError(f"device={name!r} but CUDA is not available (torch.cuda.is_available() is False); "
                                 "use device='cpu' or 'auto'")
            device = torch.device(name)
            if device.index is not None and device.index >= torch.cuda.device_count():
                raise ValueError(f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA "
                                 f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
            return device
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {name!r}")

    def _resolve_backend(self, device: torch.device) -> str:
        if self.backend == "float32":
            return "float32"
        works = device.type == "cpu" and _int8_matmul_works("cpu")
        if self.backend == "int8" and not works:
            raise ValueError(f"backend='int8' needs the CPU and a torch whose torch._int_mm is exact there "
                             f"(device is {device.type!r}); use backend='float32' or 'auto'")
        return "int8" if works else "float32"

    def _kernel(self, x: np.ndarray) -> _EMKernel:
        """Binary ``x`` held on the resolved device in the resolved backend's form."""
        device = self._resolve_device()
        return _EMKernel(x, device, self._resolve_backend(device))

    # -------------------------------------------------------------- fitting

    def _params_from_sums(self, nk: np.ndarray, sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed M-step from sufficient statistics. A component no image explains keeps a
        tiny positive weight (as GaussianMixture's 10 eps) so log pi stays finite."""
        weights = (nk + 10 * np.finfo(np.float64).eps) / (n + 10 * np.finfo(np.float64).eps * len(nk))
        # float32 sums can round past N_k; and (N_k + alpha) / (N_k + 2 alpha) can round to 1 in
        # float64 for a tiny alpha: keep 1 - p >= 2^-53 so log(1 - p) stays finite
        sums = np.clip(sums, 0.0, nk[:, None])
        means = np.minimum((sums + self.alpha) / (nk[:, None] + 2.0 * self.alpha), 1.0 - 2.0**-53)
        return weights / weights.sum(), means

    def _initial_resp(self, kernel: _EMKernel, x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        n, k = x.shape[0], self.n_components
        if self.init_params == "random":
            resp = rng.uniform(size=(n, k))
            return resp / resp.sum(axis=1, keepdims=True)
        if self.init_params == "kmeans":
            from sklearn.cluster import KMeans

            labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(x.astype(np.float32)).labels_
        else:
            counts = x.sum(axis=1, dtype=np.float64)  # |x_n|; Hamming(x, c) = |x| + |c| - 2 x.c
            if self.init_params == "random_from_data":
                centers = rng.choice(n, size=k, replace=False)
            else:
                centers = [int(rng.randint(n))]
                best = counts + counts[centers[0]] - 2.0 * kernel.dot(x[centers])[:, 0]
                for _ in range(1, k):
                    total = best.sum()
                    nxt = int(rng.choice(n, p=best / total)) if total > 0 else int(rng.randint(n))
                    centers.append(nxt)
                    best = np.minimum(best, counts + counts[nxt] - 2.0 * kernel.dot(x[[nxt]])[:, 0])
            dist = counts[:, None] + counts[centers][None, :] - 2.0 * kernel.dot(x[centers])
            labels = np.argmin(dist, axis=1)
        resp = np.zeros((n, k))
        resp[np.arange(n), labels] = 1.0
        return resp

    def _run_em(self, kernel: _EMKernel, x: np.ndarray, rng, init: int):
        n = x.shape[0]
        nk, sums = kernel.resp_sums(self._initial_resp(kernel, x, rng))
        weights, means = self._params_from_sums(nk, sums, n)
        history, converged, n_iter = [], False, 0
        bar = None
        if self.verbose:
            from tqdm import tqdm

            bar = tqdm(total=self.max_iter, desc=f"EM K={self.n_components} init {init + 1}/{self.n_init}",
                       leave=False)
        try:
            for n_iter in range(1, self.max_iter + 1):
                total, nk, sums = kernel.statistics(weights, means)  # log-lik at the current parameters
                history.append(total / n)
                weights, means = self._params_from_sums(nk, sums, n)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(f"log-lik/image {history[-1]:.4f}")
                if len(history) > 1 and abs(history[-1] - history[-2]) < self.tol:
                    converged = True
                    break
            total, _, _ = kernel.statistics(weights, means)
            history.append(total / n)
        finally:
            if bar is not None:
                bar.close()
        return weights, means, history, converged, n_iter

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit by EM, keeping the best of ``n_init`` runs. ``y`` is ignored."""
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the most responsible component of each training image."""
        return self.fit(X).predict(X)

    def _fit(self, X) -> None:
        X = validate_data(self, X, reset=True, ensure_min_samples=1, dtype="numeric")
        x = self._binary(X)
        n = x.shape[0]
        if self.n_components > n:
            raise ValueError(f"n_components={self.n_components} must be <= n_samples={n}")
        kernel = self._kernel(x)
        rng = check_random_state(self.random_state)
        best = None
        for init in range(self.n_init):
            run = self._run_em(kernel, x, rng, init)
            if best is None or run[2][-1] > best[2][-1]:
                best = run
        weights, means, history, converged, n_iter = best
        if not converged and self.max_iter > 0:
            import warnings

            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"BernoulliMixture did not converge in max_iter={self.max_iter} iterations "
                          f"(tol={self.tol}); try a larger max_iter or tol", ConvergenceWarning, stacklevel=3)
        self.weights_, self.means_ = weights, means
        self.converged_, self.n_iter_ = converged, n_iter
        self.lower_bounds_, self.lower_bound_ = history, history[-1]

    # -------------------------------------------------------------- inference

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype="numeric")

    def _log_joint(self, X) -> np.ndarray:
        return self._kernel(self._binary(self._check_X(X))).joint(self.weights_, self.means_)

    def score_samples(self, X) -> np.ndarray:
        """log P(x_n) per sample, nats, shape (N,)."""
        joint = self._log_joint(X)
        m = joint.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(joint - m).sum(axis=1, keepdims=True)))[:, 0]

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per sample, nats."""
        return float(self.score_samples(X).mean())

    def predict_proba(self, X) -> np.ndarray:
        """Responsibilities eta_nk = P(z_n = k | x_n), shape (N, K)."""
        joint = self._log_joint(X)
        joint -= joint.max(axis=1, keepdims=True)
        resp = np.exp(joint)
        return resp / resp.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most responsible component of each sample."""
        return self._log_joint(X).argmax(axis=1)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n_samples`` binary vectors: returns (X uint8 (n, D), component labels (n,)).

        Components are drawn with probabilities ``weights_``, then each pixel
        independently with probability ``means_`` (question 3e). Samples come
        grouped by component, as in GaussianMixture.
        """
        check_is_fitted(self)
        if not (isinstance(n_samples, Integral) and n_samples >= 1):
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        labels = np.repeat(np.arange(self.n_components), counts)
        x = (rng.uniform(size=(n_samples, self.means_.shape[1])) < self.means_[labels]).astype(np.uint8)
        return x, labels

    def _n_parameters(self) -> int:
        return self.n_components * self.means_.shape[1] + self.n_components - 1

    def bic(self, X) -> float:
        """Bayesian information criterion: -2 log L + (K D + K - 1) log N. Lower is better."""
        n = self._check_X(X).shape[0]
        return float(-2.0 * self.score(X) * n + self._n_parameters() * math.log(n))

    def aic(self, X) -> float:
        """Akaike information criterion: -2 log L + 2 (K D + K - 1). Lower is better."""
        n = self._check_X(X).shape[0]
        return float(-2.0 * self.score(X) * n + 2 * self._n_parameters())
