r"""Fitting q = N(m, s^2) to a target p by forward or reverse KL (question 1b), and the ELBO (1c).

Only the mean m and standard deviation s of q are free, as in homework
question 1b. For a target p:

* **forward KL** :math:`D_{KL}(p\|q) = E_p[\log p - \log q]` is minimised by
  moment matching, m = E_p[x], s^2 = Var_p[x] (registry ``kl-forward-fit``): q
  spreads over every mode ("mass-covering", "zero-avoiding");
* **reverse KL** :math:`D_{KL}(q\|p) = E_q[\log q - \log p]` only sees p where q
  has mass; for well-separated modes it has one local minimum per mode, each
  close to that component, and the best one is narrower than p
  ("mode-seeking", "zero-forcing"; registry ``kl-reverse-fit``).

Both divergences are computed by deterministic quadrature: every expectation
under a Gaussian N(c, r^2) is written E[f(c + r u)], u ~ N(0, 1), and
integrated by composite Gauss-Legendre on u in [-12, 12] (128 panels of 16
nodes). Gauss-Hermite is *not* used: the log-density of a well-separated
mixture switches between two parabolas over a short distance, and
Gauss-Hermite converges slowly on it (errors of 1e-2 at 256 nodes for a broad
q), while panels resolve the switch to 1e-14. The fits minimise these
quadratures with ``scipy.optimize`` (BFGS on (m, log s), analytic gradients).
:mod:`genverify.models.kl_fit_torch` is the second, independent route (a
trapezoid rule, ``torch.distributions`` densities, autograd, ``torch.optim.LBFGS``).

For 1c, the conjugate model z ~ N(0, 1), x | z ~ N(a z + b, sigma_x^2) per
dimension has a closed-form evidence, posterior and ELBO, with
log p(x) = ELBO(q) + KL(q || p(z|x)) (registry ``elbo-gap``); and
:class:`SquaredLatentModel` (x | z ~ N(z^2, sigma_x^2)) has a bimodal posterior
on which maximising the ELBO over Gaussian q is reverse-KL fitting: q locks
onto one mode.

>>> target = bimodal(separation=6.0)
>>> fwd = fit_forward_kl(target)
>>> bool(abs(fwd.m_ - target.mean()) < 1e-6 and abs(fwd.s_ - target.sd()) < 1e-6)
True
>>> rev = fit_reverse_kl(target)
>>> len(rev.optima_), bool(rev.s_ < target.sd())
(2, True)

(About 700 lines on purpose: the targets, the quadrature rules, both divergences, the
estimator and the ELBO models share one set of integration grids and one validation; split
apart, each part would re-export the others'.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)

from genverify.numerics._special import logsumexp
from genverify.numerics._validate import as_float, positive
from genverify.numerics.kl import kl_gaussian, kl_vae  # noqa: F401 - kl_gaussian: used by the doctests

__all__ = [
    "DEFAULT_WEIGHTS",
    "DEFAULT_MEANS",
    "DEFAULT_SDS",
    "GaussianMixture1D",
    "GaussianFit",
    "KLGaussianFit",
    "SquaredLatentModel",
    "bimodal",
    "default_starts",
    "distinct_optima",
    "conjugate_log_evidence",
    "conjugate_posterior",
    "elbo_conjugate",
    "elbo_gap",
    "fit_forward_kl",
    "fit_reverse_kl",
    "forward_kl",
    "maximize_elbo",
    "mixture_moments",
    "normal_expectation",
    "reverse_kl",
    "reverse_kl_grad",
]

#: The default target of question 1b: a well-separated bimodal mixture
#: 0.4 N(-3, 0.8^2) + 0.6 N(3, 1.2^2) (the modes are 6 apart, 5 pooled sds).
DEFAULT_WEIGHTS = (0.4, 0.6)
DEFAULT_MEANS = (-3.0, 3.0)
DEFAULT_SDS = (0.8, 1.2)

_LOG_2PI = math.log(2.0 * math.pi)
#: Half-width, in standard deviations, of every quadrature (mass beyond: 4e-33).
_HALF_WIDTH = 12.0


def _normal_logpdf(x, m, s):
    """log N(x | m, s^2)."""
    return -0.5 * _LOG_2PI - np.log(s) - 0.5 * ((x - m) / s) ** 2


# ----------------------------------------------------------------- quadrature


@functools.lru_cache(maxsize=16)
def _legendre_panels(lo: float, hi: float, n_panels: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of composite Gauss-Legendre on [lo, hi]: ``n_panels`` equal panels of ``order`` nodes."""
    t, wt = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, n_panels + 1)
    h = edges[1] - edges[0]
    nodes = (edges[:-1, None] + 0.5 * h * (t + 1.0)).ravel()
    weights = (0.5 * h * np.broadcast_to(wt, (n_panels, order))).ravel()
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


@functools.lru_cache(maxsize=8)
def _normal_rule(n_panels: int = 128, order: int = 16,
                 half_width: float = _HALF_WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Nodes u_i and weights omega_i with sum omega_i f(u_i) ≈ E[f(u)], u ~ N(0, 1).

    Composite Gauss-Legendre on [-half_width, half_width] times the standard
    normal density (exact up to the 4e-33 tail mass for polynomials of degree
    < 2 * order on each panel).
    """
    u, weights = _legendre_panels(-half_width, half_width, n_panels, order)
    omega = weights * np.exp(-0.5 * u * u - 0.5 * _LOG_2PI)
    omega.setflags(write=False)
    return u, omega


def normal_expectation(f: Callable[[np.ndarray], np.ndarray], mean, sd) -> np.ndarray:
    r"""E[f(X)] for X ~ N(mean, sd^2), by the composite Gauss-Legendre rule in u = (X - mean)/sd.

    ``mean`` and ``sd`` broadcast; ``f`` must be vectorised.

    .. math:: E[f(X)] = \int \varphi(u) f(\text{mean} + \text{sd}\,u)\,du \approx \sum_i \omega_i f(\text{mean} + \text{sd}\,u_i)

    >>> round(float(normal_expectation(lambda x: x**2, 1.0, 2.0)), 12)
    5.0
    """
    mean, sd = as_float("mean", mean), positive("sd", sd)
    u, omega = _normal_rule()
    x = np.asarray(mean)[..., None] + np.asarray(sd)[..., None] * u
    return np.sum(omega * f(x), axis=-1)


# ----------------------------------------------------------------- targets


class Target(Protocol):
    """What the fits need of a target density p (see :class:`GaussianMixture1D`)."""

    def logpdf(self, x: np.ndarray) -> np.ndarray: ...
    def dlogpdf(self, x: np.ndarray) -> np.ndarray: ...
    def mean(self) -> float: ...
    def var(self) -> float: ...
    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray: ...


def _mixture_arrays(weights, means, sds, *, atol: float = 1e-8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a mixture's parameters (components on the last axis); ValueError naming the argument."""
    w = as_float("weights", weights)
    mu = as_float("means", means)
    sd = as_float("sds", sds)
    for name, arr in (("weights", w), ("means", mu), ("sds", sd)):
        if arr.ndim == 0:
            raise ValueError(f"{name} must be a sequence with one entry per component, got {arr!r}")
        if arr.shape[-1] == 0:
            raise ValueError(f"{name} is empty: a mixture needs at least one component")
    try:
        w, mu, sd = np.broadcast_arrays(w, mu, sd)
    except ValueError:
        raise ValueError(f"weights, means and sds must have one entry per component; got shapes "
                         f"{np.shape(weights)}, {np.shape(means)}, {np.shape(sds)}") from None
    if np.shape(means)[-1] != np.shape(weights)[-1]:
        raise ValueError(f"means has {np.shape(means)[-1]} components but weights has {np.shape(weights)[-1]}")
    if np.shape(sds)[-1] != np.shape(weights)[-1]:
        raise ValueError(f"sds has {np.shape(sds)[-1]} components but weights has {np.shape(weights)[-1]}")
    if np.any(w < 0):
        raise ValueError(f"weights must be >= 0, got {weights!r}")
    total = w.sum(axis=-1)
    if np.any(np.abs(total - 1.0) > atol):
        raise ValueError(f"weights must sum to 1 (within {atol:g}), got sum {np.asarray(total).tolist()!r}")
    if np.any(sd <= 0):
        raise ValueError(f"sds must be > 0 (standard deviations), got {sds!r}")
    return w, mu, sd


def mixture_moments(weights, means, sds) -> tuple[np.ndarray, np.ndarray]:
    r"""Mean and variance of the mixture sum_k w_k N(mu_k, sigma_k^2): the forward-KL fit (``kl-forward-fit``).

    .. math:: m^* = \sum_k w_k\mu_k, \qquad
              s^{*2} = \sum_k w_k(\sigma_k^2 + \mu_k^2) - m^{*2}
                     = \sum_k w_k\sigma_k^2 + \sum_k w_k(\mu_k - m^*)^2

    Components lie on the last axis; leading axes broadcast (many mixtures at
    once). The variance is computed in the second, cancellation-free form.

    >>> mean, var = mixture_moments([0.5, 0.5], [-1.0, 1.0], [1.0, 1.0])
    >>> float(mean), float(var)
    (0.0, 2.0)
    """
    w, mu, sd = _mixture_arrays(weights, means, sds)
    mean = np.sum(w * mu, axis=-1)
    var = np.sum(w * (sd * sd + (mu - mean[..., None]) ** 2), axis=-1)
    return mean, var


class GaussianMixture1D:
    r"""A univariate Gaussian mixture p(x) = sum_k w_k N(x | mu_k, sigma_k^2): the target of question 1b.

    Bad parameters raise ``ValueError`` naming the argument: weights that are
    empty, negative or do not sum to 1, standard deviations that are not > 0,
    lengths that differ.

    >>> p = GaussianMixture1D([0.25, 0.75], [-2.0, 2.0], [1.0, 0.5])
    >>> float(p.mean()), round(float(p.pdf(2.0)), 6)  # 0.25 phi(4) + 0.75 phi(0)/0.5
    (1.0, 0.598447)
    """

    def __init__(self, weights: Sequence[float], means: Sequence[float], sds: Sequence[float]):
        w, mu, sd = _mixture_arrays(weights, means, sds)
        if w.ndim != 1:
            raise ValueError(f"weights, means and sds must be 1-D (one mixture), got shape {w.shape}")
        self._w, self._mu, self._sd = (np.array(v, dtype=float) for v in (w, mu, sd))
        for arr in (self._w, self._mu, self._sd):
            arr.setflags(write=False)
        with np.errstate(divide="ignore"):
            self._log_w = np.log(self._w)  # -inf for a zero weight: that component never contributes

    # -- parameters
    @property
    def weights(self) -> np.ndarray:
        return self._w

    @property
    def means(self) -> np.ndarray:
        return self._mu

    @property
    def sds(self) -> np.ndarray:
        return self._sd

    @property
    def n_components(self) -> int:
        return int(self._w.size)

    def __repr__(self) -> str:
        f = lambda a: "[" + ", ".join(f"{v:g}" for v in a) + "]"  # noqa: E731
        return f"GaussianMixture1D(weights={f(self._w)}, means={f(self._mu)}, sds={f(self._sd)})"

    # -- density
    def _component_logpdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)[..., None]
        return self._log_w + _normal_logpdf(x, self._mu, self._sd)

    def logpdf(self, x) -> np.ndarray:
        """log p(x), by log-sum-exp over the components (finite far into the tails)."""
        return logsumexp(self._component_logpdf(x), axis=-1)

    def pdf(self, x) -> np.ndarray:
        return np.exp(self.logpdf(x))

    def dlogpdf(self, x) -> np.ndarray:
        r"""The score d/dx log p(x) = -sum_k r_k(x) (x - mu_k)/sigma_k^2, r_k the responsibilities."""
        lc = self._component_logpdf(x)
        r = np.exp(lc - logsumexp(lc, axis=-1, keepdims=True))
        x = np.asarray(x, dtype=float)[..., None]
        return -np.sum(r * (x - self._mu) / self._sd**2, axis=-1)

    # -- moments (closed form) and expectations (quadrature)
    def mean(self) -> float:
        return float(mixture_moments(self._w, self._mu, self._sd)[0])

    def var(self) -> float:
        return float(mixture_moments(self._w, self._mu, self._sd)[1])

    def sd(self) -> float:
        return math.sqrt(self.var())

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """E_p[f(x)] = sum_k w_k E[f(mu_k + sigma_k u)], each by the composite Gauss-Legendre rule."""
        u, omega = _normal_rule()
        x = self._mu[:, None] + self._sd[:, None] * u  # (K, n)
        return np.sum(self._w[:, None] * omega * f(x), axis=(-2, -1))

    def entropy(self) -> float:
        """H(p) = -E_p[log p] (by quadrature; no closed form for a mixture)."""
        return float(-self.expect(self.logpdf))

    def bounds(self, width: float = _HALF_WIDTH) -> tuple[float, float]:
        """An interval holding all but a negligible part of the mass: [min(mu - w sigma), max(mu + w sigma)]."""
        return float(np.min(self._mu - width * self._sd)), float(np.max(self._mu + width * self._sd))

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """n draws: a component by its weight, then a normal draw from it."""
        if not (isinstance(n, (int, np.integer)) and n >= 0):
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        k = rng.choice(self.n_components, size=n, p=self._w / self._w.sum())
        return self._mu[k] + self._sd[k] * rng.standard_normal(n)


def bimodal(separation: float = 6.0, weights: Sequence[float] = DEFAULT_WEIGHTS,
            sds: Sequence[float] = DEFAULT_SDS, center: float = 0.0) -> GaussianMixture1D:
    """Two components at center -/+ separation/2 (the default: the 1b target, modes 6 apart).

    >>> bimodal(4.0)
    GaussianMixture1D(weights=[0.4, 0.6], means=[-2, 2], sds=[0.8, 1.2])
    """
    sep = float(as_float("separation", separation))
    if sep < 0:
        raise ValueError(f"separation must be >= 0, got {separation!r}")
    c = float(as_float("center", center))
    return GaussianMixture1D(weights, [c - sep / 2, c + sep / 2], sds)


# ----------------------------------------------------------------- the two divergences


def _check_ms(m, s) -> tuple[np.ndarray, np.ndarray]:
    return as_float("m", m), positive("s", s)


def forward_kl(target: Target, m, s) -> np.ndarray:
    r"""Forward KL(p || N(m, s^2)) by quadrature; ``m`` and ``s`` broadcast.

    .. math:: D_{KL}(p\|q) = E_p[\log p] - E_p[\log q] = -H(p) + \log s + \tfrac12\log 2\pi + \frac{E_p[(x-m)^2]}{2s^2}

    >>> p = GaussianMixture1D([1.0], [0.0], [1.0])
    >>> abs(float(forward_kl(p, 0.0, 1.0))) < 1e-12
    True
    """
    m, s = _check_ms(m, s)
    neg_entropy = target.expect(target.logpdf)
    # E_p[(x - m)^2] = E_p[x^2] - 2 m E_p[x] + m^2, each moment by quadrature.
    e1, e2 = target.expect(lambda x: x), target.expect(lambda x: x * x)
    cross = np.log(s) + 0.5 * _LOG_2PI + (e2 - 2.0 * m * e1 + m * m) / (2.0 * s * s)
    return neg_entropy + cross


def reverse_kl(target: Target, m, s) -> np.ndarray:
    r"""Reverse KL(N(m, s^2) || p) by quadrature under q; ``m`` and ``s`` broadcast.

    .. math:: D_{KL}(q\|p) = -\tfrac12\log(2\pi e s^2) - E_q[\log p(x)]

    >>> p = GaussianMixture1D([1.0], [0.0], [1.0])
    >>> round(float(reverse_kl(p, 0.0, 1.0)), 12)
    0.0
    """
    m, s = _check_ms(m, s)
    return -0.5 * (_LOG_2PI + 1.0) - np.log(s) - normal_expectation(target.logpdf, m, s)


def reverse_kl_grad(target: Target, m, s) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradient of reverse KL(N(m, s^2) || p) in (m, s), in score form (x = m + s u, u ~ N(0, 1)).

    .. math:: \frac{\partial}{\partial m} = -E_u[(\log p)'(m + s u)], \qquad
              \frac{\partial}{\partial s} = -\frac1s - E_u[u\,(\log p)'(m + s u)]

    (the ``kl-reverse-fit`` derivation writes the same gradient with log p
    itself under the integral; integration by parts turns one into the other).
    Both vanish at every fit returned by :func:`fit_reverse_kl`.
    """
    m, s = _check_ms(m, s)
    d_m = -normal_expectation(target.dlogpdf, m, s)
    d_s = -1.0 / s - normal_expectation(lambda x: ((x - m[..., None]) / s[..., None]) * target.dlogpdf(x), m, s)
    return d_m, d_s


def _forward_objective(target: Target) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Cross-entropy E_p[-log q] and its gradient in theta = (m, log s): quadrature nodes of p, fixed."""
    # E_p[g(x)] for the polynomials g the gradient needs, once: -log q is quadratic in x.
    e1, e2 = (float(target.expect(lambda x, k=k: x**k)) for k in (1, 2))

    def fun(theta):
        m, log_s = theta
        s2 = math.exp(2.0 * log_s)
        sq = e2 - 2.0 * m * e1 + m * m  # E_p[(x - m)^2]
        val = log_s + 0.5 * _LOG_2PI + sq / (2.0 * s2)
        grad = np.array([(m - e1) / s2, 1.0 - sq / s2])
        return val, grad

    return fun


def _reverse_objective(target: Target) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    r"""Reverse KL and its gradient in theta = (m, log s), with x = m + s u (reparameterised).

    d/dm = -E_u[(log p)'(m + s u)],  d/d log s = -1 - s E_u[u (log p)'(m + s u)].
    """
    u, omega = _normal_rule()

    def fun(theta):
        m, log_s = theta
        s = math.exp(log_s)
        xs = m + s * u
        val = -0.5 * (_LOG_2PI + 1.0) - log_s - float(np.dot(omega, target.logpdf(xs)))
        score = target.dlogpdf(xs)
        grad = np.array([-float(np.dot(omega, score)), -1.0 - s * float(np.dot(omega, u * score))])
        return val, grad

    return fun


# ----------------------------------------------------------------- fits


@dataclass(frozen=True)
class GaussianFit:
    """One fitted q = N(m, s^2): where it ended, both divergences there, and how it got there."""

    m: float
    s: float
    forward_kl: float  # KL(p || q)
    reverse_kl: float  # KL(q || p)
    converged: bool
    n_iter: int
    start: tuple[float, float]


def _minimize(fun, start: tuple[float, float], tol: float, max_iter: int) -> tuple[float, float, bool, int]:
    res = scipy.optimize.minimize(fun, np.array([start[0], math.log(start[1])]), jac=True, method="BFGS",
                            options={"gtol": tol, "maxiter": max_iter})
    m, log_s = (float(v) for v in res.x)
    # BFGS may stop with "precision loss" once the gradient is at rounding level: accept that.
    converged = bool(res.success or np.max(np.abs(res.jac)) <= 1e3 * tol)
    return m, math.exp(log_s), converged, int(res.nit)


def distinct_optima(fits: Iterable[GaussianFit], m_tol: float, s_tol: float = math.inf,
                    log_s_tol: float = math.inf) -> list[GaussianFit]:
    """The fits that are not the same optimum as an earlier one, in order (so pass them best first).

    Two fits are the same optimum when |Δm| <= m_tol, |Δs| <= s_tol and |Δ log s| <= log_s_tol.
    """
    out: list[GaussianFit] = []
    for f in fits:
        if not any(abs(f.m - o.m) <= m_tol and abs(f.s - o.s) <= s_tol and abs(math.log(f.s / o.s)) <= log_s_tol
                   for o in out):
            out.append(f)
    return out


def default_starts(target: Target, n_init: int) -> list[tuple[float, float]]:
    """n_init starting points (m, s): means spread over mean -/+ 2 sd of p, each with s = sd/2.

    They know nothing of the modes; with an even n_init none sits exactly at
    the mean, where a symmetric target's gradient in m vanishes by symmetry.
    """
    mean, sd = float(target.mean()), math.sqrt(float(target.var()))
    if n_init == 1:
        return [(mean + 0.5 * sd, 0.5 * sd)]
    return [(float(c), 0.5 * sd) for c in np.linspace(mean - 2.0 * sd, mean + 2.0 * sd, n_init)]


class KLGaussianFit:
    r"""Fit q = N(m, s^2) to a target by minimising forward or reverse KL (question 1b).

    Follows scikit-learn conventions: settings in ``__init__``, :meth:`fit`
    returns ``self``, fitted attributes end in ``_``.

    Parameters
    ----------
    divergence : ``"forward"`` (KL(p || q), mass-covering) or ``"reverse"``
        (KL(q || p), mode-seeking).
    n_init : number of starts (default 1 for forward, whose optimum is unique,
        8 for reverse); ignored when ``starts`` is given.
    starts : explicit (m, s) starting points.
    tol : gradient tolerance of BFGS in (m, log s).
    max_iter : iteration limit per start.

    Fitted attributes
    -----------------
    m_, s_ : the best fit. kl_ : its divergence (the one minimised).
    forward_kl_, reverse_kl_ : both divergences of the best fit.
    optima_ : the distinct local optima found (:class:`GaussianFit`), best first.
    runs_ : one :class:`GaussianFit` per start. converged_, n_iter_ : of the best run.
    """

    def __init__(self, divergence: str = "forward", n_init: int | None = None,
                 starts: Sequence[tuple[float, float]] | None = None, tol: float = 1e-10, max_iter: int = 500):
        if divergence not in ("forward", "reverse"):
            raise ValueError(f"divergence must be 'forward' or 'reverse', got {divergence!r}")
        if n_init is not None and not (isinstance(n_init, (int, np.integer)) and n_init >= 1):
            raise ValueError(f"n_init must be a positive integer, got {n_init!r}")
        if not (isinstance(tol, (int, float)) and tol > 0):
            raise ValueError(f"tol must be > 0, got {tol!r}")
        if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
        if starts is not None:
            starts = [(float(as_float("starts", m0)), float(positive("starts (s)", s0))) for m0, s0 in starts]
            if not starts:
                raise ValueError("starts is empty: give at least one (m, s) pair or leave it None")
        self.divergence = divergence
        self.n_init = n_init
        self.starts = starts
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, target: Target) -> "KLGaussianFit":
        n_init = self.n_init if self.n_init is not None else (1 if self.divergence == "forward" else 8)
        starts = self.starts if self.starts is not None else default_starts(target, n_init)
        fun = _forward_objective(target) if self.divergence == "forward" else _reverse_objective(target)
        runs = []
        for start in starts:
            m, s, ok, nit = _minimize(fun, start, self.tol, self.max_iter)
            runs.append(GaussianFit(m, s, float(forward_kl(target, m, s)), float(reverse_kl(target, m, s)),
                                    ok, nit, start))
        key = (lambda r: r.forward_kl) if self.divergence == "forward" else (lambda r: r.reverse_kl)
        scale = math.sqrt(float(target.var()))
        optima = distinct_optima(sorted(runs, key=lambda r: (key(r), r.m)), m_tol=1e-4 * scale, log_s_tol=1e-4)
        best = optima[0]
        self.runs_ = tuple(runs)
        self.optima_ = tuple(optima)
        self.m_, self.s_ = best.m, best.s
        self.kl_ = key(best)
        self.forward_kl_, self.reverse_kl_ = best.forward_kl, best.reverse_kl
        self.converged_, self.n_iter_ = best.converged, best.n_iter
        return self


def fit_forward_kl(target: Target, **kwargs: Any) -> KLGaussianFit:
    """Minimise KL(p || N(m, s^2)) numerically (quadrature + BFGS); see :class:`KLGaussianFit`."""
    return KLGaussianFit("forward", **kwargs).fit(target)


def fit_reverse_kl(target: Target, **kwargs: Any) -> KLGaussianFit:
    """Minimise KL(N(m, s^2) || p) from several starts (quadrature + BFGS); see :class:`KLGaussianFit`."""
    return KLGaussianFit("reverse", **kwargs).fit(target)


# ----------------------------------------------------------------- 1c: the conjugate model


def _as_dims(*arrays):
    """Broadcast and give scalars one dimension, so the last axis is always the latent dimension."""
    out = np.broadcast_arrays(*arrays)
    return [np.atleast_1d(a) for a in out]


def _conjugate_args(x, a, b, sigma_x):
    return as_float("x", x), as_float("a", a), as_float("b", b), positive("sigma_x", sigma_x)


def conjugate_posterior(x, a=1.0, b=0.0, sigma_x=1.0) -> tuple[np.ndarray, np.ndarray]:
    r"""Posterior p(z|x) = N(mean, sd^2) of z ~ N(0, 1), x | z ~ N(a z + b, sigma_x^2), elementwise.

    .. math:: E[z|x] = \frac{a(x - b)}{a^2 + \sigma_x^2}, \qquad \operatorname{Var}[z|x] = \frac{\sigma_x^2}{a^2 + \sigma_x^2}

    >>> [round(float(v), 12) for v in conjugate_posterior(2.0)]  # N(1, 1/2)
    [1.0, 0.707106781187]
    """
    x, a, b, sigma_x = _conjugate_args(x, a, b, sigma_x)
    denom = a * a + sigma_x * sigma_x
    return a * (x - b) / denom, sigma_x / np.sqrt(denom)


def conjugate_log_evidence(x, a=1.0, b=0.0, sigma_x=1.0) -> np.ndarray:
    r"""log p(x) = sum_d log N(x_d | b, a^2 + sigma_x^2), summed over the last axis (the dimensions).

    >>> round(float(conjugate_log_evidence(0.0, a=0.0)), 12)  # a = 0: x ~ N(0, 1)
    -0.918938533205
    """
    x, a, b, sigma_x = _as_dims(*_conjugate_args(x, a, b, sigma_x))
    v = a * a + sigma_x * sigma_x
    return np.sum(-0.5 * (_LOG_2PI + np.log(v)) - (x - b) ** 2 / (2.0 * v), axis=-1)


def elbo_conjugate(x, mu, sigma, a=1.0, b=0.0, sigma_x=1.0) -> np.ndarray:
    r"""The ELBO of q(z) = N(mu, diag(sigma^2)) for the conjugate model, summed over the last axis.

    .. math:: \mathcal L(q) = \sum_d E_q[\log N(x_d | a z_d + b, \sigma_x^2)] - \sum_d D_{KL}(N(\mu_d, \sigma_d^2) \| N(0, 1))
       = \sum_d \Big[-\tfrac12\log(2\pi\sigma_x^2) - \frac{(x_d - a\mu_d - b)^2 + a^2\sigma_d^2}{2\sigma_x^2}\Big] - \sum_d \text{kl\_vae}(\mu_d, \sigma_d)

    The KL term is the VAE's (registry ``kl-vae``) summed over dimensions. Question 1c.

    >>> mean, sd = conjugate_posterior(2.0)
    >>> bool(abs(elbo_conjugate(2.0, mean, sd) - conjugate_log_evidence(2.0)) < 1e-15)  # tight at the posterior
    True
    """
    x, a, b, sigma_x = _conjugate_args(x, a, b, sigma_x)
    mu, sigma = as_float("mu", mu), positive("sigma", sigma)
    x, mu, sigma, a, b, sigma_x = _as_dims(x, mu, sigma, a, b, sigma_x)
    recon = -0.5 * (_LOG_2PI + 2.0 * np.log(sigma_x)) - ((x - a * mu - b) ** 2 + (a * sigma) ** 2) / (2.0 * sigma_x**2)
    return np.sum(recon - kl_vae(mu, sigma), axis=-1)


def elbo_gap(x, mu, sigma, a=1.0, b=0.0, sigma_x=1.0) -> np.ndarray:
    r"""log p(x) - ELBO(q) for the conjugate model, summed over the last axis (registry ``elbo-gap``).

    Computed as the difference of :func:`conjugate_log_evidence` and
    :func:`elbo_conjugate`; it equals KL(q || p(z|x)) >= 0, with 0 exactly at the posterior.

    >>> round(float(elbo_gap(2.0, 0.0, 1.0)), 12) == round(float(kl_gaussian(0.0, 1.0, *conjugate_posterior(2.0))), 12)
    True
    """
    return conjugate_log_evidence(x, a, b, sigma_x) - elbo_conjugate(x, mu, sigma, a, b, sigma_x)


# ----------------------------------------------------------------- 1c: a bimodal posterior


class SquaredLatentModel:
    r"""z ~ N(0, 1), x | z ~ N(z^2, sigma_x^2): the sign of z is unidentifiable, so p(z|x) is bimodal.

    For x > sigma_x^2 / 2 the posterior has modes at z = ±sqrt(x - sigma_x^2/2).
    The instance is also a target (``logpdf`` = log p(z|x), normalised by
    quadrature), so reverse-KL fitting of the posterior and ELBO maximisation
    can be compared (question 1c): ELBO(q) = log p(x) - KL(q || p(z|x)).

    >>> model = SquaredLatentModel(x=3.0, sigma_x=0.5)
    >>> [round(float(v), 4) for v in model.modes()]
    [-1.6956, 1.6956]
    """

    def __init__(self, x: float = 3.0, sigma_x: float = 0.5):
        self.x = float(as_float("x", x))
        self.sigma_x = float(positive("sigma_x", sigma_x))

    @functools.cached_property
    def _log_evidence(self) -> float:
        """log p(x) = log ∫ p(x|z) p(z) dz by quadrature, when first needed (a model made at import
        time, ``BIMODAL_MODEL``, then costs nothing until it is used)."""
        lo, hi = self.bounds()
        # Integrate exp(log joint - peak) for range safety.
        zs = np.linspace(lo, hi, 4001)
        peak = float(np.max(self.log_joint(zs)))
        pts = [float(v) for v in self.modes()] + [0.0]
        val, _ = scipy.integrate.quad(lambda t: math.exp(float(self.log_joint(t)) - peak), lo, hi, points=pts,
                                      epsabs=0.0, epsrel=1e-13, limit=400)
        return peak + math.log(val)

    def __repr__(self) -> str:
        return f"SquaredLatentModel(x={self.x:g}, sigma_x={self.sigma_x:g})"

    def modes(self) -> np.ndarray:
        """Stationary points of the posterior other than 0 (empty when unimodal)."""
        c = self.x - self.sigma_x**2 / 2
        return np.array([-math.sqrt(c), math.sqrt(c)]) if c > 0 else np.array([0.0])

    def log_likelihood(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return _normal_logpdf(self.x, z * z, self.sigma_x)

    def log_joint(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return self.log_likelihood(z) + _normal_logpdf(z, 0.0, 1.0)

    def log_evidence(self) -> float:
        return self._log_evidence

    # -- the posterior as a target
    def logpdf(self, z) -> np.ndarray:
        return self.log_joint(z) - self._log_evidence

    def pdf(self, z) -> np.ndarray:
        return np.exp(self.logpdf(z))

    def dlogpdf(self, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return 2.0 * z * (self.x - z * z) / self.sigma_x**2 - z

    def bounds(self) -> tuple[float, float]:
        r = math.sqrt(max(self.x, 0.0)) + _HALF_WIDTH
        return -r, r

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """E_{p(z|x)}[f(z)] by composite Gauss-Legendre on the bounds."""
        zs, weights = _legendre_panels(*self.bounds(), 512, 16)
        ws = weights * self.pdf(zs)
        return np.sum(ws * f(zs), axis=-1)

    def mean(self) -> float:
        return float(self.expect(lambda z: z))

    def var(self) -> float:
        mean = self.mean()
        return float(self.expect(lambda z: (z - mean) ** 2))

    def elbo(self, m, s) -> np.ndarray:
        r"""ELBO(q) = E_q[log p(x|z)] - KL(q || N(0, 1)) for q = N(m, s^2); the VAE's form, ``kl_vae`` for the KL.

        E_q[log p(x|z)] is integrated over q (composite Gauss-Legendre in u).
        """
        m, s = _check_ms(m, s)
        return normal_expectation(self.log_likelihood, m, s) - kl_vae(m, s)


def maximize_elbo(model: SquaredLatentModel, starts: Sequence[tuple[float, float]] | None = None,
                  n_init: int = 6, tol: float = 1e-10) -> list[GaussianFit]:
    """Maximise ``model.elbo(m, s)`` over Gaussian q = N(m, s^2) from several starts (Nelder-Mead, ``xatol=tol``).

    Derivative-free on purpose: this route shares no gradient code with
    :func:`fit_reverse_kl`, so their agreement on the posterior is evidence
    that maximising the ELBO *is* reverse-KL fitting. Returns one
    :class:`GaussianFit` per start (``reverse_kl`` = KL(q || p(z|x))).
    """
    if starts is None:
        sd = math.sqrt(model.var())
        starts = [(float(c), 0.5 * sd) for c in np.linspace(-1.5 * sd, 1.5 * sd, n_init) + 0.1 * sd]
    fits = []
    for m0, s0 in starts:
        neg = lambda th: -float(model.elbo(th[0], math.exp(th[1])))  # noqa: E731
        res = scipy.optimize.minimize(neg, np.array([m0, math.log(s0)]), method="Nelder-Mead",
                                options={"xatol": tol, "fatol": 1e-14, "maxiter": 4000})
        m, s = float(res.x[0]), math.exp(float(res.x[1]))
        fits.append(GaussianFit(m, s, float(forward_kl(model, m, s)), float(reverse_kl(model, m, s)),
                                bool(res.success), int(res.nit), (float(m0), float(s0))))
    return fits
