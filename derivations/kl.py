"""KL divergences derived from their definition (homework question 1a; ``kl-vae`` for 1c).

.. math:: D_{KL}(P \\| Q) = \\int p(x) \\log \\frac{p(x)}{q(x)} \\, dx

Every function here integrates densities; none starts from a known answer.

>>> derive_kl_uniform_forward().result
log(4)
"""

from __future__ import annotations

import itertools

import sympy as sp

from genverify.core import Derivation, Step

x = sp.Symbol("x", real=True)
a, b, c, d = sp.symbols("a b c d", real=True)
mu, mu1, mu2 = sp.symbols("mu mu1 mu2", real=True)
sigma, sigma1, sigma2 = sp.symbols("sigma sigma1 sigma2", positive=True)


def uniform_density(support: sp.Interval) -> sp.Piecewise:
    """Density of the uniform distribution on ``support``: 1/length on the set, 0 elsewhere."""
    return sp.Piecewise((1 / support.measure, support.as_relational(x)), (0, True))


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


# ----------------------------------------------------------------- uniforms (1a)

#: The name of the divergence in the steps.
KL_PQ = sp.Symbol("D_KL(P||Q)")
_pf, _qf = sp.Function("p"), sp.Function("q")


def _uniform_setup(supp_p: sp.Interval, supp_q: sp.Interval) -> list[Step]:
    """The definition and the two densities."""
    return [
        Step("Definition of KL(P || Q)",
             sp.Eq(KL_PQ, sp.Integral(_pf(x) * sp.log(_pf(x) / _qf(x)), (x, -sp.oo, sp.oo)))),
        Step(f"P = U{_interval_text(supp_p)}: its density is 1/length on its support, 0 elsewhere",
             sp.Eq(_pf(x), uniform_density(supp_p))),
        Step(f"Q = U{_interval_text(supp_q)}, likewise", sp.Eq(_qf(x), uniform_density(supp_q))),
    ]


def _blow_up(pv: sp.Expr = sp.Symbol("p", positive=True)) -> tuple[sp.Expr, Step]:
    """Where p(x) = pv > 0 but q(x) = 0 the integrand p log(p/q) is its limit as q -> 0+ (computed)."""
    qv = sp.Symbol("q", positive=True)
    value = sp.limit(pv * sp.log(pv / qv), qv, 0, "+")
    where = "p" if pv.is_Symbol else f"p = {pv}"  # a symbolic density is just p, not "p = p"
    return value, Step(f"Where {where} > 0 = q the integrand is the limit of p log(p/q) as q -> 0+",
                       sp.Eq(sp.Limit(pv * sp.log(pv / qv), qv, 0, "+"), value))


def _interval_text(iv: sp.Interval) -> str:
    return f"[{iv.start}, {iv.end}]"


def _inside_integral(supp_p: sp.Interval, supp_q: sp.Interval) -> tuple[sp.Expr, Step]:
    """∫ over supp P of p log(p/q), where both densities are their constants (the densities' first branches)."""
    pin, qin = uniform_density(supp_p).args[0][0], uniform_density(supp_q).args[0][0]
    integrand = pin * sp.log(pin / qin)
    value = sp.integrate(integrand, (x, supp_p.start, supp_p.end))
    value = sp.logcombine(sp.simplify(sp.expand_log(value, force=True)), force=True)
    return value, Step("On supp P both densities are constant: integrate p log(p/q) over supp P",
                       sp.Eq(sp.Integral(integrand, (x, supp_p.start, supp_p.end)), value))


def _kl_uniform_intervals(supp_p: sp.Interval, supp_q: sp.Interval) -> Derivation:
    """KL(U(supp_p) || U(supp_q)) for concrete intervals, from the definition.

    The integrand is +oo on supp P \\ supp Q (p > 0 = q), so the divergence is
    infinite exactly when SymPy's measure of that set is positive; otherwise
    integrate over supp P.
    """
    steps = _uniform_setup(supp_p, supp_q)
    uncovered = supp_p - supp_q
    length = sp.sympify(uncovered.measure)
    steps.append(Step("The set where p > 0 = q, supp P \\ supp Q, and its length (SymPy's measure)",
                      sp.Eq(sp.Symbol("|supp P \\ supp Q|"), length)))
    if length.is_positive:
        blow_up, step = _blow_up(uniform_density(supp_p).args[0][0])
        steps.append(step)
        steps.append(Step("The integrand is +oo on a set of positive length, so the integral diverges",
                          sp.Eq(KL_PQ, blow_up)))
        return Derivation(blow_up, tuple(steps))
    if not length.is_zero:
        raise ValueError(f"cannot decide the sign of the length {length}")
    steps.append(Step("That set has length 0: it does not contribute to the integral", sp.Eq(KL_PQ, sp.Integral(
        _pf(x) * sp.log(_pf(x) / _qf(x)), (x, supp_p.start, supp_p.end)))))
    value, step = _inside_integral(supp_p, supp_q)
    steps.append(step)
    steps.append(Step("Hence", sp.Eq(KL_PQ, value)))
    return Derivation(value, tuple(steps))


def derive_kl_uniform_forward() -> Derivation:
    """1a: KL(U[0,1] || U[-2,2]) (the student's P and Q)."""
    return _kl_uniform_intervals(sp.Interval(0, 1), sp.Interval(-2, 2))


def derive_kl_uniform_reverse() -> Derivation:
    """1a: KL(U[-2,2] || U[0,1])."""
    return _kl_uniform_intervals(sp.Interval(-2, 2), sp.Interval(0, 1))


def _weak_orders(lower: tuple[sp.Symbol, sp.Symbol], upper: tuple[sp.Symbol, sp.Symbol]) -> list[dict]:
    """Every order of the endpoints a, b, c, d (ties allowed) with a < b and c < d, as ranks 0, 1, ..."""
    syms = lower + upper
    out = []
    for ranks in itertools.product(range(len(syms)), repeat=len(syms)):
        r = dict(zip(syms, ranks))
        if r[lower[0]] < r[lower[1]] and r[upper[0]] < r[upper[1]] and set(ranks) == set(range(max(ranks) + 1)):
            out.append(r)
    return out


def _order_condition(ranks: dict) -> sp.Boolean:
    """The order as relations: equal endpoints tied, each rank's endpoint below the next rank's."""
    groups = [[s for s in ranks if ranks[s] == n] for n in range(max(ranks.values()) + 1)]
    rel = [sp.Eq(g[0], other) for g in groups for other in g[1:]]
    rel += [sp.Lt(lo[0], hi[0]) for lo, hi in zip(groups, groups[1:])]
    return sp.And(*rel)


def _order_values(ranks: dict) -> dict:
    """Endpoints realising the order: t + (a sum of positive gaps), one gap per step up in rank."""
    t = sp.Symbol("t", real=True)
    gaps = sp.symbols(f"g1:{len(ranks)}", positive=True)
    return {s: t + sum(gaps[: ranks[s]]) for s in ranks}


def derive_kl_uniform() -> Derivation:
    """KL(U[a,b] || U[c,d]) for symbolic a < b, c < d.

    The supports are SymPy intervals; the set where p > 0 = q is their
    difference, and its length is the integral of its indicator (SymPy's
    ``integrate``; ``Interval.measure`` needs numeric endpoints). The length
    is a combination of Min and Max whose sign is fixed by the order of the
    four endpoints: SymPy evaluates it for each of the 13 orders (ties
    included) with positive gaps, and the orders where it vanishes combine,
    by ``simplify_logic`` and ``simplify``, into the finiteness condition.
    """
    supp_p, supp_q = sp.Interval(a, b), sp.Interval(c, d)
    steps = _uniform_setup(supp_p, supp_q)
    blow_up, step = _blow_up()
    steps.append(step)
    uncovered = sp.Complement(supp_p, supp_q)
    indicator = sp.Piecewise((1, uncovered.as_relational(x)), (0, True))
    length = sp.integrate(indicator, (x, -sp.oo, sp.oo))
    steps.append(Step("Length of supp P \\ supp Q = [a, b] \\ [c, d], where p > 0 = q: "
                      "the integral of its indicator",
                      sp.Eq(sp.Symbol("|[a,b] \\ [c,d]|"), length)))
    zero_orders, positive = [], 0
    for ranks in _weak_orders((a, b), (c, d)):
        value = length.subs(_order_values(ranks))  # Min and Max of ordered endpoints evaluate
        if value.is_zero is None and value.is_positive is None:
            value = sp.simplify(value)
        if value.is_zero:
            zero_orders.append(_order_condition(ranks))
        elif value.is_positive:
            positive += 1
        else:
            raise ValueError(f"cannot decide the sign of the length {value} for the order {ranks}")
    steps.append(Step(f"The sign of the length depends only on the order of a, b, c, d: it is 0 in "
                      f"{len(zero_orders)} of the {len(zero_orders) + positive} orders (ties included), "
                      "positive in the others. The orders where it is 0:",
                      sp.Or(*zero_orders)))
    # Minimise the disjunction, then merge each pair "u = v or u > v" into "u >= v".
    covered = sp.simplify_logic(sp.Or(*zero_orders)).replace(
        lambda e: isinstance(e, sp.Or) and len(e.args) == 2 and all(isinstance(t, sp.Rel) for t in e.args),
        sp.simplify)
    # a < b is the domain of U[a, b] (the result's constraint), not a condition on the supports.
    covered = covered.xreplace({sp.Lt(a, b): sp.true, sp.Gt(b, a): sp.true})
    steps.append(Step("Combined: the length is 0 exactly when", covered))
    inside, step = _inside_integral(supp_p, supp_q)
    steps.append(step)
    result = sp.Piecewise((inside, covered), (blow_up, True))
    steps.append(Step("Finite when supp P ⊆ supp Q (length 0), +oo otherwise (the integrand is +oo on a set of "
                      "positive length)", sp.Eq(KL_PQ, result)))
    return Derivation(result, tuple(steps))


def _kl_normals(m1, s1, m2, s2, name: str, first: str = "p", second: str = "q") -> Derivation:
    """KL(N(m1,s1^2) || N(m2,s2^2)) by integrating p log(p/q) (``first`` and ``second`` name p and q).

    log(p/q) is a quadratic polynomial in x, so the integral is a linear
    combination of the moments ∫ x^k p(x) dx, k = 0, 1, 2, each of which SymPy
    integrates over the real line.
    """
    p, q = normal_density(m1, s1), normal_density(m2, s2)
    pf, qf = sp.Function(first), sp.Function(second)
    steps = [Step(f"Definition of {name}",
                  sp.Eq(sp.Symbol(name), sp.Integral(pf(x) * sp.log(pf(x) / qf(x)), (x, -sp.oo, sp.oo)))),
             Step(f"with {first} = N({m1}, {s1}^2) and {second} = N({m2}, {s2}^2)",
                  sp.Eq(sp.Matrix([pf(x), qf(x)]), sp.Matrix([p, q])))]
    log_ratio, moments, total = kl_normals_by_moments(m1, s1, m2, s2)
    steps.append(Step(f"log {first}(x) - log {second}(x) is a quadratic in x",
                      sp.Eq(sp.Symbol(f"log({first}/{second})"), log_ratio)))
    for k, mk in moments.items():
        steps.append(Step(f"Moment {k} of {first}", sp.Eq(sp.Integral(x**k * p, (x, -sp.oo, sp.oo)), mk)))
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
    return _kl_normals(mu, sigma, sp.Integer(0), sp.Integer(1), "D_KL(q||p)", first="q", second="p")
