"""Torch counterparts of closed-form results (differentiable, any device).

These mirror :mod:`genverify.numerics`; ``tests/test_torch_counterparts.py`` checks each
against the verified result with :func:`genverify.testing.assert_implements`.
"""

from __future__ import annotations

import math

import torch


def kl_gaussian_torch(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    r"""KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) elementwise (registry ``kl-gaussian``).

    .. math:: \log\frac{\sigma_2}{\sigma_1} + \frac{\sigma_1^2 + (\mu_1-\mu_2)^2}{2\sigma_2^2} - \frac12
    """
    ratio = (sigma1 / sigma2) ** 2
    return 0.5 * (ratio - 1.0 - torch.log(ratio) + ((mu1 - mu2) / sigma2) ** 2)


def kl_vae_torch(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    r"""The VAE's KL(N(mu, exp(log_var)) || N(0, 1)) elementwise (registry ``kl-vae``).

    Takes the log-variance, as encoders output it:
    .. math:: \tfrac12(\mu^2 + e^{\ell} - 1 - \ell)
    Sum over latent dimensions for the ELBO's KL term.
    """
    return 0.5 * (mu * mu + torch.exp(log_var) - 1.0 - log_var)


def lognormal_log_prob_torch(z: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    r"""log f_Z(z) for Z = exp(Y), Y ~ N(mu, sigma^2) (registry ``lognormal-pdf``); -inf for z <= 0."""
    safe = torch.where(z > 0, z, torch.ones_like(z))
    lz = torch.log(safe)
    out = -0.5 * ((lz - mu) / sigma) ** 2 - lz - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return torch.where(z > 0, out, torch.full_like(out, -math.inf))
