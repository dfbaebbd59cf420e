"""KL divergences in closed form, float64 and vectorised (questions 1a and 1c).

Each function is the numeric twin of a registry result derived in
:mod:`genverify.derivations.kl`; the test suite ties them together.
"""

from __future__ import annotations

import numpy as np

from genverify.numerics._validate import as_float, positive


def kl_uniform(a, b, c, d) -> np.ndarray:
    r"""KL(U[a, b] || U[c, d]), registry id ``kl-uniform``.

    .. math:: D_{KL} = \log\frac{d - c}{b - a} \text{ if } [a, b] \subseteq [c, d], \text{ else } +\infty

    Question 1a: ``kl_uniform(0, 1, -2, 2) == log 4`` (forward) and
    ``kl_uniform(-2, 2, 0, 1) == inf`` (reverse).

    >>> float(kl_uniform(0, 1, -2, 2))
    1.3862943611198906
    >>> float(kl_uniform(-2, 2, 0, 1))
    inf
    """
    a, b, c, d = (as_float(n, v) for n, v in zip("abcd", (a, b, c, d)))
    if np.any(b <= a):
        raise ValueError(f"b must be > a (U[a, b] needs a < b), got a={a!r}, b={b!r}")
    if np.any(d <= c):
        raise ValueError(f"d must be > c (U[c, d] needs c < d), got c={c!r}, d={d!r}")
    covered = (a >= c) & (b <= d)
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.log(d - c) - np.log(b - a)
    return np.where(covered, inside, np.inf)


def kl_gaussian(mu1, sigma1, mu2, sigma2) -> np.ndarray:
    r"""KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)), registry id ``kl-gaussian``.

    .. math:: \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1-\mu_2)^2}{2\sigma_2^2} - \frac12

    Written with ``log1p``/ratios so that nearly equal distributions give a
    small, accurate, non-negative value rather than cancellation noise.

    >>> float(kl_gaussian(0.0, 1.0, 0.0, 1.0))
    0.0
    """
    mu1, mu2 = as_float("mu1", mu1), as_float("mu2", mu2)
    sigma1, sigma2 = positive("sigma1", sigma1), positive("sigma2", sigma2)
    r = sigma1 / sigma2
    t = r * r - 1.0
    # r^2 - 1 - log r^2 >= 0: by its series for r near 1 (no cancellation),
    # with log r taken directly elsewhere (r^2 - 1 rounds to -1 for tiny r).
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        series = t * t / 2 - t**3 / 3 + t**4 / 4 - t**5 / 5
        core = np.where(np.abs(t) < 1e-3, series, t - 2.0 * np.log(r))
        return 0.5 * (core + ((mu1 - mu2) / sigma2) ** 2)


def kl_vae(mu, sigma) -> np.ndarray:
    r"""The VAE's KL term for one latent dimension: KL(N(mu, sigma^2) || N(0, 1)).

    .. math:: \tfrac12\left(\mu^2 + \sigma^2 - 1 - \log\sigma^2\right)

    Registry id ``kl-vae`` (question 1c); sum over latent dimensions for a
    diagonal Gaussian encoder.

    >>> float(kl_vae(0.0, 1.0))
    0.0
    """
    return kl_gaussian(mu, sigma, 0.0, 1.0)
