"""PyTorch counterparts and generative models (imported lazily: torch is heavy).

``from genverify.models import LeakyReLUTransform`` works; each name is
imported from its module on first access.
"""

from __future__ import annotations

from genverify.lazy import lazy_exports

#: name -> module (relative to this package) that defines it. Later issues
#: append their models here (one line each).
_EXPORTS = {
    "LeakyReLUTransform": "transforms",
    "kl_gaussian_torch": "functional",
    "kl_vae_torch": "functional",
    "lognormal_log_prob_torch": "functional",
    "NICE": "nice",
    "LogisticPrior": "nice",
    "logistic_log_prob": "nice",
    "ConvVAE": "vae",
    "MLPVAE": "vae",
    "validate_images": "images",
    "dequantize": "images",
    "binarize": "images",
    "BernoulliMixture": "bernoulli_mixture",
    "resolve_device": "devices",
    "available_devices": "devices",
    "fit_forward_kl_torch": "kl_fit_torch",
    "fit_reverse_kl_torch": "kl_fit_torch",
    "forward_kl_torch": "kl_fit_torch",
    "reverse_kl_torch": "kl_fit_torch",
    "elbo_conjugate_torch": "kl_fit_torch",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
