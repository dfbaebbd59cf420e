r"""EM for a mixture of multivariate Bernoullis, in float64 and log space (question 2).

The model of question 2: an image :math:`x \in \{0,1\}^D` is drawn by picking a
component :math:`k` with probability :math:`\pi_k` and then every pixel
independently, :math:`x_d \sim \mathrm{Bernoulli}(p^{(k)}_d)`. With ``X`` the
``(N, D)`` data matrix, ``weights`` the ``(K,)`` mixing proportions and ``P`` the
``(K, D)`` pixel probabilities:

* :func:`bernoulli_log_likelihood` -- :math:`\log P(x^{(i)} \mid p^{(k)})`, id
  ``bernoulli-likelihood`` (2a-i), as an ``(N, K)`` matrix;
* :func:`mixture_log_likelihood` / :func:`mixture_log_likelihood_samples` --
  :math:`\log P(X \mid \pi, p)`, id ``mixture-log-likelihood`` (2a-iii);
* :func:`log_responsibilities` / :func:`responsibilities` --
  :math:`\eta(z^{(i)}_k)`, id ``em-responsibility`` (2b-iii);
* :func:`expected_complete_log_likelihood` -- :math:`Q`, id
  ``em-expected-complete-log-likelihood``;
* :func:`m_step` -- :math:`\pi_k = N_k/N`, :math:`p^{(k)} = \sum_i \eta^{(i)}_k x^{(i)} / N_k`,
  ids ``em-pi-update`` and ``em-p-update`` (2c); the update itself is
  :func:`m_step_from_statistics`, from the sufficient statistics, which
  ``genverify.models.BernoulliMixture`` runs too.

Why log space: at :math:`D = 784` one image has probability about
:math:`e^{-200}` or less under a component, far below the smallest float64
(:math:`\approx 10^{-308}` normal, :math:`5\cdot 10^{-324}` subnormal) once the
pixels multiply out, so the literal product formula of 2b-iii evaluates
``0/0 = nan`` (:func:`responsibilities_product_form` keeps it to show this).
Sums of logs and a log-sum-exp lose nothing.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006),
section 9.3.3, eqs. (9.47)-(9.60).

>>> import numpy as np
>>> X = np.array([[1, 0, 1], [0, 0, 1]])
>>> P = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.6]])
>>> resp = responsibilities(X, np.array([0.5, 0.5]), P)
>>> bool(np.allclose(resp.sum(axis=1), 1.0))
True
"""

from __future__ import annotations

import numpy as np

from genverify.numerics._special import logsumexp
from genverify.numerics._validate import as_float

__all__ = [
    "bernoulli_log_likelihood",
    "log_responsibilities",
    "responsibilities",
    "responsibilities_product_form",
    "mixture_log_likelihood",
    "mixture_log_likelihood_samples",
    "expected_complete_log_likelihood",
    "m_step",
    "m_step_from_statistics",
    "latent_log_prior",
    "conditional_log_likelihood",
    "complete_data_log_likelihood",
]

#: Tolerance on "sums to one" for weights and responsibility rows.
_SUM_TOL = 1e-8
#: Rows of X processed at once by the log-likelihood (bounds its temporaries).
_ROW_BLOCK = 8192


# -- validation ---------------------------------------------------------------
def _binary_matrix(name: str, X) -> np.ndarray:
    X = as_float(name, X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N images by D pixels), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {X.shape}")
    if np.any((X != 0.0) & (X != 1.0)):
        raise ValueError(f"{name} must contain only 0 and 1 (binarised pixels)")
    return X


def _probabilities(name: str, P, D: int) -> np.ndarray:
    P = as_float(name, P)
    if P.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (K components by D pixels), got shape {P.shape}")
    if P.shape[0] == 0 or P.shape[1] != D:
        raise ValueError(f"{name} must have shape (K, {D}) with K >= 1, got {P.shape}")
    if np.any((P < 0.0) | (P > 1.0)):
        raise ValueError(f"{name} must lie in [0, 1] (open (0, 1) for finite log-likelihoods)")
    return P


def _weights(name: str, weights, K: int) -> np.ndarray:
    w = as_float(name, weights)
    if w.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},) (one weight per component), got {w.shape}")
    if np.any(w < 0.0):
        raise ValueError(f"{name} must be >= 0, got {weights!r}")
    if abs(float(w.sum()) - 1.0) > _SUM_TOL:
        raise ValueError(f"{name} must sum to 1, got sum {float(w.sum())!r}")
    return w


def _responsibility_matrix(name: str, resp, N: int, K: int | None = None) -> np.ndarray:
    r = as_float(name, resp)
    if r.ndim != 2 or r.shape[0] != N or (K is not None and r.shape[1] != K) or r.shape[1] == 0:
        want = f"({N}, {K})" if K is not None else f"({N}, K)"
        raise ValueError(f"{name} must have shape {want}, got {r.shape}")
    if np.any((r < 0.0) | (r > 1.0)):
        raise ValueError(f"{name} must lie in [0, 1]")
    if np.any(np.abs(r.sum(axis=1) - 1.0) > _SUM_TOL):
        raise ValueError(f"{name} rows must sum to 1 (a posterior over components for each image)")
    return r


def _one_hot_matrix(name: str, Z, N: int, K: int) -> np.ndarray:
    Z = as_float(name, Z)
    if Z.shape != (N, K):
        raise ValueError(f"{name} must have shape ({N}, {K}) (one one-hot code per image), got {Z.shape}")
    if np.any((Z != 0.0) & (Z != 1.0)) or np.any(Z.sum(axis=1) != 1.0):
        raise ValueError(f"{name} rows must be one-hot: 0/1 entries with exactly one 1")
    return Z


def _log_weights(w: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(w)


def _bernoulli_log_likelihood(X: np.ndarray, P: np.ndarray) -> np.ndarray:
    # Two matrix products, each a sum of same-signed terms: no cancellation,
    # unlike the one-product form X @ logit(P).T + sum(log1p(-P)).
    if X.shape[0] > _ROW_BLOCK:
        # Bound the (rows, D) temporary 1 - X: 60,000 MNIST images would need 376 MB at once.
        return np.concatenate([_bernoulli_log_likelihood(X[s:s + _ROW_BLOCK], P)
                               for s in range(0, X.shape[0], _ROW_BLOCK)])
    with np.errstate(divide="ignore"):
        log_p = np.log(P)
        log_q = np.log1p(-P)
    if np.all(np.isfinite(log_p)) and np.all(np.isfinite(log_q)):
        return X @ log_p.T + (1.0 - X) @ log_q.T
    # A boundary probability (0 or 1, as the unsmoothed M-step can produce):
    # 0 log 0 = 0, and an image with a pixel that a component cannot produce has
    # log-likelihood -inf under it.
    out = X @ np.where(P > 0.0, log_p, 0.0).T + (1.0 - X) @ np.where(P < 1.0, log_q, 0.0).T
    impossible = (X @ (P == 0.0).T + (1.0 - X) @ (P == 1.0).T) > 0
    out[impossible] = -np.inf
    return out


def _check_mixture(X, weights, P) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated ``(X, weights, P)``, checked in the order X, P, weights."""
    X = _binary_matrix("X", X)
    P = _probabilities("P", P, X.shape[1])
    return X, _weights("weights", weights, P.shape[0]), P


def _joint_log(X, weights, P) -> np.ndarray:
    """log pi_k + log P(x^(i) | p^(k)), the (N, K) log joint log P(x^(i), z_k^(i) = 1)."""
    X, w, P = _check_mixture(X, weights, P)
    return _log_weights(w)[None, :] + _bernoulli_log_likelihood(X, P)


# -- public functions ---------------------------------------------------------
def bernoulli_log_likelihood(X, P) -> np.ndarray:
    r"""Log-likelihood of every image under every component, id ``bernoulli-likelihood`` (2a-i).

    .. math:: \log P(x^{(i)} \mid p^{(k)}) = \sum_{d=1}^{D} x^{(i)}_d \log p^{(k)}_d
              + (1 - x^{(i)}_d) \log(1 - p^{(k)}_d)

    ``X`` is ``(N, D)`` of 0/1, ``P`` is ``(K, D)``; returns ``(N, K)``. Entries
    of ``P`` equal to 0 or 1 are allowed (0 log 0 = 0; an impossible image gets
    ``-inf``).

    >>> float(bernoulli_log_likelihood([[1, 0]], [[0.5, 0.5]])[0, 0]) == float(np.log(0.25))
    True
    """
    X = _binary_matrix("X", X)
    P = _probabilities("P", P, X.shape[1])
    return _bernoulli_log_likelihood(X, P)


def mixture_log_likelihood_samples(X, weights, P) -> np.ndarray:
    r"""Per-image mixture log-likelihood, shape ``(N,)``.

    .. math:: \log P(x^{(i)} \mid \pi, p) = \log \sum_{k=1}^{K} \pi_k \prod_{d=1}^{D}
              (p^{(k)}_d)^{x^{(i)}_d} (1 - p^{(k)}_d)^{1 - x^{(i)}_d}

    evaluated as a log-sum-exp of :math:`\log\pi_k + \log P(x^{(i)} \mid p^{(k)})`.
    """
    return logsumexp(_joint_log(X, weights, P), axis=1)


def mixture_log_likelihood(X, weights, P) -> float:
    r"""Data log-likelihood, id ``mixture-log-likelihood`` (2a-iii).

    .. math:: \log P(X \mid \pi, p) = \sum_{i=1}^{N} \log \sum_{k=1}^{K} \pi_k
              P(x^{(i)} \mid p^{(k)})
    """
    return float(np.sum(mixture_log_likelihood_samples(X, weights, P)))


def log_responsibilities(X, weights, P) -> np.ndarray:
    r"""Log posterior of the component given the image, ``(N, K)``, id ``em-responsibility``.

    Bayes' rule on the joint :math:`P(x^{(i)}, z^{(i)}_k = 1) = \pi_k P(x^{(i)} \mid p^{(k)})`:

    .. math:: \log \eta(z^{(i)}_k) = \log\pi_k + \log P(x^{(i)} \mid p^{(k)})
              - \log \sum_{j=1}^{K} \exp\bigl(\log\pi_j + \log P(x^{(i)} \mid p^{(j)})\bigr)

    Raises ``ValueError`` naming ``X`` if an image has probability 0 under
    every component (possible only with boundary ``P`` or zero weights).
    """
    joint = _joint_log(X, weights, P)
    norm = logsumexp(joint, axis=1)
    if np.any(np.isneginf(norm)):
        i = int(np.flatnonzero(np.isneginf(norm))[0])
        raise ValueError(f"X row {i} has probability 0 under every component; responsibilities undefined")
    log_resp = joint - norm[:, None]
    # At D = 784 the log-likelihoods are ~10^3, so the normaliser carries rounding of
    # ~10^-13; it is common to the row, and a second pass (near 0, exact to ~10^-16) removes it.
    return log_resp - logsumexp(log_resp, axis=1)[:, None]


def responsibilities(X, weights, P) -> np.ndarray:
    r"""Responsibilities :math:`\eta(z^{(i)}_k) = P(z^{(i)}_k = 1 \mid x^{(i)}, \pi, p)` (2b-iii), ``(N, K)``.

    .. math:: \eta(z^{(i)}_k) = \frac{\pi_k \prod_d (p^{(k)}_d)^{x^{(i)}_d}(1-p^{(k)}_d)^{1-x^{(i)}_d}}
              {\sum_j \pi_j \prod_d (p^{(j)}_d)^{x^{(i)}_d}(1-p^{(j)}_d)^{1-x^{(i)}_d}}

    computed as ``exp(log_responsibilities(...))``: each row sums to 1 and
    stays exact at D = 784, where the literal quotient is 0/0.
    """
    return np.exp(log_responsibilities(X, weights, P))


def responsibilities_product_form(X, weights, P) -> np.ndarray:
    r"""The literal product formula of 2b-iii, evaluated as written (do not use).

    .. math:: \eta(z^{(i)}_k) = \frac{\pi_k \prod_d (p^{(k)}_d)^{x^{(i)}_d}(1-p^{(k)}_d)^{1-x^{(i)}_d}}
              {\sum_j \pi_j \prod_d (p^{(j)}_d)^{x^{(i)}_d}(1-p^{(j)}_d)^{1-x^{(i)}_d}}

    Kept to show why :func:`responsibilities` works in log space. A product of
    D = 784 pixel probabilities is below the smallest float64 (about
    :math:`e^{-745}`) as soon as their geometric mean is below
    :math:`e^{-745/784} \approx 0.387`: for every image at a uniform random
    initialisation :math:`p^{(k)}_d \sim U(0, 1)` (mean log-likelihood -784), and
    for any image no component explains well. When all K products underflow
    the quotient is ``0/0 = nan``; when some do, small responsibilities become
    exactly 0. Agrees with :func:`responsibilities` where nothing underflows.
    Floating-point warnings are suppressed; the nan is the demonstration.
    Memory is ``N * K * D`` floats.

    >>> X = np.ones((1, 784))                      # an all-white image
    >>> P = np.array([[0.3] * 784, [0.25] * 784])  # 0.3**784 = e^{-944} underflows to 0
    >>> responsibilities_product_form(X, [0.5, 0.5], P).tolist()
    [[nan, nan]]
    >>> responsibilities(X, [0.5, 0.5], P)[0, 1]   # 1 / (1 + (0.3/0.25)**784), about e^{-142.9}
    np.float64(8.354...e-63)
    """
    X, w, P = _check_mixture(X, weights, P)
    with np.errstate(all="ignore"):
        pixel = P[None, :, :] ** X[:, None, :] * (1.0 - P[None, :, :]) ** (1.0 - X[:, None, :])
        numerator = w[None, :] * np.prod(pixel, axis=2)
        return numerator / np.sum(numerator, axis=1, keepdims=True)


def expected_complete_log_likelihood(X, resp, weights, P) -> float:
    r"""Expected complete-data log-likelihood, id ``em-expected-complete-log-likelihood``.

    .. math:: Q(\pi, p) = \mathbb{E}_{Z \mid X}\bigl[\log P(Z, X \mid \pi, p)\bigr]
              = \sum_{i=1}^{N}\sum_{k=1}^{K} \eta^{(i)}_k \Bigl[\log\pi_k + \sum_{d=1}^{D}
              x^{(i)}_d \log p^{(k)}_d + (1 - x^{(i)}_d)\log(1 - p^{(k)}_d)\Bigr]

    ``resp`` is the ``(N, K)`` matrix :math:`\eta` (rows sum to 1). Terms with
    :math:`\eta^{(i)}_k = 0` count as 0 even where the bracket is ``-inf``.
    """
    bracket = _joint_log(X, weights, P)
    r = _responsibility_matrix("resp", resp, *bracket.shape)
    with np.errstate(invalid="ignore"):
        terms = np.where(r > 0.0, r * bracket, 0.0)
    return float(np.sum(terms))


def latent_log_prior(Z, weights) -> np.ndarray:
    r"""log P(z^{(i)} | \pi) = \sum_k z^{(i)}_k \log\pi_k for one-hot codes, id ``latent-prior`` (2b-i); ``(N,)``.

    >>> latent_log_prior([[0, 1], [1, 0]], [0.25, 0.75]).tolist() == np.log([0.75, 0.25]).tolist()
    True
    """
    w = as_float("weights", weights)
    if w.ndim != 1:
        raise ValueError(f"weights must be a 1-D array, got shape {w.shape}")
    w = _weights("weights", w, w.shape[0])
    Z = as_float("Z", Z)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array (N images by K components), got shape {Z.shape}")
    Z = _one_hot_matrix("Z", Z, Z.shape[0], w.shape[0])
    return _log_weights(w)[np.argmax(Z, axis=1)]


def conditional_log_likelihood(X, Z, P) -> np.ndarray:
    r"""log P(x^{(i)} | z^{(i)}, p) = \sum_k z^{(i)}_k \log P(x^{(i)} | p^{(k)}), id ``conditional-likelihood``; ``(N,)``."""
    X = _binary_matrix("X", X)
    P = _probabilities("P", P, X.shape[1])
    Z = _one_hot_matrix("Z", Z, X.shape[0], P.shape[0])
    return _bernoulli_log_likelihood(X, P)[np.arange(X.shape[0]), np.argmax(Z, axis=1)]


def complete_data_log_likelihood(X, Z, weights, P) -> float:
    r"""log P(Z, X | \pi, p), id ``complete-data-likelihood`` (2b-ii).

    .. math:: \log P(Z, X \mid \pi, p) = \sum_{i=1}^{N}\sum_{k=1}^{K} z^{(i)}_k
              \bigl[\log\pi_k + \log P(x^{(i)} \mid p^{(k)})\bigr]

    ``Z`` is the ``(N, K)`` matrix of one-hot codes.
    """
    joint = _joint_log(X, weights, P)
    Z = _one_hot_matrix("Z", Z, *joint.shape)
    return float(np.sum(joint[np.arange(joint.shape[0]), np.argmax(Z, axis=1)]))


def m_step(X, resp, prior=None) -> tuple[np.ndarray, np.ndarray]:
    r"""The M-step of 2c: maximise :math:`Q` given the responsibilities; returns ``(weights, P)``.

    With :math:`N_k = \sum_i \eta^{(i)}_k` (ids ``em-pi-update``, ``em-p-update``):

    .. math:: \pi_k = \frac{N_k}{N}, \qquad
              p^{(k)}_d = \frac{\sum_{i=1}^{N} \eta^{(i)}_k x^{(i)}_d}{N_k}

    the maximum-likelihood update (no smoothing: a pixel that is 0 in every
    image a component explains gets :math:`p^{(k)}_d = 0` exactly).

    ``prior=(a, b)`` gives instead the MAP update under an independent
    :math:`\mathrm{Beta}(a, b)` prior on every :math:`p^{(k)}_d` (``a, b >= 1``;
    ``a - 1`` and ``b - 1`` act as pseudo-counts of ones and zeros):

    .. math:: p^{(k)}_d = \frac{\sum_i \eta^{(i)}_k x^{(i)}_d + a - 1}{N_k + a + b - 2}

    which keeps every probability inside (0, 1) when ``a, b > 1`` (``a = b = 1``
    is the maximum-likelihood update). The weights stay :math:`N_k / N`.

    >>> w, P = m_step([[1, 0], [1, 1]], [[1.0, 0.0], [0.5, 0.5]])
    >>> w.tolist(), P.tolist()
    ([0.75, 0.25], [[1.0, 0.3333333333333333], [1.0, 1.0]])
    """
    X = _binary_matrix("X", X)
    r = _responsibility_matrix("resp", resp, X.shape[0])
    if prior is None:
        a = b = 1.0
    else:
        try:
            a, b = (float(v) for v in prior)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"prior must be a pair (a, b) of Beta pseudo-counts, got {prior!r}") from exc
        if not (np.isfinite(a) and np.isfinite(b) and a >= 1.0 and b >= 1.0):
            raise ValueError(f"prior must be (a, b) with finite a >= 1 and b >= 1, got {prior!r}")
    Nk = r.sum(axis=0)
    pseudo_counts = (a - 1.0, b - 1.0)
    if np.any(Nk + sum(pseudo_counts) <= 0.0):
        k = int(np.flatnonzero(Nk + sum(pseudo_counts) <= 0.0)[0])
        raise ValueError(
            f"resp gives component {k} zero total responsibility, so its update is 0/0; "
            "re-initialise it or pass prior=(a, b) with a + b > 2"
        )
    return m_step_from_statistics(Nk, r.T @ X, X.shape[0], pseudo_counts=pseudo_counts)


def m_step_from_statistics(nk, sums, n: int, pseudo_counts=(0.0, 0.0),
                           weight_pseudo_count: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""The M-step of 2c from the sufficient statistics; returns ``(weights, P)``.

    ``nk`` is :math:`N_k = \sum_i \eta^{(i)}_k` ``(K,)``, ``sums`` is
    :math:`S = \eta^\top X` ``(K, D)`` and ``n`` is N. With pseudo-counts
    :math:`(c_1, c_0)` of ones and zeros per pixel (a :math:`\mathrm{Beta}(c_1 + 1, c_0 + 1)`
    prior on every :math:`p^{(k)}_d`) and :math:`c` per component (a symmetric
    :math:`\mathrm{Dirichlet}(c + 1)` prior on :math:`\pi`), the MAP update is

    .. math:: \pi_k = \frac{N_k + c}{N + K c}, \qquad
              p^{(k)}_d = \frac{S_{kd} + c_1}{N_k + c_1 + c_0}

    and with every pseudo-count 0 the maximum-likelihood update of :func:`m_step`.
    Nothing is validated but that no denominator is zero; a probability a few
    ulps outside [0, 1] (rounding in the sums) is clipped into it.

    >>> w, P = m_step_from_statistics(np.array([1.5, 0.5]), np.array([[1.5, 0.5], [0.5, 0.5]]), 2)
    >>> w.tolist(), P.tolist()
    ([0.75, 0.25], [[1.0, 0.3333333333333333], [1.0, 1.0]])
    """
    nk, sums = np.asarray(nk, dtype=np.float64), np.asarray(sums, dtype=np.float64)
    ones, zeros = pseudo_counts
    denominator = nk + (ones + zeros)
    if np.any(denominator <= 0.0):
        k = int(np.flatnonzero(denominator <= 0.0)[0])
        raise ValueError(f"nk: component {k} has zero total responsibility and no pseudo-counts, so its "
                         "update is 0/0")
    weights = (nk + weight_pseudo_count) / (n + weight_pseudo_count * len(nk))
    P = (sums + ones) / denominator[:, None]
    return weights, np.clip(P, 0.0, 1.0)
