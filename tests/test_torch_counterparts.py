"""The torch counterparts of closed-form results (``genverify.models.functional``) compute the verified results.

Each is checked with :func:`genverify.testing.assert_implements` (what a user would run on
their own torch code): Hypothesis points over the result's domains, the edges of its
sampling bounds, and a vectorised call, against the verified numeric function.
"""

from __future__ import annotations

import math

import pytest
import torch

from genverify.models.functional import kl_gaussian_torch, kl_vae_torch, lognormal_log_prob_torch
from genverify.testing import assert_implements

RTOL = 1e-10  # float64 tensors: rounding only


def test_kl_gaussian_torch_is_the_verified_kl_between_normals():
    assert_implements("kl-gaussian", kl_gaussian_torch, rtol=RTOL, atol=1e-12, seed=0, max_examples=100)


def test_kl_vae_torch_is_the_verified_kl_to_the_standard_normal():
    # The encoder's parametrisation: log-variance l = log sigma^2.
    assert_implements("kl-vae", lambda mu, sigma: kl_vae_torch(mu, 2 * torch.log(torch.as_tensor(sigma))),
                      rtol=RTOL, atol=1e-12, seed=0, max_examples=100)


def test_the_exp_of_lognormal_log_prob_torch_is_the_verified_lognormal_density():
    assert_implements("lognormal-pdf", lambda z, mu, sigma: torch.exp(lognormal_log_prob_torch(
        torch.as_tensor(z), torch.as_tensor(mu), torch.as_tensor(sigma))), rtol=RTOL, atol=1e-300,
        seed=0, max_examples=100)


@pytest.mark.parametrize("z", [0.0, -1.0, -math.inf])
def test_lognormal_log_prob_torch_is_minus_infinity_off_the_support(z):
    got = lognormal_log_prob_torch(torch.tensor([z], dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64),
                                   torch.tensor(1.2, dtype=torch.float64))
    assert got.item() == -math.inf


def test_a_planted_slip_in_a_torch_counterpart_is_caught():
    # The same check on a counterpart with the 1/2 of the log-ratio dropped must fail.
    def slipped(mu1, sigma1, mu2, sigma2):
        return kl_gaussian_torch(mu1, sigma1, mu2, sigma2) + 0.5 * torch.log((torch.as_tensor(sigma1)
                                                                                / torch.as_tensor(sigma2)) ** 2)

    with pytest.raises(AssertionError, match="kl-gaussian"):
        assert_implements("kl-gaussian", slipped, rtol=RTOL, atol=1e-12, seed=0, max_examples=50)
