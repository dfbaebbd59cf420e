"""KL divergences derived from their definition (homework question 1a; ``kl-vae`` for 1c).

.. math:: D_{KL}(P \\| Q) = \\int p(x) \\log \\frac{p(x)}{q(x)} \\, dx

Every function here integrates densities; none starts from a known answer.

>>> derive_kl_uniform_forward().result
log(4)
"""

from __future__ import annotations

import sympy as sp

from genverify.core import Derivation, Step

x = sp.Symbol("x", real=True)
a, b, c, d = sp.symbols("a b c d", real=True)
mu, mu1, mu2 = sp.symbols("mu mu1 mu2", real=True)
sigma, sigma1, sigma2 = sp.symbols("sigma sigma1 sigma2", positive=True)


def uniform_density(lo: sp.Expr, hi: sp.Expr) -> sp.Piecewise:
    """Density of U[lo, hi]: 1/(hi-lo) on the interval and 0 elsewhere."""
    return sp.Piecewise((1 / (hi - lo), (x >= lo) & (x <= hi)), (0, True))


def normal_density(m: sp.Expr, s: sp.Expr, var: sp.Symbol = x) -> sp.Expr:
    """Density of N(m, s^2) in ``var`` (the parameters may contain other symbols, x included)."""
    return sp.exp(-((var - m) ** 2) / (2 * s**2)) / (s * sp.sqrt(2 * sp.pi))


def integrate_moments(density: sp.Expr, var: sp.Symbol, kmax: int) -> dict[int, sp.Expr]:
    """∫ var^k density d var over the real line, k = 0..kmax, each by SymPy's ``integrate``."""
    return {k: sp.simplify(sp.integrate(var**k * density, (var, -sp.oo, sp.oo))) for k in range(kmax + 1)}


def expect_polynomial(expr: sp.Expr, var: sp.Symbol, moments: dict[int, sp.Expr]) -> sp.Expr:
    """E[expr] for ``expr`` a polynomial in ``var``, by linearity: sum_k c_k E[var^k] (not expanded)."""
    poly = sp.Poly(sp.expand(expr), var)
    return sum(coef * moments[mon[0]] for mon, coef in zip(poly.monoms(), poly.coeffs()))


def kl_normals_by_moments(m1, s1, m2, s2, var: sp.Symbol = x,
                          moments: dict[int, sp.Expr] | None = None) -> tuple[sp.Expr, dict[int, sp.Expr], sp.Expr]:
    """KL(N(m1,s1^2) || N(m2,s2^2)) = ∫ p log(p/q) d var, with log(p/q) a quadratic in ``var``.

    Returns (log p/q expanded, the moments of p used, the KL as their linear
    combination, unsimplified). The moments of p are integrated unless given.
    """
    p, q = normal_density(m1, s1, var), normal_density(m2, s2, var)
    log_ratio = sp.expand(sp.expand_log(sp.log(p) - sp.log(q), force=True))
    if moments is None:
        moments = integrate_moments(p, var, sp.Poly(log_ratio, var).degree())
    return log_ratio, moments, expect_polynomial(log_ratio, var, moments)


def _kl_uniform_intervals(p_lo, p_hi, q_lo, q_hi) -> Derivation:
    """KL(U[p_lo,p_hi] || U[q_lo,q_hi]) for concrete endpoints, from the definition.

    The integrand p log(p/q) is +infinity wherever p > 0 and q = 0; so the
    divergence is infinite exactly when that set, supp(P) minus supp(Q), has
    positive length. Otherwise integrate over supp(P).
    """
    p, q = uniform_density(p_lo, p_hi), uniform_density(q_lo, q_hi)
    definition = sp.Integral(p * sp.log(p / q), (x, -sp.oo, sp.oo))
    steps = [Step("Definition of KL(P || Q)", sp.Eq(sp.Symbol("D_KL(P||Q)"), definition))]
    uncovered = sp.Interval(p_lo, p_hi) - sp.Interval(q_lo, q_hi)
    length = sp.sympify(uncovered.measure)
    steps.append(Step("Length of supp(P) \\ supp(Q), where p > 0 = q and the integrand is +oo",
                      sp.Eq(sp.Symbol("|supp P \\ supp Q|"), length)))
    if length.is_positive:
        steps.append(Step("The integrand is +oo on a set of positive measure, so the integral diverges",
                          sp.Eq(sp.Symbol("D_KL(P||Q)"), sp.oo)))
        return Derivation(sp.oo, tuple(steps))
    # On supp(P) both densities are the constants of their Piecewise.
    pin, qin = p.args[0][0], q.args[0][0]
    integral = sp.integrate(pin * sp.log(pin / qin), (x, p_lo, p_hi))
    steps.append(Step("Integrate over supp(P), where both densities are constant",
                      sp.Eq(sp.Integral(pin * sp.log(pin / qin), (x, p_lo, p_hi)), integral)))
    result = sp.simplify(integral)
    steps.append(Step("Simplify", result))
    return Derivation(result, tuple(steps))


def derive_kl_uniform_forward() -> Derivation:
    """1a: KL(U[0,1] || U[-2,2]) (the student's P and Q)."""
    return _kl_uniform_intervals(sp.Integer(0), sp.Integer(1), sp.Integer(-2), sp.Integer(2))


def derive_kl_uniform_reverse() -> Derivation:
    """1a: KL(U[-2,2] || U[0,1])."""
    return _kl_uniform_intervals(sp.Integer(-2), sp.Integer(2), sp.Integer(0), sp.Integer(1))


def derive_kl_uniform() -> Derivation:
    """KL(U[a,b] || U[c,d]) for symbolic a < b, c < d.

    Support containment [a, b] ⊆ [c, d] is decided symbolically: the uncovered
    length max(0, c - a) + max(0, b - d) must vanish, which happens iff
    a >= c and b <= d. Inside, integrate the constant log-ratio over [a, b].
    """
    p, q = uniform_density(a, b), uniform_density(c, d)
    definition = sp.Integral(p * sp.log(p / q), (x, -sp.oo, sp.oo))
    steps = [Step("Definition of KL(U[a,b] || U[c,d])", sp.Eq(sp.Symbol("D_KL"), definition))]
    # Uncovered part of [a, b]: to the left of c and to the right of d.
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


def _kl_normals(m1, s1, m2, s2, name: str) -> Derivation:
    """KL(N(m1,s1^2) || N(m2,s2^2)) by integrating p log(p/q).

    log(p/q) is a quadratic polynomial in x, so the integral is a linear
    combination of the moments ∫ x^k p(x) dx, k = 0, 1, 2, each of which SymPy
    integrates over the real line.
    """
    p, q = normal_density(m1, s1), normal_density(m2, s2)
    steps = [Step(f"Definition of {name}",
                  sp.Eq(sp.Symbol(name), sp.Integral(p * sp.log(p / q), (x, -sp.oo, sp.oo))))]
    log_ratio, moments, total = kl_normals_by_moments(m1, s1, m2, s2)
    steps.append(Step("log p(x) - log q(x) is a quadratic in x", sp.Eq(sp.Symbol("log(p/q)"), log_ratio)))
    for k, mk in moments.items():
        steps.append(Step(f"Moment {k} of p", sp.Eq(sp.Integral(x**k * p, (x, -sp.oo, sp.oo)), mk)))
    steps.append(Step("Linearity of the integral", sp.Eq(sp.Symbol(name), total)))
    result = sp.expand(sp.expand_log(sp.simplify(total), force=True))
    # Tidy: combine logs and group the quadratic part over 2 s2^2.
    result = sp.logcombine(result, force=True)
    steps.append(Step("Simplify", sp.Eq(sp.Symbol(name), result)))
    return Derivation(result, tuple(steps))


def derive_kl_gaussian() -> Derivation:
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    return _kl_normals(mu1, sigma1, mu2, sigma2, "D_KL(N1||N2)")


def derive_kl_vae() -> Derivation:
    """The VAE's KL term in one latent dimension: KL(N(mu, sigma^2) || N(0, 1))."""
    return _kl_normals(mu, sigma, sp.Integer(0), sp.Integer(1), "D_KL(q||p)")
