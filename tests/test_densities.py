"""Densities of transformed variables (question 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats

from genverify import registry
from genverify.checks import lambdify_result
from genverify.numerics import (
    cauchy_reciprocal_pdf,
    lognormal_pdf,
    square_distance,
    square_distance_cdf,
    square_distance_pdf,
)

SQRT2 = math.sqrt(2)


# ------------------------------------------------------------------ 5a
@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_cauchy_reciprocal_pdf_is_the_standard_cauchy(y):
    assert cauchy_reciprocal_pdf(y) == pytest.approx(stats.cauchy.pdf(y), rel=1e-13)


@given(st.floats(1e-6, 1e6) | st.floats(-1e6, -1e-6))
def test_cauchy_reciprocal_pdf_is_the_change_of_variables_of_the_cauchy(y):
    # f_Y(y) = f_X(1/y) / y^2 for y != 0: the definition, evaluated directly.
    direct = stats.cauchy.pdf(1 / y) / y**2
    assert cauchy_reciprocal_pdf(y) == pytest.approx(direct, rel=1e-12)


def test_cauchy_reciprocal_pdf_at_zero_is_the_continuous_extension():
    assert cauchy_reciprocal_pdf(0.0) == 1 / math.pi
    assert cauchy_reciprocal_pdf(-0.0) == 1 / math.pi
    # ... which is the limit of f_X(1/y)/y^2 as y -> 0.
    assert stats.cauchy.pdf(1e8) * 1e16 == pytest.approx(1 / math.pi, rel=1e-12)
    assert cauchy_reciprocal_pdf(np.inf) == 0.0
    with pytest.raises(ValueError, match="y"):
        cauchy_reciprocal_pdf(np.nan)


# ------------------------------------------------------------------ 5b
zs = st.floats(1e-8, 1e8)
mus = st.floats(-5, 5)
sig = st.one_of(st.floats(1e-3, 50), st.sampled_from([1e-3, 50.0]))


@given(zs, mus, sig)
def test_lognormal_pdf_matches_scipy_lognorm(z, mu, sigma):
    want = stats.lognorm.pdf(z, s=sigma, scale=math.exp(mu))
    assert lognormal_pdf(z, mu, sigma) == pytest.approx(want, rel=1e-9, abs=1e-300)


@given(zs, mus, sig)
def test_lognormal_pdf_matches_its_derivation(z, mu, sigma):
    derived = float(lambdify_result(registry.get("lognormal-pdf"))(dict(z=z, mu=mu, sigma=sigma)))
    assert lognormal_pdf(z, mu, sigma) == pytest.approx(derived, rel=1e-10, abs=1e-300)


@given(mus, st.floats(0.05, 5))
def test_lognormal_pdf_integrates_to_one(mu, sigma):
    total, _ = integrate.quad(lambda u: lognormal_pdf(math.exp(u), mu, sigma) * math.exp(u),
                              mu - 40 * sigma, mu + 40 * sigma, limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


def test_lognormal_pdf_is_zero_off_the_support_and_rejects_bad_sigma():
    assert np.all(lognormal_pdf(np.array([-1.0, 0.0, -0.0, -np.inf, np.inf])) == 0.0)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="sigma"):
            lognormal_pdf(1.0, 0.0, bad)
    with pytest.raises(ValueError, match="mu"):
        lognormal_pdf(1.0, np.nan, 1.0)


def test_lognormal_mean_by_monte_carlo_within_five_standard_errors():
    # E[Z] = ∫ z f(z) dz from the density, vs the sample mean of e^Y.
    # Two-sided false-alarm rate at 5 SE: 5.7e-7 (and the seed is fixed).
    rng = np.random.default_rng(11)
    mu, sigma = 0.4, 0.5
    samples = np.exp(rng.normal(mu, sigma, 500_000))
    mean_from_pdf, _ = integrate.quad(lambda z: z * lognormal_pdf(z, mu, sigma), 0, np.inf)
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(samples.mean() - mean_from_pdf) <= 5 * se


# ------------------------------------------------------------------ 5c
near_one = st.floats(1 - 1e-6, 1 + 1e-6)
near_root2 = st.floats(SQRT2 - 1e-6, SQRT2 + 1e-6)
anywhere = st.floats(-1.0, 3.0)


@given(st.one_of(near_one, near_root2, anywhere))
def test_square_distance_matches_derivation_including_the_joins(z):
    cdf = float(lambdify_result(registry.get("square-distance-cdf"))(dict(z=z)))
    pdf = float(lambdify_result(registry.get("square-distance-pdf"))(dict(z=z)))
    assert square_distance_cdf(z) == pytest.approx(cdf, rel=1e-10, abs=1e-12)
    # Near sqrt(2) the lambdified derivation itself cancels (asin - asin).
    assert square_distance_pdf(z) == pytest.approx(pdf, rel=1e-9, abs=1e-7)


@given(st.one_of(near_one, near_root2))
def test_square_distance_is_continuous_at_the_joins(z):
    h = 1e-12
    assert abs(square_distance_cdf(z + h) - square_distance_cdf(z - h)) < 1e-10
    # The pdf is continuous but has a square-root cusp just above z = 1
    # (acos(1/z) ~ sqrt(2(z - 1))), so a jump of h moves it by O(sqrt(h)).
    assert abs(square_distance_pdf(z + h) - square_distance_pdf(z - h)) < 8 * math.sqrt(h)


@given(st.lists(anywhere, min_size=2, max_size=20))
def test_square_distance_cdf_is_a_cdf(points):
    z = np.sort(np.array(points))
    f = square_distance_cdf(z)
    assert np.all((0 <= f) & (f <= 1)) and np.all(np.diff(f) >= -1e-15)
    assert np.all(square_distance_pdf(z) >= 0)


def test_square_distance_is_zero_outside_and_known_inside():
    assert square_distance_pdf(-0.1) == 0 and square_distance_pdf(1.5) == 0
    assert square_distance_cdf(-0.1) == 0 and square_distance_cdf(1.5) == 1
    # The disc of radius 1 is inscribed: area pi, probability pi/4.
    assert square_distance_cdf(1.0) == pytest.approx(math.pi / 4, rel=1e-15)
    total, _ = integrate.quad(square_distance_pdf, 0, SQRT2, points=[1.0], epsabs=1e-13)
    assert total == pytest.approx(1.0, abs=1e-10)


def test_square_distance_cdf_by_monte_carlo_within_five_standard_errors():
    # 25 points at 5 SE each: family-wise false-alarm rate <= 25 * 5.7e-7 = 1.4e-5.
    rng = np.random.default_rng(5)
    n = 300_000
    d = np.hypot(*(rng.uniform(0, 2, (2, n)) - 1.0))
    zs = np.linspace(0.05, 1.40, 25)
    p_hat = (d[None, :] <= zs[:, None]).mean(axis=1)
    se = np.sqrt(p_hat * (1 - p_hat) / n)
    assert np.all(np.abs(p_hat - square_distance_cdf(zs)) <= 5 * se)


def test_square_distance_rv_continuous_ppf_inverts_cdf_and_samples_match():
    q = np.linspace(0.001, 0.999, 101)
    assert np.allclose(square_distance.cdf(square_distance.ppf(q)), q, atol=1e-12)
    assert square_distance.ppf(math.pi / 4) == pytest.approx(1.0, abs=1e-12)
    draws = square_distance.rvs(size=20_000, random_state=np.random.default_rng(3))
    assert draws.min() >= 0 and draws.max() <= SQRT2
    # KS at level 1e-4: a false alarm once in 10,000 seeds.
    assert stats.kstest(draws, square_distance.cdf).pvalue > 1e-4


def test_square_distance_rejects_nan():
    with pytest.raises(ValueError, match="z"):
        square_distance_pdf(np.nan)
