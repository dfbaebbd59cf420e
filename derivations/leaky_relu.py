"""The elementwise Leaky-ReLU flow and its Jacobian (homework question 6).

.. math:: \\mathrm{LReLU}_\\alpha(z) = \\begin{cases} \\alpha z & z \\le 0 \\\\ z & z > 0 \\end{cases},
          \\qquad x = f(z) = (\\mathrm{LReLU}_\\alpha(z_1), \\dots, \\mathrm{LReLU}_\\alpha(z_n))

The inverse is found by solving each branch for z. The Jacobian's entry
(i, j) is SymPy's derivative of LReLU(z_i) by z_j, for symbolic n; its
determinant follows by induction on n (SymPy's ``det`` of the block-diagonal
J_{n+1}, the base case from the explicit 1 x 1 Jacobian; the explicit
4 x 4 Jacobian checks the formula). With n_neg the number of coordinates
z_i <= 0, log |det J| = n_neg log(alpha) and |det J|^{-1} = alpha^{-n_neg}.

Convention at 0 (a null set, it does not change any density): slope alpha,
as in ``torch.nn.functional.leaky_relu``'s gradient.

>>> derive_leaky_relu_inverse().result.subs({x: -1, alpha: sp.Rational(1, 10)})
-10
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step
from genverify.derivations.support import require, supporting

x = sp.Symbol("x", real=True)
zs = sp.Symbol("z", real=True)
alpha = sp.Symbol("alpha", positive=True)
n_neg = sp.Symbol("n_neg", integer=True, nonnegative=True)

#: The number of coordinates of the explicit Jacobian that checks the general formula.
N_EXPLICIT = 4

# The general map on R^n: coordinates z[i], i = 1..n.
n = sp.Symbol("n", integer=True, positive=True)
i, j = sp.symbols("i j", integer=True, positive=True)
z = sp.IndexedBase("z", real=True)
_t = sp.Symbol("t", integer=True, positive=True)  # j = n + 1 - t ranges over 1..n


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
        where = "otherwise" if cond is sp.true else f"on {cond}"
        steps.append(Step(f"Branch {branch} {where}: solve {branch} = x", sp.Eq(zs, sol)))
        pieces.append((sol, image_cond))
    result = sp.Piecewise(*pieces)
    steps.append(Step("Inverse", sp.Eq(sp.Symbol("f^{-1}(x)"), result)))
    return Derivation(result, tuple(steps))


def _explicit_det(size: int) -> sp.Expr:
    """det of the explicit size x size Jacobian of f, coordinates z1, z2, ..."""
    zk = sp.symbols(f"z1:{size + 1}", real=True)
    return sp.Matrix([leaky_relu(v) for v in zk]).jacobian(zk).det()


def _log_of_product(prod: sp.Product) -> sp.Sum:
    """log |prod_i g_i| = sum_i log |g_i|."""
    return sp.Sum(sp.log(sp.Abs(prod.function)), *prod.limits)


def derive_leaky_relu_log_abs_det() -> Derivation:
    """log |det df/dz| for the elementwise map on R^n, n symbolic.

    SymPy differentiates f_i = LReLU(z_i) by z_j: delta_ij LReLU'(z_i). The
    determinant follows by induction on n: J_{n+1} is block diagonal
    (J_n and LReLU'(z_{n+1})), so SymPy's ``det`` of the block matrix gives
    det J_{n+1} = LReLU'(z_{n+1}) det J_n; the base case det J_1 is the explicit
    1 x 1 Jacobian. Hence det J_n = prod_i LReLU'(z_i), and its log is a sum
    of per-coordinate terms, log(alpha) for each z_i <= 0.
    """
    fi = leaky_relu(z[i])
    steps = [Step("The map x = f(z) on R^n acts coordinate by coordinate", sp.Eq(sp.Symbol("f_i(z)"), fi))]
    entry = sp.diff(fi, z[j])
    steps.append(Step("Entry (i, j) of the Jacobian, ∂f_i/∂z_j: zero off the diagonal",
                      sp.Eq(sp.Symbol("J_ij"), entry)))
    slope = entry.subs(j, i)  # the diagonal entry, LReLU'(z_i)
    with supporting("the entry is delta_ij LReLU'(z_i); row and column n+1 vanish off the diagonal"):
        require(lambda: sp.simplify(slope - sp.diff(fi, z[i])) == 0, "J_ii = LReLU'(z_i)")
        require(lambda: entry.subs({i: n + 1, j: n + 1 - _t}) == 0 == entry.subs({i: n + 1 - _t, j: n + 1}),
                "J_{n+1, j} = J_{j, n+1} = 0 for j <= n")
    # J_{n+1} = [[J_n, 0], [0, LReLU'(z_{n+1})]]: its determinant by SymPy.
    J_n = sp.MatrixSymbol("J_n", n, n)
    last = slope.subs(i, n + 1)
    block = sp.BlockMatrix([[J_n, sp.ZeroMatrix(n, 1)], [sp.ZeroMatrix(1, n), sp.Matrix([[last]])]])
    det_step = sp.det(block)
    steps.append(Step("Row and column n+1 vanish off the diagonal (delta = 0 there), so J_{n+1} is block "
                      "diagonal; its determinant",
                      sp.Eq(sp.Symbol("det J_{n+1}"), det_step)))
    factor = sp.simplify(det_step / sp.Determinant(J_n))  # det J_{n+1} / det J_n, a function of n + 1
    det = sp.Product(factor.subs(n, i - 1), (i, 1, n))
    with supporting("base case n = 1 from the explicit Jacobian, and the formula at n = N_EXPLICIT"):
        require(lambda: _explicit_det(1) == det.subs(n, 1).doit().subs(z[1], sp.Symbol("z1", real=True)),
                "det J_1 = LReLU'(z_1)")
        require(lambda: sp.simplify(_explicit_det(N_EXPLICIT) - det.subs(n, N_EXPLICIT).doit().xreplace(
            {z[k]: sp.Symbol(f"z{k}", real=True) for k in range(1, N_EXPLICIT + 1)})) == 0,
            f"the explicit {N_EXPLICIT} x {N_EXPLICIT} Jacobian has that determinant")
    steps.append(Step("Base case: the 1 x 1 Jacobian's determinant is LReLU'(z_1); by induction",
                      sp.Eq(sp.Symbol("det J"), det)))
    log_det = _log_of_product(det)
    steps.append(Step("log |det J| is the sum of the logs of the factors: log(alpha) where z_i <= 0, else 0",
                      sp.Eq(sp.Symbol("log|det J|"), log_det)))
    term = sp.piecewise_fold(log_det.function)
    (value, cond), rest = term.args[0], term.args[1:]
    with supporting("the term is log(alpha) times the indicator of z_i <= 0"):
        require(lambda: all(v == 0 for v, _ in rest), "the term vanishes off its first branch")
    indicator = sp.Piecewise((1, cond), (0, True))
    count = sp.Sum(indicator, *log_det.limits)
    result = (value * count).xreplace({count: n_neg})
    steps.append(Step("Sum over the n coordinates: log(alpha) once per z_i <= 0; n_neg counts them",
                      sp.Eq(sp.Symbol("n_neg"), count)))
    steps.append(Step("Hence", sp.Eq(sp.Symbol("log|det J|"), result)))
    return Derivation(result, tuple(steps))


def derive_leaky_relu_inverse_abs_det() -> Derivation:
    """|det df/dz|^{-1} = exp(-log|det J|) = alpha^{-n_neg}."""
    logdet = derive_leaky_relu_log_abs_det()
    result = sp.simplify(sp.exp(-logdet.result))
    steps = list(logdet.steps) + [
        Step("Invert the absolute determinant", sp.Eq(sp.Symbol("1/|det J|"), result))
    ]
    return Derivation(result, tuple(steps))
