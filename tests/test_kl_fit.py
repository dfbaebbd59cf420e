"""Question 1b: fitting q = N(m, s^2) to a mixture by forward and by reverse KL.

The forward optimum is moment matching (derived in SymPy, checked against an
independent law-of-total-variance form, and reached numerically by both the
scipy route and the torch route); the reverse optimum is mode-seeking.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from genverify import registry
from genverify.cli import main
from genverify.derivations import kl_fit as dkf
from genverify.registry import get_experiment
from genverify.numerics import kl_gaussian
from genverify.numerics.kl_fit import (
    GaussianMixture1D,
    KLGaussianFit,
    bimodal,
    fit_forward_kl,
    fit_reverse_kl,
    forward_kl,
    mixture_moments,
    normal_expectation,
    reverse_kl,
    reverse_kl_grad,
)
from genverify.experiments.kl_fits import kl_fit_report
from genverify.results.kl_fit import derived_reverse_gradient, hand_forward_fit


@st.composite
def mixtures(draw, max_components: int = 3) -> GaussianMixture1D:
    """Mixtures with 1-3 components: weights from a simplex, means in [-6, 6], sds in [0.2, 3]."""
    k = draw(st.integers(1, max_components))
    raw = [draw(st.floats(0.05, 1.0)) for _ in range(k)]
    weights = np.array(raw) / sum(raw)
    means = [draw(st.floats(-6, 6)) for _ in range(k)]
    sds = [draw(st.floats(0.2, 3.0)) for _ in range(k)]
    return GaussianMixture1D(weights, means, sds)


def _moment_error(m: float, s: float, target: GaussianMixture1D) -> float:
    """Distance of (m, s) from the target's moments, in units of the target's sd."""
    mean, var = (float(v) for v in mixture_moments(target.weights, target.means, target.sds))
    return max(abs(m - mean), abs(s - math.sqrt(var))) / math.sqrt(var)


# ------------------------------------------------------------------ derivation


def test_forward_kl_stationary_point_is_moment_matching_for_any_target():
    derived = dkf.derive_forward_fit_general().result
    assert sp.simplify(derived[0] - dkf.E1) == 0
    assert sp.simplify(derived[1] - (dkf.E2 - dkf.E1**2)) == 0


def test_forward_fit_of_a_mixture_equals_the_law_of_total_variance():
    derived, hand = registry.get("kl-forward-fit").expr, hand_forward_fit()
    assert derived.shape == hand.shape == (2, 1)
    for d, h in zip(derived, hand):
        assert sp.expand(d - h) == 0


def test_reverse_kl_derivation_puts_separated_optima_on_the_components():
    # The separated-mode steps: (m, s, KL) = (mu_k, sigma_k, -log w_k), and the bound on the rest vanishes.
    steps = [s.expr for s in registry.get("kl-reverse-fit").derivation().steps]
    wk, mk, sk = sp.Symbol("w_k", positive=True), sp.Symbol("mu_k", real=True), sp.Symbol("sigma_k", positive=True)
    optimum = [e for e in steps if isinstance(e, sp.Eq) and isinstance(e.rhs, sp.MatrixBase) and e.rhs.shape == (3, 1)]
    assert len(optimum) == 1 and list(optimum[0].rhs) == [mk, sk, -sp.log(wk)]
    assert steps[-1].rhs == 0 and isinstance(steps[-1].lhs, sp.Limit)


# ------------------------------------------------------------------ quadrature


@pytest.mark.parametrize("m,s", [(0.6, 3.1), (0.0, 1.5), (3.0, 1.2), (-3.0, 0.8), (0.6, 8.0), (10.0, 0.3)])
def test_quadrature_matches_adaptive_quad_even_for_broad_q(m, s):
    # A broad q over a well-separated mixture is where Gauss-Hermite fails (errors ~1e-2): the
    # composite rule must still agree with scipy's adaptive quad.
    p = bimodal()

    def integrand_rev(x):
        q = math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        return q * (math.log(q) - float(p.logpdf(x))) if q > 0 else 0.0

    def integrand_fwd(x):
        lp = float(p.logpdf(x))
        return math.exp(lp) * (lp + 0.5 * math.log(2 * math.pi) + math.log(s) + 0.5 * ((x - m) / s) ** 2)

    pts = sorted({m, -3.0, 0.0, 3.0})
    rev_ref = integrate.quad(integrand_rev, m - 30 * s, m + 30 * s, points=[v for v in pts if abs(v - m) < 30 * s],
                             epsabs=1e-13, epsrel=1e-12, limit=500)[0]
    fwd_ref = integrate.quad(integrand_fwd, -20, 25, points=[-3.0, 0.0, 3.0], epsabs=1e-13, epsrel=1e-12, limit=500)[0]
    assert float(reverse_kl(p, m, s)) == pytest.approx(rev_ref, rel=1e-8, abs=1e-9)
    assert float(forward_kl(p, m, s)) == pytest.approx(fwd_ref, rel=1e-8, abs=1e-9)


@given(st.floats(-5, 5), st.floats(0.1, 5), st.floats(-5, 5), st.floats(0.1, 5))
@settings(max_examples=30)
def test_both_divergences_equal_the_gaussian_closed_form_for_a_one_component_target(mu, sigma, m, s):
    p = GaussianMixture1D([1.0], [mu], [sigma])
    assert float(forward_kl(p, m, s)) == pytest.approx(float(kl_gaussian(mu, sigma, m, s)), rel=1e-9, abs=1e-11)
    assert float(reverse_kl(p, m, s)) == pytest.approx(float(kl_gaussian(m, s, mu, sigma)), rel=1e-9, abs=1e-11)


def test_normal_expectation_integrates_polynomials_exactly():
    assert float(normal_expectation(lambda x: x**4, 1.0, 2.0)) == pytest.approx(1 + 6 * 4 + 3 * 16, rel=1e-13)


# ------------------------------------------------------------------ forward fit: both routes


@given(mixtures())
@settings(max_examples=25)
def test_forward_optimum_is_the_targets_moments_by_the_scipy_route(target):
    fit = fit_forward_kl(target)
    assert fit.converged_
    assert _moment_error(fit.m_, fit.s_, target) <= 1e-6


@given(mixtures())
@settings(max_examples=15)
def test_forward_optimum_is_the_targets_moments_by_the_torch_route(target):
    from genverify.models.kl_fit_torch import fit_forward_kl_torch

    fit = fit_forward_kl_torch(target)
    assert fit.converged
    assert _moment_error(fit.m, fit.s, target) <= 1e-6


def test_forward_fit_covers_both_modes_of_the_default_target():
    p = bimodal()
    fit = fit_forward_kl(p)
    # Its mean lies between the modes and one sd reaches both of them: mass-covering.
    assert p.means[0] < fit.m_ < p.means[1]
    assert fit.m_ - fit.s_ < p.means[0] + p.sds[0] and fit.m_ + fit.s_ > p.means[1] - p.sds[1]


# ------------------------------------------------------------------ reverse fit


@given(mixtures())
@settings(max_examples=20)
def test_reverse_optimum_has_no_larger_reverse_kl_than_moment_matching(target):
    fit = fit_reverse_kl(target, n_init=4)
    rev_mm = float(reverse_kl(target, target.mean(), target.sd()))
    assert fit.reverse_kl_ <= rev_mm + 1e-10
    # ... and, symmetrically, no smaller forward KL than the forward optimum.
    assert fit.forward_kl_ >= float(forward_kl(target, target.mean(), target.sd())) - 1e-10


@given(mixtures(max_components=2))
@settings(max_examples=8)
def test_reverse_optima_agree_between_the_scipy_and_torch_routes(target):
    from genverify.models.kl_fit_torch import fit_reverse_kl_torch

    scale = target.sd()
    fit = fit_reverse_kl(target, n_init=3)
    # Each scipy optimum is found again by the torch route started a little away from it.
    # (From the same far start the two optimisers may take different first steps into
    # different basins, so that is not compared.)
    for o in fit.optima_:
        (t,) = fit_reverse_kl_torch(target, [(o.m + 0.05 * o.s, 1.1 * o.s)])
        assert abs(t.m - o.m) <= 1e-5 * scale and abs(t.s - o.s) <= 1e-5 * scale
        assert t.reverse_kl == pytest.approx(o.reverse_kl, abs=1e-8)
    # Each torch optimum is a stationary point of the scipy route's quadrature.
    for t in fit_reverse_kl_torch(target, [r.start for r in fit.runs_]):
        assert t.converged
        assert max(abs(float(g)) for g in reverse_kl_grad(target, t.m, t.s)) <= 1e-6 / scale


def test_reverse_fit_finds_one_local_optimum_per_mode_and_the_best_under_covers():
    p = bimodal()
    fit = fit_reverse_kl(p)
    assert len(fit.optima_) == 2
    for o, k in zip(sorted(fit.optima_, key=lambda o: o.m), range(2)):
        assert abs(o.m - p.means[k]) < 0.1 * p.sds[k]
        assert abs(o.s / p.sds[k] - 1) < 0.05
        # Reverse KL of the optimum on mode k is close to -log w_k (the derivation's separated limit).
        assert o.reverse_kl == pytest.approx(-math.log(p.weights[k]), abs=0.02)
    assert fit.m_ == pytest.approx(p.means[1], abs=0.1)  # the heavier mode wins
    assert fit.s_ < p.sd()


def test_derived_gradient_vanishes_at_the_numeric_optima_and_matches_the_score_form():
    p = bimodal()
    for o in fit_reverse_kl(p).optima_:
        assert np.max(np.abs(derived_reverse_gradient(p, o.m, o.s))) < 1e-7
    for m, s in [(0.0, 2.0), (-1.0, 0.7), (4.0, 3.0)]:
        np.testing.assert_allclose(derived_reverse_gradient(p, m, s), [float(v) for v in reverse_kl_grad(p, m, s)],
                                   rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("separation,expected", [(0.0, 1), (1.0, 1), (8.0, 2)])
def test_reverse_kl_has_one_local_optimum_per_mode(separation, expected):
    assert len(fit_reverse_kl(bimodal(separation), n_init=6).optima_) == expected


def test_an_explicit_start_is_used_and_reported():
    fit = fit_reverse_kl(bimodal(), starts=[(-4.0, 1.0)])
    assert fit.runs_[0].start == (-4.0, 1.0)
    assert fit.m_ == pytest.approx(-3.0, abs=0.1)  # started near the left mode, it stays there


# ------------------------------------------------------------------ sampling


def test_mixture_samples_have_the_closed_form_moments():
    # Seeded; 5 SE: a two-sided false-alarm rate of 5.7e-7 per comparison.
    p = GaussianMixture1D([0.3, 0.7], [-2.0, 1.5], [0.5, 1.0])
    n = 400_000
    x = p.sample(n, np.random.default_rng(11))
    mean, var = (float(v) for v in mixture_moments(p.weights, p.means, p.sds))
    assert abs(x.mean() - mean) <= 5 * x.std() / math.sqrt(n)
    c = x - x.mean()
    assert abs(c.var() - var) <= 5 * math.sqrt((np.mean(c**4) - c.var() ** 2) / n)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("kwargs,name", [
    (dict(weights=[0.5, 0.6], means=[0, 1], sds=[1, 1]), "weights"),
    (dict(weights=[1.2, -0.2], means=[0, 1], sds=[1, 1]), "weights"),
    (dict(weights=[], means=[], sds=[]), "weights"),
    (dict(weights=[0.5, 0.5], means=[0, 1], sds=[1, 0]), "sds"),
    (dict(weights=[0.5, 0.5], means=[0, 1], sds=[1, -2]), "sds"),
    (dict(weights=[0.5, 0.5], means=[0, 1, 2], sds=[1, 1]), "means"),
    (dict(weights=[0.5, 0.5], means=[0, 1], sds=[1]), "sds"),
    (dict(weights=[0.5, 0.5], means=[0, float("nan")], sds=[1, 1]), "means"),
    (dict(weights=0.5, means=0, sds=1), "weights"),
])
def test_bad_mixture_parameters_raise_value_error_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GaussianMixture1D(**kwargs)
    with pytest.raises(ValueError, match=name):
        mixture_moments(**kwargs)


def test_the_smallest_valid_settings_are_accepted_and_fit():
    # The limits are inclusive: one start and one iteration are valid (a fit that stops early says so).
    one = KLGaussianFit("reverse", n_init=1, max_iter=1).fit(bimodal())
    assert len(one.runs_) == 1 and np.isfinite(one.kl_) and one.n_iter_ <= 1
    with pytest.raises(ValueError, match="max_iter"):
        KLGaussianFit("reverse", max_iter=0)


def test_bad_fit_settings_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="divergence"):
        KLGaussianFit("sideways")
    with pytest.raises(ValueError, match="n_init"):
        KLGaussianFit("reverse", n_init=0)
    with pytest.raises(ValueError, match="starts"):
        KLGaussianFit("reverse", starts=[(0.0, -1.0)])
    with pytest.raises(ValueError, match="starts"):
        KLGaussianFit("reverse", starts=[])
    with pytest.raises(ValueError, match="s must be > 0"):
        reverse_kl(bimodal(), 0.0, 0.0)
    with pytest.raises(ValueError, match="separation"):
        bimodal(-1.0)


# ------------------------------------------------------------------ figures and the command line


def test_report_writes_both_figures_and_a_table_of_fits(tmp_path):
    from genverify.numerics.kl_fit import SquaredLatentModel

    out = kl_fit_report(bimodal(), tmp_path, separations=np.linspace(0, 8, 4), n_init=4,
                        model=SquaredLatentModel(3.0, 0.5), show_progress=False)
    for stem in out.figures:
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 0 and (tmp_path / f"{stem}.png").stat().st_size > 0
    assert set(out.figures) == {"kl_fits_1b", "elbo_bimodal_1c"}
    fits = out.tables["kl_fits"]
    assert fits.rows[0][0].startswith("forward") and fits.rows[1][0].startswith("reverse")
    assert out.numbers["reverse_local_optima"] == 2
    assert out.numbers["forward_s"] == pytest.approx(bimodal().sd(), rel=1e-6)


def test_kl_fits_experiment_is_registered_for_question_1b():
    exp = get_experiment("kl-fits")
    assert exp.question == "1b"


def test_kl_demo_prints_the_fits_and_writes_the_figures(tmp_path, capsys):
    code = main(["kl-demo", "--out", str(tmp_path), "--separation", "5", "--sweep-points", "3", "--starts", "4",
                 "--no-elbo", "-q", "--json", str(tmp_path / "fits.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "moment matching" in out and "best local optimum" in out and "KL(q||p)" in out
    assert (tmp_path / "kl_fits_1b.png").exists() and (tmp_path / "kl_fits_1b.pdf").exists()
    assert (tmp_path / "fits.json").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--weights", "0.5,0.6"], "--weights"),
    (["--sds", "1,0"], "--sds"),
    (["--weights", "a,b"], "--weights"),
    (["--separation", "3", "--means", "1,2"], "--separation"),
    (["--separation", "-1"], "--separation"),
    (["--starts", "0"], "--starts"),
])
def test_kl_demo_bad_input_exits_2_naming_the_option(argv, needle, tmp_path, capsys):
    assert main(["kl-demo", "--out", str(tmp_path), "-q", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
