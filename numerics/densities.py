"""Densities of transformed random variables, float64 and vectorised (question 5).

Each function is the numeric twin of a registry result derived in
:mod:`genverify.derivations`; formulas are written independently of the
derivation (the tests compare the two).
"""

from __future__ import annotations

import functools

import numpy as np

from genverify.numerics._validate import as_float, positive

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
SQRT2 = float(np.sqrt(2.0))


def cauchy_reciprocal_pdf(y) -> np.ndarray:
    r"""Density of Y = 1/X for a standard Cauchy X (question 5a), id ``cauchy-reciprocal-pdf``.

    .. math:: f_Y(y) = f_X(1/y)\,\frac{1}{y^2} = \frac{1}{\pi(1 + y^2)}

    so Y is again standard Cauchy. At ``y = 0`` the change of variables is
    undefined (no finite x has 1/x = 0, and P(Y = 0) = 0); this function returns
    the continuous extension 1/pi there, which is the standard Cauchy density.
    ``y = ±inf`` gives 0.

    >>> float(cauchy_reciprocal_pdf(0.0)) == 1 / np.pi
    True
    """
    y = as_float("y", y, allow_inf=True)
    with np.errstate(over="ignore"):
        return 1.0 / (np.pi * (1.0 + y * y))


def lognormal_pdf(z, mu=0.0, sigma=1.0) -> np.ndarray:
    r"""Density of Z = exp(Y), Y ~ N(mu, sigma^2) (question 5b), id ``lognormal-pdf``.

    .. math:: f_Z(z) = \frac{1}{z\,\sigma\sqrt{2\pi}} \exp\!\left(-\frac{(\ln z - \mu)^2}{2\sigma^2}\right), \quad z > 0

    and 0 for z <= 0. Equal to ``scipy.stats.lognorm(s=sigma, scale=exp(mu)).pdf``.

    >>> round(float(lognormal_pdf(1.0)), 12)
    0.398942280401
    """
    z = as_float("z", z, allow_inf=True)
    mu = as_float("mu", mu)
    sigma = positive("sigma", sigma)
    z, mu, sigma = np.broadcast_arrays(z, mu, sigma)
    out = np.zeros(z.shape)
    ok = (z > 0) & np.isfinite(z)
    lz = np.log(z[ok])
    u = (lz - mu[ok]) / sigma[ok]
    # Work in log space: z * sigma can underflow long before the density does.
    out[ok] = np.exp(-0.5 * u * u - lz - np.log(sigma[ok]) - _LOG_SQRT_2PI)
    return out[()] if out.ndim == 0 else out


def _middle_angle_gap(z: np.ndarray) -> np.ndarray:
    """pi/4 - acos(1/z) for 1 <= z <= sqrt(2), without cancellation near sqrt(2).

    With s = sqrt(z^2 - 1) = tan(acos(1/z)), tan(pi/4 - theta) = (1 - s)/(1 + s)
    = (2 - z^2) / (1 + s)^2.
    """
    s = np.sqrt(np.maximum(z * z - 1.0, 0.0))
    return np.arctan((SQRT2 - z) * (SQRT2 + z) / (1.0 + s) ** 2)


def square_distance_cdf(z) -> np.ndarray:
    r"""CDF of the distance Z from (1, 1) of a uniform point of [0, 2]^2 (question 5c).

    Registry id ``square-distance-cdf``. The disc of radius z about the centre,
    intersected with the square, has area A(z); F(z) = A(z)/4:

    .. math::
        F_Z(z) = \begin{cases}
          0 & z < 0 \\
          \pi z^2/4 & 0 \le z \le 1 \\
          \pi z^2/4 - z^2 \arccos(1/z) + \sqrt{z^2 - 1} & 1 < z < \sqrt2 \\
          1 & z \ge \sqrt 2
        \end{cases}

    >>> round(float(square_distance_cdf(1.0)), 12) == round(np.pi / 4, 12)
    True
    """
    z = as_float("z", z, allow_inf=True)
    zc = np.clip(z, 1.0, SQRT2)
    # With g = pi/4 - acos(1/z): pi z^2/4 - z^2 acos(1/z) = z^2 g, free of cancellation.
    middle = zc * zc * _middle_angle_gap(zc) + np.sqrt(zc * zc - 1.0)
    out = np.where(z < 0, 0.0, np.where(z <= 1, np.pi * z * z / 4, np.where(z < SQRT2, middle, 1.0)))
    return out[()] if out.ndim == 0 else out


def square_distance_pdf(z) -> np.ndarray:
    r"""Density of the distance Z from (1, 1) of a uniform point of [0, 2]^2 (question 5c).

    Registry id ``square-distance-pdf``; the derivative of :func:`square_distance_cdf`:

    .. math::
        f_Z(z) = \begin{cases}
          \pi z / 2 & 0 \le z \le 1 \\
          \pi z / 2 - 2 z \arccos(1/z) & 1 < z < \sqrt2 \\
          0 & \text{otherwise}
        \end{cases}

    >>> round(float(square_distance_pdf(0.5)), 12) == round(np.pi / 4, 12)
    True
    """
    z = as_float("z", z, allow_inf=True)
    zc = np.clip(z, 1.0, SQRT2)
    middle = 2.0 * zc * _middle_angle_gap(zc)
    out = np.where((z < 0) | (z >= SQRT2), 0.0, np.where(z <= 1, np.pi * z / 2, middle))
    return out[()] if out.ndim == 0 else out


@functools.lru_cache(maxsize=None)
def _square_distance_class() -> type:
    """The ``scipy.stats`` distribution class of question 5c, made on first use.

    It subclasses ``scipy.stats.rv_continuous``, so defining it imports ``scipy.stats``
    (about 0.4 s); this module is imported by every process that loads a result
    (``genverify check``, ``derive``), and only some of them sample.
    """
    from scipy import stats

    class SquareDistanceDistribution(stats.rv_continuous):
        """Z = |P - (1, 1)| for P uniform on [0, 2]^2, as a ``scipy.stats`` distribution.

        ``pdf``/``cdf`` are the closed forms above; ``ppf`` inverts the cdf (in
        closed form below pi/4, by bracketed root finding above); ``rvs`` samples
        the geometric definition directly.
        """

        def _pdf(self, z):
            return square_distance_pdf(z)

        def _cdf(self, z):
            return square_distance_cdf(z)

        def _ppf(self, q):
            q = np.asarray(q, dtype=float)
            out = np.sqrt(4.0 * q / np.pi)
            upper = q > np.pi / 4
            if np.any(upper):
                # Vectorised bisection on [1, sqrt 2], where the cdf is increasing:
                # 64 halvings reach the spacing of doubles.
                target = q[upper]
                lo = np.ones_like(target)
                hi = np.full_like(target, SQRT2)
                for _ in range(64):
                    mid = 0.5 * (lo + hi)
                    below = square_distance_cdf(mid) < target
                    lo = np.where(below, mid, lo)
                    hi = np.where(below, hi, mid)
                out = np.array(out, copy=True)
                out[upper] = 0.5 * (lo + hi)
            return out

        def _rvs(self, size=None, random_state=None):
            rng = random_state if random_state is not None else np.random.default_rng()
            u = rng.uniform(0.0, 2.0, size=tuple(np.atleast_1d(size)) + (2,)) if size is not None else rng.uniform(0.0, 2.0, 2)
            return np.sqrt(np.sum((u - 1.0) ** 2, axis=-1))

    SquareDistanceDistribution.__qualname__ = "SquareDistanceDistribution"  # pickles by this module's name
    SquareDistanceDistribution.__module__ = __name__
    return SquareDistanceDistribution


@functools.lru_cache(maxsize=None)
def _square_distance() -> object:
    """``square_distance``: the distribution instance (``square_distance.cdf(z)``, ``.rvs(size, random_state)``).

    >>> round(float(_square_distance().ppf(np.pi / 4)), 12)
    1.0
    """
    return _square_distance_class()(a=0.0, b=SQRT2, name="square_distance")


def __getattr__(name: str):
    # ``SquareDistanceDistribution`` and ``square_distance`` (the instance: ``square_distance.cdf(z)``,
    # ``.rvs(size, random_state)``) are made when first asked for (PEP 562).
    if name == "SquareDistanceDistribution":
        return _square_distance_class()
    if name == "square_distance":
        return _square_distance()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
