"""Densities of transformed random variables (homework questions 5a and 5b).

For a monotone (piecewise) smooth g and Y = g(X):

.. math:: f_Y(y) = \\sum_{x:\\,g(x)=y} f_X(x) \\left|\\frac{dx}{dy}\\right|

The functions solve g(x) = y for x with SymPy, differentiate the inverse and
substitute; nothing starts from the answer.

>>> derive_lognormal_pdf().result.has(sp.log)
True
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step

x = sp.Symbol("x", real=True)
y = sp.Symbol("y", real=True)
z = sp.Symbol("z", positive=True)
mu = sp.Symbol("mu", real=True)
sigma = sp.Symbol("sigma", positive=True)


def change_of_variables(f_x: sp.Expr, g: sp.Expr, var: sp.Symbol, out: sp.Symbol,
                        name: str) -> tuple[sp.Expr, list[Step]]:
    """Density of g(X) at ``out`` by summing f_X(x) |dx/dy| over the preimages."""
    steps = [Step(f"Transformation {name} = g({var})", sp.Eq(sp.Symbol(name), g))]
    roots = sp.solve(sp.Eq(g, out), var)
    if not roots:
        raise ValueError(f"cannot invert {g} for {var}")
    steps.append(Step(f"Solve g({var}) = {out} for {var} (the preimages)",
                      sp.Eq(var, roots[0] if len(roots) == 1 else sp.FiniteSet(*roots))))
    density = sp.Integer(0)
    for r in roots:
        jac = sp.diff(r, out)
        steps.append(Step("Derivative of the inverse", sp.Eq(sp.Derivative(r, out), jac)))
        term = f_x.subs(var, r) * sp.Abs(jac)
        steps.append(Step(f"The density of the input at the preimage times |d{var}/d{out}|", term))
        density += term
    return density, steps


def derive_cauchy_reciprocal_pdf() -> Derivation:
    """5a: density of Y = 1/X for X standard Cauchy, valid for y != 0.

    At y = 0 the change-of-variables formula is undefined (no finite x maps
    there, P(Y = 0) = 0); the result's continuous extension 1/pi is the
    convention of :func:`genverify.numerics.cauchy_reciprocal_pdf`.
    """
    f_x = 1 / (sp.pi * (1 + x**2))
    steps = [Step("Density of the standard Cauchy", sp.Eq(sp.Function("f_X")(x), f_x))]
    dens, more = change_of_variables(f_x, 1 / x, x, y, "Y")
    steps += more
    result = sp.simplify(sp.cancel(sp.together(dens)))
    steps.append(Step("Simplify (y != 0)", sp.Eq(sp.Function("f_Y")(y), result)))
    return Derivation(result, tuple(steps))


def derive_lognormal_pdf() -> Derivation:
    """5b: density of Z = exp(Y), Y ~ N(mu, sigma^2), for z > 0 (0 for z <= 0)."""
    yy = sp.Symbol("y", real=True)
    f_y = sp.exp(-((yy - mu) ** 2) / (2 * sigma**2)) / (sigma * sp.sqrt(2 * sp.pi))
    steps = [Step("Density of Y ~ N(mu, sigma^2)", sp.Eq(sp.Function("f_Y")(yy), f_y))]
    dens, more = change_of_variables(f_y, sp.exp(yy), yy, z, "Z")
    steps += more
    result = sp.simplify(dens)
    steps.append(Step("Simplify (z > 0)", sp.Eq(sp.Function("f_Z")(z), result)))
    return Derivation(result, tuple(steps))
