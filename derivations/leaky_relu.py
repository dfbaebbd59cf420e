"""The elementwise Leaky-ReLU flow and its Jacobian (homework question 6).

.. math:: \\mathrm{LReLU}_\\alpha(z) = \\begin{cases} \\alpha z & z \\le 0 \\\\ z & z > 0 \\end{cases},
          \\qquad x = f(z) = (\\mathrm{LReLU}_\\alpha(z_1), \\dots, \\mathrm{LReLU}_\\alpha(z_n))

The inverse is found by solving each branch for z; the Jacobian by
differentiating each component with respect to each coordinate (SymPy builds
the n x n matrix for a concrete n, finds it diagonal, and takes its
determinant). With n_neg the number of negative coordinates,
log |det J| = n_neg log(alpha) and |det J|^{-1} = alpha^{-n_neg}.

Convention at 0 (a null set, it does not change any density): slope alpha,
as in ``torch.nn.functional.leaky_relu``'s gradient.

>>> derive_leaky_relu_inverse().result.subs({x: -1, alpha: sp.Rational(1, 10)})
-10
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step

x = sp.Symbol("x", real=True)
zs = sp.Symbol("z", real=True)
alpha = sp.Symbol("alpha", positive=True)
n_neg = sp.Symbol("n_neg", integer=True, nonnegative=True)

#: The number of coordinates used to build the Jacobian matrix explicitly.
N_EXPLICIT = 4


def leaky_relu(t: sp.Expr) -> sp.Piecewise:
    """The Leaky ReLU, as defined in the homework (slope alpha left of 0)."""
    return sp.Piecewise((alpha * t, t <= 0), (t, True))


def derive_leaky_relu_inverse() -> Derivation:
    """Invert x = LReLU(z) branch by branch: solve, then map the branch's image."""
    f = leaky_relu(zs)
    steps = [Step("Definition", sp.Eq(sp.Symbol("x"), f))]
    pieces = []
    for branch, cond in f.args:
        sol = sp.solve(sp.Eq(branch, x), zs)[0]
        # The branch's condition on z, rewritten as a condition on x: the image of
        # z <= 0 under alpha z (alpha > 0) is x <= 0; of z > 0 under z is x > 0.
        if cond is sp.true:
            image_cond = sp.true
        else:
            image_cond = sp.solveset(cond.subs(zs, sol), x, sp.S.Reals).as_relational(x)
        steps.append(Step(f"Branch {branch}: solve {branch} = x on {cond}", sp.Eq(zs, sol)))
        pieces.append((sol, image_cond))
    result = sp.Piecewise(*pieces)
    steps.append(Step("Inverse", sp.Eq(sp.Symbol("f^{-1}(x)"), result)))
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
    """log |det df/dz| = sum_i log |LReLU'(z_i)| = n_neg log(alpha)."""
    jac, steps = _jacobian_steps()
    assert jac.is_diagonal()
    det = sp.Mul(*jac.diagonal())
    steps.append(Step("The determinant of a diagonal matrix is the product of the diagonal", sp.Eq(sp.Symbol("det J"), det)))
    log_det = sp.expand_log(sp.log(sp.Abs(det)), force=True)
    steps.append(Step("log |det J| is a sum of per-coordinate terms", sp.Eq(sp.Symbol("log|det J|"), log_det)))
    # Each term is log(alpha) on z_i <= 0 and 0 otherwise: count the negative coordinates.
    per_term = sp.piecewise_fold(sp.log(sp.Abs(sp.diff(leaky_relu(zs), zs))))
    steps.append(Step("One coordinate's term", per_term))
    neg_value = per_term.subs(zs, -1)
    pos_value = per_term.subs(zs, 1)
    result = n_neg * neg_value + (sp.Symbol("n") - n_neg) * pos_value
    result = sp.simplify(result)
    steps.append(Step("Sum over n coordinates, n_neg of them negative", sp.Eq(sp.Symbol("log|det J|"), result)))
    return Derivation(result, tuple(steps))


def derive_leaky_relu_inverse_abs_det() -> Derivation:
    """|det df/dz|^{-1} = exp(-log|det J|) = alpha^{-n_neg}."""
    logdet = derive_leaky_relu_log_abs_det()
    result = sp.simplify(sp.exp(-logdet.result))
    steps = list(logdet.steps) + [
        Step("Invert the absolute determinant", sp.Eq(sp.Symbol("|det J|^{-1}"), result))
    ]
    return Derivation(result, tuple(steps))
