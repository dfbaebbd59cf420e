"""The steps a derivation shows are right, not only its result (found untested by ``make mutation``).

A reader follows the steps: the definition with its densities, the integrals
with their values, the counts in the text. Each test evaluates what a step
shows, independently of how the derivation computed it.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp
from scipy import integrate

from genverify import registry
from genverify.derivations import em
from genverify.derivations import kl as dk
from genverify.derivations import kl_fit as dkf


def _steps(rid):
    return registry.get(rid).derivation().steps


def _eqs(rid):
    return [s.expr for s in _steps(rid) if isinstance(s.expr, sp.Eq)]


def _definition_value(rid, values, support):
    """The first step's KL integral with the densities the second step shows, by scipy quadrature over ``support``
    (where the first density lives: beyond it the integrand is 0, or 0 log 0)."""
    eqs = _eqs(rid)
    integral = eqs[0].rhs
    dens = eqs[1]
    lhs, rhs = (list(dens.lhs), list(dens.rhs)) if isinstance(dens.lhs, sp.MatrixBase) else ([dens.lhs], [dens.rhs])
    if len(lhs) == 1:  # the uniforms show p and q in two steps
        lhs.append(eqs[2].lhs)
        rhs.append(eqs[2].rhs)
    body = sp.expand_log(integral.function.subs(dict(zip(lhs, rhs)), simultaneous=True).subs(values), force=True)
    return integrate.quad(lambda t: float(body.subs(dk.x, t)), *support, limit=200)[0]


@pytest.mark.parametrize("rid,values,support", [
    ("kl-gaussian", {dk.mu1: 0.3, dk.sigma1: 0.7, dk.mu2: -1.1, dk.sigma2: 1.9}, (0.3 - 12 * 0.7, 0.3 + 12 * 0.7)),
    ("kl-vae", {dk.mu: 0.8, dk.sigma: 1.6}, (0.8 - 12 * 1.6, 0.8 + 12 * 1.6)),
    ("kl-uniform-forward", {}, (0.0, 1.0)),
])
def test_the_definition_step_with_its_densities_integrates_to_the_result(rid, values, support):
    result = float(registry.get(rid).expr.subs(values))
    assert _definition_value(rid, values, support) == pytest.approx(result, rel=1e-9)


@pytest.mark.parametrize("rid,values", [("kl-gaussian", {dk.mu1: 0.3, dk.sigma1: 0.7}), ("kl-vae", {dk.mu: 0.8, dk.sigma: 1.6})])
def test_each_moment_step_shows_its_integral_and_its_value(rid, values):
    moments = [e for e in _eqs(rid) if isinstance(e.lhs, sp.Integral)]
    assert len(moments) == 3  # k = 0, 1, 2: what the quadratic log-ratio needs
    for e in moments:
        f = sp.lambdify(dk.x, e.lhs.function.subs(values), "numpy")
        val = integrate.quad(lambda t: float(f(t)), -40, 40, limit=200)[0]
        assert val == pytest.approx(float(e.rhs.subs(values)), rel=1e-10, abs=1e-12)


def test_the_uniform_steps_show_densities_zero_off_their_supports_and_the_limit_they_take():
    p, q = (e.rhs for e in _eqs("kl-uniform")[1:3])
    assert p.subs({dk.x: 5, dk.a: 0, dk.b: 1}) == 0 and p.subs({dk.x: 0.5, dk.a: 0, dk.b: 2}) == sp.Rational(1, 2)
    assert q.subs({dk.x: -5, dk.c: 0, dk.d: 1}) == 0
    limits = [e for e in _eqs("kl-uniform-reverse") if isinstance(e.lhs, sp.Limit)]
    assert len(limits) == 1 and limits[0].lhs.doit() == limits[0].rhs == sp.oo
    assert limits[0].lhs.args[1:3] == (limits[0].lhs.args[1], 0)  # q -> 0 (from above)


def test_the_uniform_steps_show_the_length_of_the_uncovered_set_and_the_counted_orders():
    length = next(e.rhs for e in _eqs("kl-uniform") if str(e.lhs).startswith("|[a,b]"))
    # [0, 3] minus [1, 2] is [0, 1) and (2, 3]: length 2; [0, 1] inside [-1, 2]: length 0.
    assert length.subs({dk.a: 0, dk.b: 3, dk.c: 1, dk.d: 2}) == 2
    assert length.subs({dk.a: 0, dk.b: 1, dk.c: -1, dk.d: 2}) == 0
    text = " ".join(s.description for s in _steps("kl-uniform"))
    assert "it is 0 in 4 of the 13 orders" in text
    forward_rest = next(e for e in _eqs("kl-uniform-forward") if isinstance(e.rhs, sp.Integral) and e.rhs.limits[0][1] == 0)
    assert forward_rest.rhs.limits[0][1:] == (0, 1)  # the integral left over supp P = [0, 1]


def test_the_finiteness_condition_is_shown_reduced():
    result = registry.get("kl-uniform").expr
    assert result.args[0][1] == sp.And(dk.a >= dk.c, dk.b <= dk.d)


def test_the_forward_fit_shows_the_target_mixture_normalised():
    target = next(e.rhs for e in _eqs("kl-forward-fit") if e.lhs == dkf.p(dkf.x))
    vals = {dkf.w: 0.3, dkf.mu1: -1.0, dkf.sigma1: 0.5, dkf.mu2: 2.0, dkf.sigma2: 1.5}
    f = sp.lambdify(dkf.x, target.subs(vals), "numpy")
    assert integrate.quad(lambda t: float(f(t)), -30, 30, limit=200)[0] == pytest.approx(1.0, abs=1e-12)
    assert float(target.subs(vals).subs(dkf.x, 2.0)) == pytest.approx(
        0.3 * math.exp(-0.5 * 36) / (0.5 * math.sqrt(2 * math.pi)) + 0.7 / (1.5 * math.sqrt(2 * math.pi)), rel=1e-12)


def test_the_mode_locking_lemma_is_the_bound_it_is_used_for():
    # 0 <= log(1 + r) <= sqrt(r): with u = sqrt(r), the step differentiates u - log(1 + u^2).
    lemma = next(e for e in _eqs("kl-reverse-fit") if isinstance(e.lhs, sp.Derivative)
                 and e.lhs.variables[0].name == "u")
    u = lemma.lhs.variables[0]
    assert sp.simplify(lemma.lhs.expr - (u - sp.log(1 + u**2))) == 0
    assert sp.simplify(lemma.rhs - (u - 1) ** 2 / (u**2 + 1)) == 0


def test_in_range_leaves_a_condition_it_cannot_decide():
    # k is a component index (1 <= k <= K); whether k < N holds is unknown: the Piecewise stays.
    pw = sp.Piecewise((em.x[em.i, em.d], em.k < em.N), (0, True))
    assert em.in_range(pw) == pw
    assert em.in_range(sp.Piecewise((1, em.k <= em.K), (0, True))) == 1


# ------------------------------------------------------------------ the steps of 1b and 1c

ALL = registry.all_results()


@pytest.mark.parametrize("result", ALL, ids=lambda r: r.id)
def test_no_step_shows_a_bare_truth_value(result):
    # An equation SymPy can decide shows as True or False (a matrix equation of mismatched shapes is False).
    assert not any(s.expr in (sp.true, sp.false) or s.expr is True or s.expr is False
                   for s in result.derivation().steps)


def test_the_kl_definitions_show_the_textbook_integrands():
    p, q = dkf.p, sp.Function("q")
    x = dkf.x
    forward, reverse = _eqs("kl-forward-fit")[0].rhs, _eqs("kl-reverse-fit")[0].rhs
    assert forward.function == p(x) * sp.log(p(x) / q(x)) and reverse.function == q(x) * sp.log(q(x) / p(x))
    assert forward.limits == reverse.limits == ((x, -sp.oo, sp.oo),)
    neg_entropy = _eqs("kl-reverse-fit")[2]
    assert neg_entropy.lhs.function == q(x) * sp.log(q(x))
    assert sp.simplify(neg_entropy.rhs + sp.log(2 * sp.pi * sp.E * dkf.s**2) / 2) == 0


def test_the_forward_fit_shows_linearity_and_the_mixtures_moments():
    eqs = _eqs("kl-forward-fit")
    linear, objective = eqs[3].rhs, eqs[4].rhs
    moments = {sp.Integral(dkf.x**k * dkf.p(dkf.x), (dkf.x, -sp.oo, sp.oo)): v
               for k, v in ((0, 1), (1, dkf.E1), (2, dkf.E2))}
    moments[sp.Integral(dkf.p(dkf.x), (dkf.x, -sp.oo, sp.oo))] = 1
    assert sp.simplify(linear.xreplace(moments) - objective) == 0
    e1 = next(e.rhs for e in eqs if e.lhs == dkf.E1)
    e2 = next(e.rhs for e in eqs if e.lhs == dkf.E2)
    w, m1, m2, s1, s2 = dkf.w, dkf.mu1, dkf.mu2, dkf.sigma1, dkf.sigma2
    assert sp.simplify(e1 - (w * m1 + (1 - w) * m2)) == 0
    assert sp.simplify(e2 - (w * (m1**2 + s1**2) + (1 - w) * (m2**2 + s2**2))) == 0


def test_the_mode_locking_bound_is_the_overlap_of_the_two_components():
    bound = next(e.rhs for e in _eqs("kl-reverse-fit") if e.lhs == sp.Symbol("E_q[sqrt(r)]"))
    wk, sk, sj, delta = dkf.W_K, dkf.SIGMA_K, dkf.SIGMA_J, dkf.SEPARATION
    hand = (sp.sqrt((1 - wk) / wk) * sp.sqrt(2 * sk * sj / (sk**2 + sj**2))
            * sp.exp(-delta**2 / (4 * (sk**2 + sj**2))))
    vals = {wk: 0.3, sk: 0.8, sj: 1.3, delta: 2.5, dkf.MU_K: -0.7}
    assert float(bound.subs(vals)) == pytest.approx(float(hand.subs(vals)), rel=1e-13)


def test_the_elbo_steps_show_the_model_and_the_gaussian_integral():
    eqs = _eqs("elbo-gap")
    z, x, a, b, sx = dkf.z, dkf.xo, dkf.a, dkf.b, dkf.sigma_x
    joint = sp.exp(-z**2 / 2) / sp.sqrt(2 * sp.pi) * sp.exp(-(x - a * z - b) ** 2 / (2 * sx**2)) / (sx * sp.sqrt(2 * sp.pi))
    assert sp.simplify(eqs[0].rhs - joint) == 0
    A, B = sp.Symbol("A", positive=True), sp.Symbol("B", real=True)
    assert eqs[1].lhs.function == sp.exp(-A * z**2 + B * z)
    assert sp.simplify(eqs[1].rhs - sp.sqrt(sp.pi / A) * sp.exp(B**2 / (4 * A))) == 0
    gap_step = next(s for s in _steps("elbo-gap") if s.description.startswith("Gap log p(x) - ELBO(q)"))
    assert gap_step.expr.lhs == dkf.LOG_EVIDENCE - dkf.ELBO


def _step(rid, start):
    return next(s.expr for s in _steps(rid) if s.description.startswith(start))


@pytest.mark.parametrize("rid", ["square-distance-cdf", "square-distance-pdf"])
@pytest.mark.parametrize("radius", [1.05, 1.2, 1.4])
def test_the_clipped_area_step_is_the_area_by_quadrature(rid, radius):
    # 1 < r < sqrt(2): both sides of the shown step, the integrals by scipy, the closed form by SymPy.
    eq = _step(rid, "Clip the height at 1")
    r = next(iter(eq.rhs.free_symbols))
    cross = math.sqrt(radius**2 - 1)
    area = 4 * (cross + integrate.quad(lambda x: math.sqrt(radius**2 - x**2), cross, 1)[0])
    assert float(eq.lhs.subs(r, radius).evalf(30)) == pytest.approx(area, rel=1e-12)
    assert float(eq.rhs.subs(r, radius)) == pytest.approx(area, rel=1e-12)


def test_the_integral_over_the_first_support_is_the_kl_where_it_is_finite():
    # 1a's finite direction, the step "that set has length 0": the KL integral restricted to supp P,
    # with the densities the derivation shows, by scipy quadrature.
    rid = "kl-uniform-forward"
    integral = _step(rid, "That set has length 0").rhs
    dens = {e.lhs.func: sp.Lambda(e.lhs.args[0], e.rhs) for e in _eqs(rid)[1:3]}
    body = sp.lambdify(integral.variables[0], integral.function.replace(
        lambda e: e.func in dens, lambda e: dens[e.func](e.args[0])), "math")
    lo, hi = (float(v) for v in integral.limits[0][1:])
    assert integrate.quad(body, lo, hi)[0] == pytest.approx(float(registry.get(rid).expr), rel=1e-10)


def test_the_shown_stationary_point_zeroes_the_shown_gradient():
    grad = _step("kl-forward-fit", "Stationary equations").lhs
    point = _step("kl-forward-fit", "Solve: the unique stationary point")
    m, s = dkf.m, dkf.s
    (m_at, var_at) = list(point.rhs)
    assert list(point.lhs) == [m, s**2]
    at = grad.subs({m: m_at, s: sp.sqrt(var_at)})
    assert all(sp.simplify(g) == 0 for g in at)


@pytest.mark.parametrize("zs", [(0.5, -1.0, 0.0, 2.0), (-3.0,), (1.0, 2.0)])
def test_the_shown_count_n_neg_counts_the_coordinates_at_or_below_zero(zs):
    count = _step("leaky-relu-log-abs-det", "Sum over the n coordinates").rhs
    (i, _, n), = count.limits
    z = next(a.base for a in count.atoms(sp.Indexed))
    concrete = count.xreplace({n: len(zs)}).doit()
    assert concrete.xreplace({z[k + 1]: sp.Float(v) for k, v in enumerate(zs)}) == sum(v <= 0 for v in zs)
