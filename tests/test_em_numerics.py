"""Question 2 numerics (genverify.numerics.em): log-space EM for a mixture of Bernoullis."""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from genverify.numerics import (
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
from genverify.numerics.em import m_step_from_statistics


def problem(seed, N, K, D, lo=0.05, hi=0.95):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(N, D)).astype(float)
    P = rng.uniform(lo, hi, size=(K, D))
    w = rng.dirichlet(np.ones(K))
    return rng, X, w, P


sizes = dict(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 12), K=st.integers(1, 6), D=st.integers(1, 30))


# ------------------------------------------------------------------ the underflow of 2b-iii


def reference_responsibilities(X, w, P, digits=50):
    """eta in `digits`-digit arithmetic from the float64 inputs (their exact binary values)."""
    with mpmath.workdps(digits):
        out = np.empty((X.shape[0], P.shape[0]))
        for a in range(X.shape[0]):
            joint = [mpmath.log(mpmath.mpf(w[b])) + mpmath.fsum(
                mpmath.log(mpmath.mpf(P[b, c])) if X[a, c] else mpmath.log(1 - mpmath.mpf(P[b, c]))
                for c in range(X.shape[1])) for b in range(P.shape[0])]
            den = mpmath.fsum(mpmath.exp(v) for v in joint)
            for b in range(P.shape[0]):
                out[a, b] = float(mpmath.exp(joint[b]) / den)
    return out


def test_product_form_underflows_to_nan_at_d_784_while_log_form_is_exact():
    # Random images under a random initialisation p ~ U(0, 1): log-likelihoods near -784,
    # below float64's smallest positive number (about e^-745), so every product is 0.
    _, X, w, P = problem(0, 3, 4, 784, lo=0.0, hi=1.0)
    with np.errstate(all="raise"):  # no floating-point warning may escape
        product = responsibilities_product_form(X, w, P)
        log_form = responsibilities(X, w, P)
    assert np.isnan(product).all()
    ref = reference_responsibilities(X, w, P)
    # float64 sums of 784 log-probabilities (|sum| ~ 10^3) carry ~3e-12 absolute rounding,
    # which a responsibility inherits as relative error: 1e-9 is a wide margin.
    np.testing.assert_allclose(log_form, ref, rtol=1e-9, atol=0)
    np.testing.assert_allclose(log_form.sum(axis=1), 1.0, rtol=0, atol=4e-16)


def test_product_form_is_exactly_zero_over_zero_for_an_all_white_image():
    X = np.ones((1, 784))
    P = np.array([[0.3] * 784, [0.25] * 784])  # 0.3^784 = e^-944, 0.25^784 = e^-1087
    assert np.isnan(responsibilities_product_form(X, [0.5, 0.5], P)).all()
    # Exactly: eta_2 = 1 / (1 + (0.3/0.25)^784) with the float inputs, 50 digits.
    with mpmath.workdps(50):
        a, b = mpmath.mpf(0.3), mpmath.mpf(0.25)
        want = float(1 / (1 + (a / b) ** 784))
    assert responsibilities(X, [0.5, 0.5], P)[0, 1] == pytest.approx(want, rel=1e-9)


@given(**sizes)
def test_log_form_equals_product_form_where_nothing_underflows(seed, N, K, D):
    _, X, w, P = problem(seed, N, K, D)
    np.testing.assert_allclose(responsibilities(X, w, P), responsibilities_product_form(X, w, P),
                               rtol=1e-12, atol=1e-15)


@given(**sizes)
def test_responsibilities_are_a_distribution_over_components(seed, N, K, D):
    _, X, w, P = problem(seed, N, K, D, lo=1e-3, hi=1 - 1e-3)
    r = responsibilities(X, w, P)
    assert (r >= 0).all()
    np.testing.assert_allclose(r.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.exp(log_responsibilities(X, w, P)), r, rtol=1e-15)


# ------------------------------------------------------------------ likelihoods


def test_bernoulli_log_likelihood_matches_scipy_at_mnist_size():
    _, X, _, P = problem(1, 20, 5, 784, lo=1e-4, hi=1 - 1e-4)
    want = stats.bernoulli.logpmf(X[:, None, :], P[None, :, :]).sum(axis=2)
    np.testing.assert_allclose(bernoulli_log_likelihood(X, P), want, rtol=1e-13)


def test_mixture_log_likelihood_matches_scipy_logsumexp():
    _, X, w, P = problem(2, 50, 6, 784, lo=1e-3, hi=1 - 1e-3)
    per_component = stats.bernoulli.logpmf(X[:, None, :], P[None, :, :]).sum(axis=2) + np.log(w)
    want = special.logsumexp(per_component, axis=1)
    np.testing.assert_allclose(mixture_log_likelihood_samples(X, w, P), want, rtol=1e-13)
    assert mixture_log_likelihood(X, w, P) == pytest.approx(want.sum(), rel=1e-13)


@pytest.mark.parametrize("D", [1, 2, 5, 10])
def test_mixture_pmf_sums_to_one_over_all_images(D):
    _, _, w, P = problem(D, 1, 3, D, lo=0.01, hi=0.99)
    images = np.array(list(itertools.product((0, 1), repeat=D)), dtype=float)
    assert np.exp(mixture_log_likelihood_samples(images, w, P)).sum() == pytest.approx(1.0, abs=1e-13)
    assert np.exp(bernoulli_log_likelihood(images, P)).sum(axis=0) == pytest.approx(np.ones(3), abs=1e-13)


def test_complete_data_likelihood_marginalises_to_the_mixture_likelihood():
    _, X, w, P = problem(3, 3, 3, 4)
    total = sum(np.exp(complete_data_log_likelihood(X, np.eye(3)[list(c)], w, P))
                for c in itertools.product(range(3), repeat=3))
    assert total == pytest.approx(np.exp(mixture_log_likelihood(X, w, P)), rel=1e-12)


def test_one_hot_pieces_pick_their_component():
    _, X, w, P = problem(4, 5, 3, 6)
    Z = np.eye(3)[[0, 2, 1, 1, 0]]
    np.testing.assert_array_equal(latent_log_prior(Z, w), np.log(w)[[0, 2, 1, 1, 0]])
    np.testing.assert_array_equal(conditional_log_likelihood(X, Z, P),
                                  bernoulli_log_likelihood(X, P)[np.arange(5), [0, 2, 1, 1, 0]])
    # The complete-data log-likelihood is Q with the codes as (hard) responsibilities.
    assert complete_data_log_likelihood(X, Z, w, P) == pytest.approx(
        expected_complete_log_likelihood(X, Z, w, P), rel=1e-15)


def test_boundary_probabilities_give_exact_zeros_and_minus_infinity():
    X = np.array([[1.0, 0.0], [0.0, 0.0]])
    P = np.array([[0.0, 0.5], [0.5, 1.0]])  # component 1 never lights pixel 1; component 2 always lights pixel 2
    ll = bernoulli_log_likelihood(X, P)
    assert ll[0, 0] == -np.inf and ll[1, 1] == -np.inf
    assert ll[1, 0] == pytest.approx(np.log(0.5)) and ll[0, 1] == -np.inf
    with pytest.raises(ValueError, match="X row 0"):
        responsibilities(X, [0.5, 0.5], P)  # image 1 is impossible under both components
    np.testing.assert_array_equal(responsibilities(X[1:], [0.5, 0.5], P), [[1.0, 0.0]])


def test_q_plus_posterior_entropy_is_the_log_likelihood():
    _, X, w, P = problem(5, 40, 4, 50)
    R, logR = responsibilities(X, w, P), log_responsibilities(X, w, P)
    entropy = -np.sum(R * logR)
    assert expected_complete_log_likelihood(X, R, w, P) + entropy == pytest.approx(
        mixture_log_likelihood(X, w, P), rel=1e-13)


# ------------------------------------------------------------------ the M-step


@settings(max_examples=40)
@given(**sizes)
def test_em_log_likelihood_never_decreases(seed, N, K, D):
    _, X, w, P = problem(seed, N, K, D)
    before = mixture_log_likelihood(X, w, P)
    for _ in range(3):
        w, P = m_step(X, responsibilities(X, w, P))
        after = mixture_log_likelihood(X, w, P)
        assert after >= before - 1e-12 * max(1.0, abs(before))
        before = after


def test_m_step_maximises_q_in_p_and_pi():
    rng, X, _, _ = problem(6, 60, 4, 15)
    R = rng.dirichlet(np.ones(4), size=60)
    w, P = m_step(X, R)
    Q = lambda w_, P_: expected_complete_log_likelihood(X, R, w_, P_)  # noqa: E731
    best = Q(w, P)
    # Central differences: the directional derivative vanishes at the update.
    for _ in range(10):
        V = rng.normal(size=P.shape)
        assert abs(Q(w, P + 1e-6 * V) - Q(w, P - 1e-6 * V)) / 2e-6 < 1e-5
    for _ in range(200):
        P2 = np.clip(P + rng.normal(size=P.shape) * 10 ** rng.uniform(-4, -1), 1e-6, 1 - 1e-6)
        v = rng.normal(size=4)
        v -= v.mean()
        w2 = w + 0.5 * w.min() / np.abs(v).max() * 10 ** rng.uniform(-4, 0) * v
        assert Q(w, P2) < best and Q(w2, P) < best
    np.testing.assert_allclose(w, R.mean(axis=0), rtol=1e-15)


def test_map_update_maximises_q_plus_the_beta_log_prior():
    rng, X, w, _ = problem(7, 30, 3, 10)
    R = rng.dirichlet(np.ones(3), size=30)
    a, b = 2.0, 3.0
    _, P = m_step(X, R, prior=(a, b))
    objective = lambda P_: (expected_complete_log_likelihood(X, R, w, P_)  # noqa: E731
                            + np.sum((a - 1) * np.log(P_) + (b - 1) * np.log1p(-P_)))
    for _ in range(10):
        V = rng.normal(size=P.shape)
        assert abs(objective(P + 1e-6 * V) - objective(P - 1e-6 * V)) / 2e-6 < 1e-5
    # a = b = 1 (a flat prior) is the maximum-likelihood update.
    np.testing.assert_array_equal(m_step(X, R, prior=(1, 1))[1], m_step(X, R)[1])
    assert ((P > 0) & (P < 1)).all()


def test_m_step_of_an_empty_component_needs_a_prior():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    R = np.array([[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="resp .*component 1"):
        m_step(X, R)
    w, P = m_step(X, R, prior=(2, 2))
    np.testing.assert_array_equal(w, [1.0, 0.0])
    np.testing.assert_allclose(P[1], [0.5, 0.5])


@settings(max_examples=30)
@given(**sizes)
def test_m_step_is_the_update_from_the_sufficient_statistics(seed, N, K, D):
    rng, X, _, _ = problem(seed, N, K, D)
    R = rng.dirichlet(np.ones(K), size=N)
    for prior, counts in ((None, (0.0, 0.0)), ((2.0, 3.5), (1.0, 2.5))):
        want = m_step(X, R, prior=prior)
        got = m_step_from_statistics(R.sum(axis=0), R.T @ X, N, pseudo_counts=counts)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_weight_pseudo_count_is_the_dirichlet_map_update():
    nk, sums = np.array([3.0, 0.0, 1.0]), np.array([[2.0], [0.0], [1.0]])
    w, P = m_step_from_statistics(nk, sums, 4, pseudo_counts=(1.0, 1.0), weight_pseudo_count=0.5)
    np.testing.assert_allclose(w, [3.5 / 5.5, 0.5 / 5.5, 1.5 / 5.5], rtol=1e-15)
    np.testing.assert_allclose(P[:, 0], [3.0 / 5.0, 0.5, 2.0 / 3.0], rtol=1e-15)
    with pytest.raises(ValueError, match=r"^nk: component 1 has zero total responsibility"):
        m_step_from_statistics(nk, sums, 4)


# ------------------------------------------------------------------ bad input


GOOD_X, GOOD_W, GOOD_P = np.array([[0, 1, 1]]), np.array([0.4, 0.6]), np.full((2, 3), 0.5)


@pytest.mark.parametrize("call,name", [
    (lambda: bernoulli_log_likelihood([[0, 2, 1]], GOOD_P), "X"),
    (lambda: bernoulli_log_likelihood([0, 1, 1], GOOD_P), "X"),
    (lambda: bernoulli_log_likelihood(GOOD_X, np.full((2, 3), 1.5)), "P"),
    (lambda: bernoulli_log_likelihood(GOOD_X, np.full((2, 4), 0.5)), "P"),
    (lambda: bernoulli_log_likelihood([[0, np.nan, 1]], GOOD_P), "X"),
    (lambda: responsibilities(GOOD_X, [0.5, 0.6], GOOD_P), "weights"),
    (lambda: responsibilities(GOOD_X, [1.0], GOOD_P), "weights"),
    (lambda: responsibilities(GOOD_X, [1.2, -0.2], GOOD_P), "weights"),
    (lambda: responsibilities_product_form(GOOD_X, GOOD_W, np.full((2, 3), -0.1)), "P"),
    (lambda: mixture_log_likelihood("abc", GOOD_W, GOOD_P), "X"),
    (lambda: expected_complete_log_likelihood(GOOD_X, [[0.5, 0.6]], GOOD_W, GOOD_P), "resp"),
    (lambda: expected_complete_log_likelihood(GOOD_X, [[1.0]], GOOD_W, GOOD_P), "resp"),
    (lambda: m_step(GOOD_X, [[0.5, 0.5], [0.5, 0.5]]), "resp"),
    (lambda: m_step(GOOD_X, [[0.5, 0.5]], prior=(0.5, 2)), "prior"),
    (lambda: m_step(GOOD_X, [[0.5, 0.5]], prior=3), "prior"),
    (lambda: latent_log_prior([[0.5, 0.5]], GOOD_W), "Z"),
    (lambda: conditional_log_likelihood(GOOD_X, [[1, 1]], GOOD_P), "Z"),
    (lambda: complete_data_log_likelihood(GOOD_X, [[1, 0, 0]], GOOD_W, GOOD_P), "Z"),
])
def test_bad_input_is_a_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_many_images_give_the_same_log_likelihoods_in_blocks():
    # More rows than one block (8192): the blocked evaluation is the same arithmetic, row by row.
    rng, X, _, P = problem(8, 9000, 3, 5)
    P[0, 0] = 0.0  # with a boundary probability too
    got = bernoulli_log_likelihood(X, P)
    np.testing.assert_array_equal(got[:100], bernoulli_log_likelihood(X[:100], P))
    np.testing.assert_array_equal(got[-100:], bernoulli_log_likelihood(X[-100:], P))
    assert np.isneginf(got[:, 0]).sum() == int(X[:, 0].sum())
