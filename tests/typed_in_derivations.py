"""The two typed-in derivations of issue 14, as they were (commit 9f557d5), kept as the probe's negative examples.

``tests/test_derivations_derive.py`` loads this file as a derivation module
(``genverify.derivations._typed_in``) and requires the probe to reject both:
the finiteness condition of ``kl-uniform`` was typed (``covered = And(a >= c,
b <= d)``), and the general-n Leaky-ReLU log-determinant was a typed formula,
the Jacobian computed before it unused. Not a test module: nothing here runs
by itself.
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step

x = sp.Symbol("x", real=True)
a, b, c, d = sp.symbols("a b c d", real=True)
zs = sp.Symbol("z", real=True)
alpha = sp.Symbol("alpha", positive=True)
n_neg = sp.Symbol("n_neg", integer=True, nonnegative=True)
N_EXPLICIT = 4


def uniform_density(lo: sp.Expr, hi: sp.Expr) -> sp.Piecewise:
    return sp.Piecewise((1 / (hi - lo), (x >= lo) & (x <= hi)), (0, True))


def leaky_relu(t: sp.Expr) -> sp.Piecewise:
    return sp.Piecewise((alpha * t, t <= 0), (t, True))


def derive_kl_uniform() -> Derivation:
    p, q = uniform_density(a, b), uniform_density(c, d)
    definition = sp.Integral(p * sp.log(p / q), (x, -sp.oo, sp.oo))
    steps = [Step("Definition of KL(U[a,b] || U[c,d])", sp.Eq(sp.Symbol("D_KL"), definition))]
    uncovered = sp.Max(0, sp.Min(b, c) - a) + sp.Max(0, b - sp.Max(a, d))
    steps.append(Step("Length of [a,b] outside [c,d] (p > 0 = q there, integrand +oo)",
                      sp.Eq(sp.Symbol("|[a,b] \\ [c,d]|"), uncovered)))
    covered = sp.And(a >= c, b <= d)
    pin, qin = 1 / (b - a), 1 / (d - c)
    inside = sp.integrate(pin * sp.log(pin / qin), (x, a, b))
    inside = sp.simplify(sp.expand_log(inside, force=True))
    inside = sp.logcombine(inside, force=True)
    steps.append(Step("If covered, integrate over [a, b] where both densities are constant",
                      sp.Eq(sp.Integral(pin * sp.log(pin / qin), (x, a, b)), inside)))
    result = sp.Piecewise((inside, covered), (sp.oo, True))
    steps.append(Step("Covered iff the uncovered length is 0, i.e. a >= c and b <= d", result))
    return Derivation(result, tuple(steps))


def _jacobian_steps() -> tuple[sp.Matrix, list[Step]]:
    z = sp.symbols(f"z1:{N_EXPLICIT + 1}", real=True)
    f = sp.Matrix([leaky_relu(zi) for zi in z])
    jac = f.jacobian(sp.Matrix(z))
    steps = [
        Step(f"Elementwise map on R^{N_EXPLICIT} (the pattern holds for every n)", f),
        Step("Jacobian matrix df_i/dz_j: off-diagonal entries vanish", jac),
    ]
    return jac, steps


def derive_leaky_relu_log_abs_det() -> Derivation:
    jac, steps = _jacobian_steps()
    assert jac.is_diagonal()
    det = sp.Mul(*jac.diagonal())
    steps.append(Step("The determinant of a diagonal matrix is the product of the diagonal",
                      sp.Eq(sp.Symbol("det J"), det)))
    log_det = sp.expand_log(sp.log(sp.Abs(det)), force=True)
    steps.append(Step("log |det J| is a sum of per-coordinate terms", sp.Eq(sp.Symbol("log|det J|"), log_det)))
    per_term = sp.piecewise_fold(sp.log(sp.Abs(sp.diff(leaky_relu(zs), zs))))
    steps.append(Step("One coordinate's term", per_term))
    neg_value = per_term.subs(zs, -1)
    pos_value = per_term.subs(zs, 1)
    result = n_neg * neg_value + (sp.Symbol("n") - n_neg) * pos_value
    result = sp.simplify(result)
    steps.append(Step("Sum over n coordinates, n_neg of them negative", sp.Eq(sp.Symbol("log|det J|"), result)))
    return Derivation(result, tuple(steps))
