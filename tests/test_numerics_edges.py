"""Edges of the numerics that mutation testing (``make mutation``) found untested.

Each test pins a behaviour that a surviving mutant changed: a boundary of an
argument check, a scalar returned for a scalar, the seed and shape of a
sampler, a probability of exactly 0 or 1, the component an error names.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from genverify.numerics import (
    bernoulli_log_likelihood,
    expected_complete_log_likelihood,
    kl_uniform,
    lognormal_pdf,
    m_step,
    mixture_log_likelihood,
    responsibilities,
    square_distance,
    square_distance_cdf,
    square_distance_pdf,
)
from genverify.numerics.em import m_step_from_statistics

# ------------------------------------------------------------------ densities (5b, 5c)


@pytest.mark.parametrize("f,arg", [(lognormal_pdf, 1.5), (square_distance_cdf, 0.5), (square_distance_cdf, 1.2),
                                   (square_distance_pdf, 0.5), (square_distance_pdf, 1.2)])
def test_a_scalar_argument_gives_a_numpy_scalar_and_an_array_an_array(f, arg):
    out = f(arg)
    assert isinstance(out, np.floating) and not isinstance(out, np.ndarray)
    arr = f(np.array([arg, arg]))
    assert isinstance(arr, np.ndarray) and arr.shape == (2,)


def test_square_distance_samples_follow_the_seed_and_the_requested_shape():
    a = square_distance.rvs(size=(3, 4), random_state=np.random.default_rng(5))
    b = square_distance.rvs(size=(3, 4), random_state=np.random.default_rng(5))
    assert a.shape == (3, 4) and np.array_equal(a, b)
    assert len(np.unique(a)) == a.size and np.all((a >= 0) & (a <= math.sqrt(2)))


def test_square_distance_samples_are_distances_of_points_of_the_whole_square():
    # Mean distance from the centre of [0, 2]^2: (sqrt(2) + asinh(1)) / 3 = 0.7652.
    draws = square_distance.rvs(size=200_000, random_state=np.random.default_rng(6))
    se = draws.std(ddof=1) / math.sqrt(draws.size)
    # 5 SE: a two-sided false-alarm rate of 5.7e-7 (and the seed is fixed).
    assert abs(draws.mean() - (math.sqrt(2) + math.asinh(1)) / 3) <= 5 * se


# ------------------------------------------------------------------ KL (1a)


def test_kl_uniform_refuses_a_degenerate_second_interval():
    with pytest.raises(ValueError, match="d must be > c"):
        kl_uniform(0.0, 1.0, 2.0, 2.0)


# ------------------------------------------------------------------ EM (2): argument checks at their boundaries


def _data():
    X = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    P = np.array([[0.9, 0.1, 0.8], [0.2, 0.3, 0.6]])
    return X, P


@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_an_empty_image_matrix_is_refused(shape):
    with pytest.raises(ValueError, match="X must have at least one row and one column"):
        bernoulli_log_likelihood(np.zeros(shape), np.full((1, max(shape[1], 1)), 0.5))


def test_an_empty_set_of_components_is_refused():
    X, _ = _data()
    with pytest.raises(ValueError, match="P must have shape"):
        bernoulli_log_likelihood(X, np.zeros((0, 3)))


def test_weights_may_be_zero_and_must_sum_to_one_within_1e_8():
    X, P = _data()
    assert np.isfinite(mixture_log_likelihood(X, [1.0, 0.0], P))
    assert np.isfinite(mixture_log_likelihood(X, [0.5 + 0.4e-8, 0.5], P))
    with pytest.raises(ValueError, match="sum to 1"):
        mixture_log_likelihood(X, [0.5 + 1.5e-8, 0.5], P)


def test_responsibility_rows_must_sum_to_one_within_1e_8_and_lie_in_the_unit_interval():
    X, P = _data()
    w = [0.5, 0.5]
    R = responsibilities(X, w, P)
    assert np.isfinite(expected_complete_log_likelihood(X, R + [[0.4e-8, 0.0]] + [[0.0, 0.0]], w, P))
    with pytest.raises(ValueError, match="rows must sum to 1"):
        expected_complete_log_likelihood(X, R + [[1.5e-8, 0.0]], w, P)
    with pytest.raises(ValueError, match="lie in"):
        expected_complete_log_likelihood(X, np.array([[1.5, -0.5], [0.5, 0.5], [0.5, 0.5]]), w, P)


def test_boundary_probabilities_give_the_exact_bernoulli_log_likelihood():
    # P with exact 0 and 1 (the unsmoothed M-step makes them): log 0 where a pixel is impossible, 0 log 0 = 0.
    X = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    P = np.array([[1.0, 0.0], [0.5, 0.25]])
    want = stats.bernoulli.logpmf(X[:, None, :], P[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(bernoulli_log_likelihood(X, P), want)


def test_q_ignores_terms_with_zero_responsibility_even_where_the_log_likelihood_is_minus_infinity():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    P = np.array([[1.0, 0.0], [0.5, 0.5]])  # component 0 cannot produce image 1
    R = np.array([[1.0, 0.0], [0.0, 1.0]])
    q = expected_complete_log_likelihood(X, R, [0.5, 0.5], P)
    assert q == pytest.approx(2 * math.log(0.5) + 2 * math.log(0.5))


def test_an_empty_component_is_named_in_the_m_step_error():
    X, _ = _data()
    R = np.array([[0.0, 0.2, 0.8], [0.0, 0.3, 0.7], [0.0, 0.4, 0.6]])  # components: N_k = 0, 0.9, 2.1
    with pytest.raises(ValueError, match="component 0 zero total"):
        m_step(X, R)
    R2 = R[:, [1, 0, 2]]  # N_k = 0.9, 0, 2.1: the empty one is 1, not the first with N_k <= 1
    with pytest.raises(ValueError, match="component 1 zero total"):
        m_step(X, R2)
    with pytest.raises(ValueError, match="component 1 has zero total"):
        m_step_from_statistics(np.array([0.5, 0.0]), np.zeros((2, 3)), 1)


# ------------------------------------------------------------------ KL fits (1b, 1c)

from genverify.numerics import kl_fit as nkf  # noqa: E402 - grouped with its tests


def test_the_default_target_is_the_documented_one():
    target = nkf.bimodal()
    assert tuple(target.means) == nkf.DEFAULT_MEANS == (-3.0, 3.0)
    assert tuple(target.weights) == nkf.DEFAULT_WEIGHTS and tuple(target.sds) == nkf.DEFAULT_SDS
    assert repr(nkf.SquaredLatentModel()) == "SquaredLatentModel(x=3, sigma_x=0.5)"


def test_mixture_weights_may_be_zero_and_must_sum_to_one_within_1e_8():
    assert nkf.GaussianMixture1D([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]).mean() == 0.0
    nkf.GaussianMixture1D([0.5 + 0.4e-8, 0.5], [0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        nkf.GaussianMixture1D([0.5 + 1.5e-8, 0.5], [0.0, 1.0], [1.0, 1.0])


def test_a_single_gaussians_entropy_is_half_log_2_pi_e_sigma_squared():
    p = nkf.GaussianMixture1D([1.0], [0.7], [1.9])
    assert p.entropy() == pytest.approx(0.5 * math.log(2 * math.pi * math.e * 1.9**2), rel=1e-13)


def test_mixture_samples_follow_the_mixture_cdf_the_seed_and_the_size():
    p = nkf.GaussianMixture1D([0.3, 0.7], [-2.0, 1.0], [0.5, 1.5])
    draws = p.sample(50_000, 3)
    assert np.array_equal(draws, p.sample(50_000, 3)) and p.sample(0, 3).shape == (0,)
    cdf = lambda t: 0.3 * stats.norm.cdf(t, -2.0, 0.5) + 0.7 * stats.norm.cdf(t, 1.0, 1.5)  # noqa: E731
    # KS at level 1e-4: a false alarm once in 10,000 seeds (the seed is fixed).
    assert stats.kstest(draws, cdf).pvalue > 1e-4
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="n must be a non-negative integer"):
            p.sample(bad)


def test_quadrature_rules_are_read_only():
    # They are cached: a caller writing into one would corrupt every later expectation.
    for arr in (*nkf._normal_rule(), *nkf._legendre_panels(-1.0, 1.0, 4, 3)):
        assert not arr.flags.writeable


def test_default_starts_spread_over_two_sds_around_the_mean_with_half_an_sd():
    p = nkf.GaussianMixture1D([0.5, 0.5], [-1.0, 3.0], [1.0, 1.0])
    mean, sd = p.mean(), p.sd()
    assert nkf.default_starts(p, 1) == [(mean + 0.5 * sd, 0.5 * sd)]
    np.testing.assert_allclose(nkf.default_starts(p, 3), [(mean - 2 * sd, 0.5 * sd), (mean, 0.5 * sd),
                                                          (mean + 2 * sd, 0.5 * sd)], rtol=1e-15, atol=1e-15)


def test_a_fit_is_immutable_and_a_reverse_fit_reports_its_reverse_kl():
    fit = nkf.fit_reverse_kl(nkf.bimodal())
    with pytest.raises(AttributeError):
        fit.optima_[0].m = 0.0  # frozen dataclass
    assert fit.kl_ == fit.reverse_kl_ == fit.optima_[0].reverse_kl
    assert [o.reverse_kl for o in fit.optima_] == sorted(o.reverse_kl for o in fit.optima_)
    forward = nkf.fit_forward_kl(nkf.bimodal())
    assert forward.kl_ == forward.forward_kl_


@pytest.mark.parametrize("kwargs,name", [(dict(tol=-1.0), "tol"), (dict(tol=0), "tol"), (dict(max_iter=0), "max_iter"),
                                         (dict(max_iter=2.5), "max_iter")])
def test_fit_settings_are_checked(kwargs, name):
    with pytest.raises(ValueError, match=name):
        nkf.KLGaussianFit("reverse", **kwargs)


def test_the_posterior_of_the_squared_model_has_one_mode_until_x_exceeds_half_the_noise_variance():
    assert nkf.SquaredLatentModel(x=0.125, sigma_x=0.5).modes().tolist() == [0.0]  # x = sigma_x^2 / 2 exactly
    assert len(nkf.SquaredLatentModel(x=0.2, sigma_x=0.5).modes()) == 2


# ------------------------------------------------------------------ infinite arguments (5c, 6)

from genverify.numerics import leaky_relu, leaky_relu_inverse, leaky_relu_log_abs_det  # noqa: E402


def test_infinite_distances_and_coordinates_are_accepted():
    assert square_distance_cdf(np.inf) == 1.0 and square_distance_pdf(np.inf) == 0.0
    assert square_distance_cdf(-np.inf) == 0.0 and square_distance_pdf(-np.inf) == 0.0
    assert leaky_relu(np.inf, 0.1) == np.inf and leaky_relu(-np.inf, 0.1) == -np.inf
    assert leaky_relu_inverse(-np.inf, 0.1) == -np.inf
    assert leaky_relu_log_abs_det(np.array([np.inf, -np.inf]), 0.1) == pytest.approx(math.log(0.1))


def test_the_inverse_determinant_accepts_infinite_coordinates():
    from genverify.numerics import leaky_relu_inverse_abs_det

    assert leaky_relu_inverse_abs_det(np.array([np.inf, -np.inf]), 0.1) == pytest.approx(10.0)


def test_a_responsibility_matrix_of_the_wrong_shape_is_named_with_its_expected_shape():
    X, _ = _data()
    with pytest.raises(ValueError, match=r"resp must have shape \(3, K\), got \(2, 2\)"):
        m_step(X, np.full((2, 2), 0.5))


def test_an_m_step_probability_rounded_past_one_is_clipped_to_one():
    # sums / N_k = (0.1 + 0.2) / 0.3 = 1.0000000000000002 in float64.
    _, P = m_step_from_statistics(np.array([0.3]), np.array([[0.1 + 0.2]]), 1)
    assert P[0, 0] == 1.0


def test_the_square_distance_takes_its_exact_values_at_the_joins():
    # The middle piece is off by an ulp at z = 1 and z = sqrt(2): a cdf of 1 + 2e-16 is not a cdf.
    sqrt2 = float(np.sqrt(2.0))
    assert square_distance_cdf(1.0) == np.pi / 4 and square_distance_cdf(sqrt2) == 1.0
    assert square_distance_pdf(1.0) == np.pi / 2 and square_distance_pdf(sqrt2) == 0.0



@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 5)),
              elements=st.one_of(st.floats(-700, 700), st.just(-np.inf))), st.sampled_from([0, 1]))
def test_the_light_logsumexp_equals_scipys(a, axis):
    from scipy import special

    from genverify.numerics._special import logsumexp

    with np.errstate(divide="ignore"):
        want = special.logsumexp(a, axis=axis, keepdims=True)
    got = logsumexp(a, axis=axis, keepdims=True)
    assert got.shape == want.shape
    assert np.array_equal(np.isneginf(got), np.isneginf(want))  # a slice of all -inf gives -inf
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], rtol=1e-14, atol=1e-14)
