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
  gives :math:`\log 0`. The update is
  :func:`genverify.numerics.em.m_step_from_statistics`, the same function as
  the float64 reference :func:`genverify.numerics.em.m_step` runs.

Both steps are fused, in one of two kernels (``backend``: ``'float32'`` or
the exact ``'int8'``); see :mod:`genverify.models.em_kernels` and, for the
native int8 kernel, :mod:`genverify.models.em_native`.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006),
section 9.3.3; scikit-learn's ``sklearn.mixture.GaussianMixture`` for the
estimator interface.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from tqdm import tqdm

from genverify.numerics.em import m_step_from_statistics

from ._sklearn_compat import Interval, StrOptions, fit_context, validate_data
from .devices import resolve_device
from .em_kernels import EMKernel, int8_available, log_params

__all__ = ["BernoulliMixture", "DEVICE_KINDS", "e_step", "log_joint", "resolve_em_device"]

#: Where EM may run: it accumulates in float64, which MPS lacks.
DEVICE_KINDS = ("cpu", "cuda")


def resolve_em_device(name: str = "cpu") -> torch.device:
    """The device a ``BernoulliMixture(device=name)`` computes on: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    Names are exact, as scikit-learn parameters are (``"CPU"`` is an error);
    errors are :class:`~genverify.core.ParameterError` naming ``device``.
    """
    return resolve_device(name, allowed=DEVICE_KINDS, case_sensitive=True)


# ------------------------------------------------------------------ the E-step (any float dtype)


def log_joint(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    r"""The (N, K) matrix :math:`\log\pi_k + \log P(x_n \mid p_k)`, in ``x``'s float dtype.

    One matrix product: :math:`X w^\top + (c + \log\pi)`; ``means`` must lie
    strictly inside (0, 1).
    """
    w, c = log_params(means.to(torch.float64))  # before any rounding: p near 1 must not become 1
    return torch.addmm((c + torch.log(weights.to(torch.float64))).to(x.dtype), x, w.T.to(x.dtype))


def e_step(x: torch.Tensor, weights: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""E-step (2b): ``(log P(x_n), log eta_nk)``, shapes (N,) and (N, K).

    .. math:: \log\eta_{nk} = \ell_{nk} - \log\sum_j e^{\ell_{nj}}
    """
    joint = log_joint(x, weights, means)
    log_norm = torch.logsumexp(joint, dim=1)
    return log_norm, joint - log_norm[:, None]


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
        The kernel: 'int8' exact integer sums of fixed-point parameters (CPU
        only; the native kernel, compiled at first use, else torch int8
        products), 'float32' plain float32 products. 'auto' = 'int8' on CPU
        when either implementation is available there, else 'float32' (on
        CUDA always).
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
        "device": [str],  # the values are checked by resolve_em_device ('cuda:N' has no finite option set)
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

    def _resolve_backend(self, device: torch.device) -> str:
        if self.backend == "float32":
            return "float32"
        works = device.type == "cpu" and int8_available(self.n_components)
        if self.backend == "int8" and not works:
            raise ValueError(f"backend='int8' needs the CPU and the native EM kernel or a torch whose "
                             f"torch._int_mm is exact there (device is {device.type!r}); use backend='float32' "
                             "or 'auto'")
        return "int8" if works else "float32"

    def _kernel(self, x: np.ndarray) -> EMKernel:
        """Binary ``x`` held on the resolved device in the resolved backend's form."""
        device = resolve_em_device(self.device)
        return EMKernel(x, device, self._resolve_backend(device))

    # -------------------------------------------------------------- fitting

    def _params_from_sums(self, nk: np.ndarray, sums: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The M-step from sufficient statistics: :func:`genverify.numerics.em.m_step_from_statistics`
        with ``alpha`` pseudo-counts of ones and of zeros (the Beta(1 + alpha, 1 + alpha) MAP update).

        Guards against rounding around it: a component no image explains keeps a tiny positive weight
        (a weight pseudo-count of 10 eps, as GaussianMixture's) so log pi stays finite; float32 sums can
        round past N_k, so S is clipped to [0, N_k]; and (N_k + alpha) / (N_k + 2 alpha) can round to 1
        in float64 for a tiny alpha, so 1 - p is kept >= 2^-53 for log(1 - p) to stay finite."""
        sums = np.clip(sums, 0.0, nk[:, None])
        weights, means = m_step_from_statistics(nk, sums, n, pseudo_counts=(self.alpha, self.alpha),
                                                weight_pseudo_count=10 * np.finfo(np.float64).eps)
        return weights / weights.sum(), np.minimum(means, 1.0 - 2.0**-53)

    def _initial_resp(self, kernel: EMKernel, x: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        n, k = x.shape[0], self.n_components
        if self.init_params == "random":
            resp = rng.uniform(size=(n, k))
            return resp / resp.sum(axis=1, keepdims=True)
        if self.init_params == "kmeans":
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

    def _run_em(self, kernel: EMKernel, x: np.ndarray, rng, init: int):
        n = x.shape[0]
        nk, sums = kernel.resp_sums(self._initial_resp(kernel, x, rng))
        weights, means = self._params_from_sums(nk, sums, n)
        history, converged, n_iter = [], False, 0
        bar = None
        if self.verbose:
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

    @fit_context(prefer_skip_nested_validation=True)
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

    def n_parameters(self) -> int:
        """Free parameters of the fitted mixture: K D Bernoulli means and K - 1 weights (they sum to 1)."""
        check_is_fitted(self)
        return self.n_components * self.means_.shape[1] + self.n_components - 1

    def bic(self, X) -> float:
        """Bayesian information criterion: -2 log L + (K D + K - 1) log N. Lower is better."""
        n = self._check_X(X).shape[0]
        return float(-2.0 * self.score(X) * n + self.n_parameters() * math.log(n))

    def aic(self, X) -> float:
        """Akaike information criterion: -2 log L + 2 (K D + K - 1). Lower is better."""
        n = self._check_X(X).shape[0]
        return float(-2.0 * self.score(X) * n + 2 * self.n_parameters())
