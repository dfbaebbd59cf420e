"""KL divergences (question 1a, and the VAE's KL term for 1c)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.distributions import Normal, Uniform, kl_divergence

from genverify import registry
from genverify.checks import lambdify_result
from genverify.numerics import kl_gaussian, kl_uniform, kl_vae

means = st.floats(-50, 50, allow_nan=False)
# From tiny to large standard deviations: the edges where cancellation bites.
sigmas = st.one_of(st.floats(1e-6, 1e6), st.sampled_from([1e-6, 1.0, 1e6]))
endpoints = st.floats(-10, 10, allow_nan=False)


def test_homework_1a_forward_is_log4_and_reverse_is_infinite():
    assert kl_uniform(0, 1, -2, 2) == pytest.approx(math.log(4), rel=1e-15)
    assert kl_uniform(-2, 2, 0, 1) == math.inf
    assert registry.get("kl-uniform-forward").expr == sp.log(4)
    assert registry.get("kl-uniform-reverse").expr == sp.oo


@given(endpoints, endpoints, endpoints, endpoints)
def test_kl_uniform_is_finite_exactly_when_support_is_covered(a, b, c, d):
    a, b = sorted((a, b))
    c, d = sorted((c, d))
    if b - a < 1e-6 or d - c < 1e-6:
        return
    val = float(kl_uniform(a, b, c, d))
    if c <= a and b <= d:
        assert val == pytest.approx(math.log((d - c) / (b - a)), rel=1e-12, abs=1e-12)
        assert val >= 0
    else:
        assert val == math.inf
    derived = lambdify_result(registry.get("kl-uniform"))(dict(a=a, b=b, c=c, d=d))
    assert float(derived) == pytest.approx(val, rel=1e-12, abs=1e-12) or (val == math.inf and derived == math.inf)
    torch_val = kl_divergence(Uniform(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)),
                              Uniform(torch.tensor(c, dtype=torch.float64), torch.tensor(d, dtype=torch.float64))).item()
    assert torch_val == pytest.approx(val, rel=1e-10, abs=1e-12) or (val == torch_val == math.inf)


@given(means, sigmas, means, sigmas)
def test_kl_gaussian_matches_derivation_and_is_nonnegative(m1, s1, m2, s2):
    val = float(kl_gaussian(m1, s1, m2, s2))
    assert val >= 0
    derived = float(lambdify_result(registry.get("kl-gaussian"))(dict(mu1=m1, sigma1=s1, mu2=m2, sigma2=s2)))
    # The lambdified derivation cancels catastrophically for nearly equal
    # distributions; compare at the scale of its largest term.
    scale = max(1.0, abs(math.log(s2 / s1)), ((m1 - m2) / s2) ** 2, (s1 / s2) ** 2)
    assert val == pytest.approx(derived, abs=1e-12 * scale, rel=1e-9)


@given(means, sigmas)
def test_kl_gaussian_vanishes_only_for_equal_distributions(m, s):
    assert kl_gaussian(m, s, m, s) == 0.0
    shifted = m + s  # one standard deviation away (as represented in floating point)
    assert kl_gaussian(m, s, shifted, s) == pytest.approx(0.5 * ((shifted - m) / s) ** 2, rel=1e-12)


@given(st.floats(-20, 20), st.floats(1e-4, 1e3))
def test_kl_vae_equals_torch_and_is_the_standard_normal_special_case(mu, sigma):
    val = float(kl_vae(mu, sigma))
    t = kl_divergence(Normal(torch.tensor(mu, dtype=torch.float64), torch.tensor(sigma, dtype=torch.float64)),
                      Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))).item()
    assert val == pytest.approx(t, rel=1e-9, abs=1e-12)
    assert val == pytest.approx(0.5 * (mu**2 + sigma**2 - 1 - 2 * math.log(sigma)), rel=1e-9, abs=1e-12)


def test_kl_gaussian_monte_carlo_agrees_within_five_standard_errors():
    # Two-sided false-alarm rate at 5 SE: 5.7e-7 per comparison (fixed seed: reproducible).
    rng = np.random.default_rng(2024)
    m1, s1, m2, s2 = 0.3, 0.7, -1.1, 1.9
    x = rng.normal(m1, s1, 400_000)
    log_ratio = (-0.5 * ((x - m1) / s1) ** 2 - math.log(s1)) - (-0.5 * ((x - m2) / s2) ** 2 - math.log(s2))
    se = log_ratio.std(ddof=1) / math.sqrt(x.size)
    assert abs(log_ratio.mean() - kl_gaussian(m1, s1, m2, s2)) <= 5 * se


@pytest.mark.parametrize("kwargs,name", [
    (dict(mu1=0, sigma1=0, mu2=0, sigma2=1), "sigma1"),
    (dict(mu1=0, sigma1=1, mu2=0, sigma2=-1), "sigma2"),
    (dict(mu1=math.nan, sigma1=1, mu2=0, sigma2=1), "mu1"),
    (dict(mu1=0, sigma1=math.inf, mu2=0, sigma2=1), "sigma1"),
])
def test_kl_gaussian_rejects_invalid_parameters_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        kl_gaussian(**kwargs)


def test_kl_uniform_rejects_empty_intervals_by_name():
    with pytest.raises(ValueError, match="b must be > a"):
        kl_uniform(1, 1, 0, 2)
    with pytest.raises(ValueError, match="d must be > c"):
        kl_uniform(0, 1, 3, 2)
