"""Checked float64 numerics: each function is the twin of a registry result.

>>> from genverify.numerics import lognormal_pdf
>>> round(float(lognormal_pdf(1.0, mu=0.0, sigma=1.0)), 6)
0.398942
"""

from genverify.numerics.densities import (
    SquareDistanceDistribution,
    cauchy_reciprocal_pdf,
    lognormal_pdf,
    square_distance,
    square_distance_cdf,
    square_distance_pdf,
)
from genverify.numerics.kl import kl_gaussian, kl_uniform, kl_vae
from genverify.numerics.leaky_relu import (
    leaky_relu,
    leaky_relu_inverse,
    leaky_relu_inverse_abs_det,
    leaky_relu_log_abs_det,
)

__all__ = [
    "SquareDistanceDistribution",
    "cauchy_reciprocal_pdf",
    "kl_gaussian",
    "kl_uniform",
    "kl_vae",
    "leaky_relu",
    "leaky_relu_inverse",
    "leaky_relu_inverse_abs_det",
    "leaky_relu_log_abs_det",
    "lognormal_pdf",
    "square_distance",
    "square_distance_cdf",
    "square_distance_pdf",
]
# Later issues append their exports below (one import line each).
