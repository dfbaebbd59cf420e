"""Question 1c: the ELBO, its gap KL(q || p(z|x)), and why maximising it is reverse-KL fitting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from genverify import registry
from genverify.checks import lambdify_result
from genverify.numerics import kl_gaussian, kl_vae
from genverify.numerics.kl_fit import (
    SquaredLatentModel,
    conjugate_log_evidence,
    conjugate_posterior,
    elbo_conjugate,
    elbo_gap,
    fit_reverse_kl,
    maximize_elbo,
    reverse_kl,
)

dims = st.integers(1, 4)
reals = st.floats(-4, 4)
scales = st.floats(0.05, 5)


@st.composite
def models_and_q(draw):
    """A conjugate model (a, b, sigma_x), an observation x and an encoder q = N(mu, sigma^2), D dims."""
    d = draw(dims)
    vec = lambda s: np.array([draw(s) for _ in range(d)])  # noqa: E731
    return dict(x=vec(reals), mu=vec(reals), sigma=vec(scales), a=draw(st.floats(-3, 3)), b=draw(reals),
                sigma_x=draw(st.floats(0.1, 5)))


# ------------------------------------------------------------------ the bound


@given(models_and_q())
@settings(max_examples=60)
def test_elbo_never_exceeds_log_evidence(v):
    elbo = float(elbo_conjugate(**v))
    log_px = float(conjugate_log_evidence(v["x"], v["a"], v["b"], v["sigma_x"]))
    assert elbo <= log_px + 1e-12 * (1 + abs(log_px))


@given(models_and_q())
@settings(max_examples=60)
def test_elbo_equals_log_evidence_at_the_exact_posterior(v):
    mean, sd = conjugate_posterior(v["x"], v["a"], v["b"], v["sigma_x"])
    log_px = float(conjugate_log_evidence(v["x"], v["a"], v["b"], v["sigma_x"]))
    elbo = float(elbo_conjugate(v["x"], mean, sd, v["a"], v["b"], v["sigma_x"]))
    assert elbo == pytest.approx(log_px, rel=1e-13, abs=1e-12)


@given(models_and_q())
@settings(max_examples=60)
def test_gap_is_kl_from_q_to_the_posterior_summed_over_dims(v):
    mean, sd = conjugate_posterior(v["x"], v["a"], v["b"], v["sigma_x"])
    kl = float(np.sum(kl_gaussian(v["mu"], v["sigma"], mean, sd)))
    log_px = float(conjugate_log_evidence(v["x"], v["a"], v["b"], v["sigma_x"]))
    assert float(elbo_gap(**v)) == pytest.approx(kl, rel=1e-9, abs=1e-11 * (1 + abs(log_px)))


@given(models_and_q())
@settings(max_examples=40)
def test_elbo_kl_term_is_kl_vae_summed_over_dimensions(v):
    x, mu, sigma, a, b, sx = v["x"], v["mu"], v["sigma"], v["a"], v["b"], v["sigma_x"]
    recon = np.sum(-0.5 * np.log(2 * np.pi * sx**2) - ((x - a * mu - b) ** 2 + (a * sigma) ** 2) / (2 * sx**2))
    assert recon - float(elbo_conjugate(**v)) == pytest.approx(float(np.sum(kl_vae(mu, sigma))), rel=1e-10,
                                                                   abs=1e-10 * (1 + abs(recon)))


def test_derived_gap_equals_the_independent_hand_form_and_the_numerics():
    result = registry.get("elbo-gap")
    assert sp.simplify(result.expr - result.hand()) == 0
    vals = result.sample_params(np.random.default_rng(3), 500)
    want = lambdify_result(result)(vals)
    mean, sd = conjugate_posterior(vals["x"], vals["a"], vals["b"], vals["sigma_x"])
    np.testing.assert_allclose(kl_gaussian(vals["mu"], vals["sigma"], mean, sd), want, rtol=1e-9, atol=1e-12)


def test_log_evidence_matches_quadrature_of_the_joint():
    for x, a, b, sx in [(0.3, 1.0, 0.0, 1.0), (-2.0, 2.5, 1.0, 0.3), (4.0, -0.5, -1.0, 2.0)]:
        joint = lambda z: (math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
                           * math.exp(-0.5 * ((x - a * z - b) / sx) ** 2) / (sx * math.sqrt(2 * math.pi)))
        val, _ = integrate.quad(joint, -40, 40, points=[0.0], epsabs=0, epsrel=1e-12, limit=200)
        assert float(conjugate_log_evidence(x, a, b, sx)) == pytest.approx(math.log(val), rel=1e-10)


def test_monte_carlo_elbo_matches_the_closed_form():
    # Seeded; 5 SE: a two-sided false-alarm rate of 5.7e-7.
    rng = np.random.default_rng(21)
    x, mu, sigma = np.array([1.0, -0.5, 2.0]), np.array([0.3, 0.0, -1.0]), np.array([0.7, 1.5, 0.4])
    a, b, sx = 1.3, 0.2, 0.8
    n = 200_000
    z = mu + sigma * rng.standard_normal((n, 3))
    log_joint = (-0.5 * np.log(2 * np.pi) - 0.5 * z**2
                 - 0.5 * np.log(2 * np.pi * sx**2) - (x - a * z - b) ** 2 / (2 * sx**2))
    log_q = -0.5 * np.log(2 * np.pi * sigma**2) - (z - mu) ** 2 / (2 * sigma**2)
    terms = np.sum(log_joint - log_q, axis=1)
    se = terms.std(ddof=1) / math.sqrt(n)
    assert abs(terms.mean() - float(elbo_conjugate(x, mu, sigma, a, b, sx))) <= 5 * se


# ------------------------------------------------------------------ torch


@given(models_and_q())
@settings(max_examples=30)
def test_torch_elbo_equals_the_numpy_elbo(v):
    from genverify.models.kl_fit_torch import elbo_conjugate_torch

    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    got = float(elbo_conjugate_torch(t(v["x"]), t(v["mu"]), t(np.log(v["sigma"] ** 2)), v["a"], v["b"], v["sigma_x"]))
    want = float(elbo_conjugate(**v))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_the_exact_posterior_is_a_stationary_point_of_the_torch_elbo():
    from genverify.models.kl_fit_torch import elbo_conjugate_torch

    x, a, b, sx = np.array([1.5, -0.7]), 2.0, 0.5, 0.6
    mean, sd = conjugate_posterior(x, a, b, sx)
    mu = torch.tensor(mean, dtype=torch.float64, requires_grad=True)
    log_var = torch.tensor(np.log(sd**2), dtype=torch.float64, requires_grad=True)
    elbo_conjugate_torch(torch.tensor(x), mu, log_var, a, b, sx).backward()
    assert float(mu.grad.abs().max()) < 1e-12 and float(log_var.grad.abs().max()) < 1e-12


# ------------------------------------------------------------------ a bimodal posterior


@pytest.fixture(scope="module")
def bimodal_model():
    return SquaredLatentModel(x=3.0, sigma_x=0.5)


def test_squared_latent_posterior_is_normalised_and_bimodal(bimodal_model):
    m = bimodal_model
    total, _ = integrate.quad(lambda z: float(m.pdf(z)), -6, 6, points=[-1.7, 0.0, 1.7], limit=200)
    assert total == pytest.approx(1.0, abs=1e-10)
    modes = m.modes()
    assert float(m.pdf(modes[1])) > 100 * float(m.pdf(0.0))  # a deep valley between the modes


def test_elbo_plus_kl_to_the_posterior_is_log_evidence_for_any_gaussian_q(bimodal_model):
    m = bimodal_model
    rng = np.random.default_rng(4)
    for mu, s in zip(rng.uniform(-2.5, 2.5, 10), np.exp(rng.uniform(np.log(0.05), np.log(3), 10))):
        assert float(m.elbo(mu, s)) + float(reverse_kl(m, mu, s)) == pytest.approx(m.log_evidence(), abs=1e-9)


def test_maximising_the_elbo_is_reverse_kl_fitting_and_locks_onto_one_mode(bimodal_model):
    m = bimodal_model
    elbo_fits = maximize_elbo(m)
    rev = fit_reverse_kl(m)
    assert len(rev.optima_) == 2  # one per mode: the ±z symmetry
    for f in elbo_fits:
        match = min(rev.optima_, key=lambda o: abs(o.m - f.m))
        assert f.m == pytest.approx(match.m, abs=1e-5) and f.s == pytest.approx(match.s, abs=1e-5)
    best = max(elbo_fits, key=lambda f: float(m.elbo(f.m, f.s)))
    assert abs(abs(best.m) - float(np.max(m.modes()))) < 0.1  # on a mode ...
    assert best.s < 0.25 * math.sqrt(m.var())  # ... and far narrower than the posterior
    # The moment-matched (forward-KL) Gaussian, which covers both modes, has a much lower ELBO.
    assert float(m.elbo(m.mean(), math.sqrt(m.var()))) < float(m.elbo(best.m, best.s)) - 1.0


# ------------------------------------------------------------------ bad input


def test_bad_model_parameters_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="sigma_x"):
        elbo_conjugate(1.0, 0.0, 1.0, sigma_x=0.0)
    with pytest.raises(ValueError, match="sigma"):
        elbo_conjugate(1.0, 0.0, -1.0)
    with pytest.raises(ValueError, match="x"):
        conjugate_log_evidence(float("nan"))
    with pytest.raises(ValueError, match="sigma_x"):
        conjugate_posterior(1.0, sigma_x=-1.0)
    with pytest.raises(ValueError, match="sigma_x"):
        SquaredLatentModel(3.0, sigma_x=0.0)
