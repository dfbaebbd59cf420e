"""Distance of a uniform point of [0, 2]^2 from the centre (1, 1) (homework question 5c).

P is uniform on the square, so F_Z(z) = P(|P - (1,1)| <= z) is the area of the
disc of radius z about the centre that lies inside the square, divided by 4.
Centre the square at the origin ([-1, 1]^2); by symmetry the area is four times
the area in the first quadrant:

.. math:: A(z) = 4 \\int_0^{\\min(z,1)} \\min\\left(\\sqrt{z^2-x^2},\\, 1\\right) dx

For z <= 1 the quarter disc lies inside; for 1 < z < sqrt(2) the circle's
height sqrt(z^2 - x^2) exceeds the square's edge 1 while x < sqrt(z^2 - 1),
so the integral splits there; for z >= sqrt(2) the disc covers the square.
The case boundaries are solved for: 0 (the distance is smallest at the
centre), 1 (the arc's top reaches the edge) and sqrt(2) (the corners).
The density is dF/dz, piece by piece.

>>> derive_square_distance_cdf().result.subs(z, 1)
pi/4
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step

z = sp.Symbol("z", real=True)
x = sp.Symbol("x", real=True)
_r = sp.Symbol("r", positive=True)  # a radius, positive, for the integration


def _area_inside(case: str) -> tuple[sp.Expr, list[Step]]:
    height = sp.sqrt(_r**2 - x**2)  # upper semicircle of the disc of radius r
    steps: list[Step] = []
    if case == "small":
        integral = sp.Integral(height, (x, 0, _r))
        area = 4 * sp.integrate(height, (x, 0, _r))
        steps.append(Step("r <= 1: the quarter disc lies inside the quarter square",
                          sp.Eq(4 * integral, area)))
    else:
        # Where does the arc cross the edge y = 1? Solve sqrt(r^2 - x^2) = 1.
        x_cross = [s for s in sp.solve(sp.Eq(height, 1), x) if s.could_extract_minus_sign() is False][0]
        steps.append(Step("1 < r < sqrt(2): the arc meets the edge y = 1 at", sp.Eq(x, x_cross)))
        flat = sp.integrate(1, (x, 0, x_cross))
        arc = sp.integrate(height, (x, x_cross, 1))
        steps.append(Step("Clip the height at 1 left of the crossing, follow the arc to x = 1",
                          sp.Eq(4 * (sp.Integral(1, (x, 0, x_cross)) + sp.Integral(height, (x, x_cross, 1))),
                                4 * (flat + arc))))
        area = 4 * (flat + arc)
    return sp.simplify(area), steps


def derive_square_distance_cdf() -> Derivation:
    """5c: F_Z(z) = (area of the disc of radius z inside the square) / 4."""
    steps = [Step("F_Z(z) = P(|P - c| <= z) = area(disc(c, z) ∩ square) / area(square), area(square) = 4",
                  sp.Eq(sp.Function("F_Z")(z), sp.Symbol("A(z)") / 4))]
    # Where the cases change: the smallest distance (at the centre, where the gradient of
    # x^2 + y^2 vanishes), the radius at which the arc's top reaches the edge y = 1, and the
    # radius at which the disc reaches the corners (1, 1).
    y = sp.Symbol("y", real=True)
    centre = sp.solve([sp.diff(x**2 + y**2, v) for v in (x, y)], [x, y], dict=True)[0]
    nearest = sp.sqrt((x**2 + y**2).subs(centre))
    height = sp.sqrt(_r**2 - x**2)
    edge = [s for s in sp.solve(sp.Eq(height.subs(x, 0), 1), _r) if s.is_positive][0]
    corner = [s for s in sp.solve(sp.Eq(z**2, 1 + 1), z) if s.is_positive][0]
    steps.append(Step("Z is smallest at the centre (the gradient of x^2 + y^2 vanishes there): below it the disc is "
                      "empty", sp.Eq(sp.Symbol("min Z"), nearest)))
    small, s1 = _area_inside("small")
    steps.append(Step("The arc's top (x = 0) meets the edge y = 1 at the radius", sp.Eq(_r, edge)))
    middle, s2 = _area_inside("middle")
    steps += s1 + s2
    steps.append(Step("The disc covers the square once it reaches the corners", sp.Eq(z, corner)))
    below, above = sp.simplify(small.subs(_r, nearest) / 4), sp.simplify(middle.subs(_r, corner) / 4)
    steps.append(Step("F_Z at the ends: the empty disc, and the whole square", sp.Matrix([below, above])))
    cdf = sp.Piecewise(
        (below, z < nearest),
        (small.subs(_r, z) / 4, z <= edge),
        (middle.subs(_r, z) / 4, z < corner),
        (above, True),
    )
    steps.append(Step("Piecewise cdf", sp.Eq(sp.Function("F_Z")(z), cdf)))
    return Derivation(cdf, tuple(steps))


def derive_square_distance_pdf() -> Derivation:
    """5c: f_Z(z) = dF_Z/dz piece by piece (0 outside [0, sqrt(2)])."""
    cdf_derivation = derive_square_distance_cdf()
    pieces = []
    for expr, cond in cdf_derivation.result.args:
        # Differentiate with a positive radius so SymPy may drop |r| and sign cases;
        # every non-constant piece lives on z > 0.
        pieces.append((sp.simplify(sp.diff(expr.subs(z, _r), _r)).subs(_r, z), cond))
    pdf = sp.Piecewise(*pieces)
    steps = list(cdf_derivation.steps) + [
        Step("Differentiate each piece of the cdf", sp.Eq(sp.Function("f_Z")(z), pdf))
    ]
    return Derivation(pdf, tuple(steps))
