"""The Leaky-ReLU flow (question 6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from torch.autograd.functional import jacobian
from torch.distributions import Independent, MultivariateNormal, Normal, TransformedDistribution
from torch.distributions.transforms import IndependentTransform

from genverify.checks import orthant_quadrature
from genverify.models import LeakyReLUTransform
from genverify.numerics import leaky_relu, leaky_relu_inverse, leaky_relu_inverse_abs_det, leaky_relu_log_abs_det

alphas = st.floats(0.01, 0.99)
# Subnormals lose relative precision under any scaling; they are not a property of the map.
reals = st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
vectors = arrays(np.float64, st.integers(1, 6), elements=st.one_of(reals, st.sampled_from([0.0, -0.0])))


@given(reals | st.sampled_from([0.0, -0.0]), alphas)
def test_leaky_relu_inverse_inverts_both_ways(x, alpha):
    assert leaky_relu(leaky_relu_inverse(x, alpha), alpha) == pytest.approx(x, rel=1e-15, abs=0)
    assert leaky_relu_inverse(leaky_relu(x, alpha), alpha) == pytest.approx(x, rel=1e-15, abs=0)


def test_leaky_relu_inverse_at_zero_and_negative_zero():
    assert leaky_relu_inverse(0.0) == 0.0
    neg = leaky_relu_inverse(-0.0)
    assert neg == 0.0 and math.copysign(1, neg) == -1  # the sign of zero survives
    assert leaky_relu_inverse(-0.1) == pytest.approx(-1.0)
    assert np.isfinite(leaky_relu_log_abs_det(np.array([0.0, -0.0])))


@given(vectors, alphas)
def test_leaky_relu_log_abs_det_equals_autograd_jacobian(z, alpha):
    zt = torch.as_tensor(z)
    t = LeakyReLUTransform(alpha)
    jac = jacobian(t, zt)
    assert torch.count_nonzero(jac - torch.diag(torch.diagonal(jac))) == 0  # diagonal
    want = torch.linalg.slogdet(jac).logabsdet.item()
    assert leaky_relu_log_abs_det(z, alpha) == pytest.approx(want, abs=1e-12)
    assert IndependentTransform(t, 1).log_abs_det_jacobian(zt, t(zt)).item() == pytest.approx(want, abs=1e-12)
    assert leaky_relu_inverse_abs_det(z, alpha) == pytest.approx(math.exp(-want), rel=1e-12)


def test_homework_alpha_gives_ten_to_the_number_of_negatives():
    z = np.array([-3.0, 2.0, -0.5, 7.0, -1.0])
    assert leaky_relu_inverse_abs_det(z) == pytest.approx(10.0**3, rel=1e-13)


def test_transformed_distribution_density_integrates_to_one_in_two_dimensions():
    base = Independent(Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    flow = TransformedDistribution(base, [IndependentTransform(LeakyReLUTransform(0.1), 1)])

    def density(x):  # torch's log_prob, vectorised over the quadrature's points
        return flow.log_prob(torch.as_tensor(x, dtype=torch.float64)).exp().numpy()

    total, error = orthant_quadrature(density, dim=2, order=64)
    assert error <= 1e-9
    assert total == pytest.approx(1.0, abs=1e-7)


def test_transformed_distribution_log_prob_is_change_of_variables():
    base = MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    flow = TransformedDistribution(base, [IndependentTransform(LeakyReLUTransform(0.1), 1)])
    x = torch.tensor([[-0.2, 1.0, -0.05], [0.3, 0.4, 0.5]], dtype=torch.float64)
    z = leaky_relu_inverse(x.numpy())
    want = stats.multivariate_normal(np.zeros(3)).logpdf(z) - leaky_relu_log_abs_det(z)
    assert np.allclose(flow.log_prob(x).numpy(), want, atol=1e-12)
    sample = flow.sample((1000,))
    assert sample.shape == (1000, 3)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan, math.inf])
def test_invalid_slope_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match="alpha"):
        leaky_relu_inverse(1.0, bad)
    with pytest.raises(ValueError, match="alpha"):
        LeakyReLUTransform(bad)


def test_log_abs_det_needs_a_vector():
    with pytest.raises(ValueError, match="z"):
        leaky_relu_log_abs_det(1.0)
