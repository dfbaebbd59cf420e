"""Checked float64 numerics: each function is the twin of a registry result.

>>> from genverify.numerics import lognormal_pdf
>>> round(float(lognormal_pdf(1.0, mu=0.0, sigma=1.0)), 6)
0.398942
"""

from genverify.lazy import lazy_exports
from genverify.numerics.densities import (
    cauchy_reciprocal_pdf,
    lognormal_pdf,
    square_distance_cdf,
    square_distance_pdf,
)
from genverify.numerics.em import (
    bernoulli_log_likelihood,
    complete_data_log_likelihood,
    conditional_log_likelihood,
    expected_complete_log_likelihood,
    latent_log_prior,
    log_responsibilities,
    m_step,
    mixture_log_likelihood,
    mixture_log_likelihood_samples,
    responsibilities,
    responsibilities_product_form,
)
from genverify.numerics.kl import kl_gaussian, kl_uniform, kl_vae
from genverify.numerics.kl_fit import (
    GaussianFit,
    GaussianMixture1D,
    KLGaussianFit,
    SquaredLatentModel,
    bimodal,
    conjugate_log_evidence,
    conjugate_posterior,
    elbo_conjugate,
    elbo_gap,
    fit_forward_kl,
    fit_reverse_kl,
    forward_kl,
    maximize_elbo,
    mixture_moments,
    reverse_kl,
    reverse_kl_grad,
)
from genverify.numerics.leaky_relu import (
    leaky_relu,
    leaky_relu_inverse,
    leaky_relu_inverse_abs_det,
    leaky_relu_log_abs_det,
)

__all__ = [
    "GaussianFit",
    "GaussianMixture1D",
    "KLGaussianFit",
    "SquareDistanceDistribution",
    "SquaredLatentModel",
    "bernoulli_log_likelihood",
    "bimodal",
    "cauchy_reciprocal_pdf",
    "complete_data_log_likelihood",
    "conditional_log_likelihood",
    "conjugate_log_evidence",
    "conjugate_posterior",
    "elbo_conjugate",
    "elbo_gap",
    "expected_complete_log_likelihood",
    "fit_forward_kl",
    "fit_reverse_kl",
    "forward_kl",
    "kl_gaussian",
    "kl_uniform",
    "kl_vae",
    "latent_log_prior",
    "leaky_relu",
    "leaky_relu_inverse",
    "leaky_relu_inverse_abs_det",
    "leaky_relu_log_abs_det",
    "log_responsibilities",
    "lognormal_pdf",
    "m_step",
    "maximize_elbo",
    "mixture_log_likelihood",
    "mixture_log_likelihood_samples",
    "mixture_moments",
    "responsibilities",
    "responsibilities_product_form",
    "reverse_kl",
    "reverse_kl_grad",
    "square_distance",
    "square_distance_cdf",
    "square_distance_pdf",
]

# The scipy.stats distribution of question 5c is made when first asked for (it imports scipy.stats).
__getattr__ = lazy_exports(__name__, {"SquareDistanceDistribution": "densities", "square_distance": "densities"})
