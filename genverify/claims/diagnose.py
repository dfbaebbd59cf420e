"""What is wrong with a claim that is not equivalent: a diagnosis, as a teacher would write it (issue 16).

:func:`diagnose` looks for the simplest relation between the claim ``c`` and
the verified result ``v`` that holds at every sampled point (40 significant
digits; the points are drawn as :mod:`genverify.claims.numeric` draws them):

* **renamed** symbols (STACK's SubstEquiv): ``c`` with two of the result's
  symbols exchanged equals ``v``;
* **sign**: ``c = -v``;
* **factor**: ``c / v`` is a constant or a monomial ``k * z^a * mu^b`` with
  half-integer exponents (the 5b answer is the result times ``sqrt(z)``: the
  ``1/z`` moved under the square root); for a density whose factor does not
  involve the variable, the claim is right **up to normalisation**;
* **term**: ``c - v`` is a constant or a monomial (an additive term);
* **one term of the claim** is off: with the term ``t`` multiplied by ``m``
  (a constant or a monomial) the claim equals ``v``; ``m = -1`` is the sign
  of that term, ``m = 0`` an extra term (the 5c case-2 cdf has
  ``-acos(1/z)`` where ``-z^2 acos(1/z)`` belongs: a factor ``z^2``);
* **region**: the claim agrees with ``v`` on part of the domain only (a
  univariate result): which intervals, and which pieces of a piecewise result.

Each relation found is checked at every sampled point before it is reported;
none found is "no simple relation" (the counterexample still says where the
claim fails). Numbers are identified with ``nsimplify`` (``sqrt(2)``, ``pi/2``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from genverify.claims import numeric
from genverify.core import Param, Result

__all__ = ["Diagnosis", "agree_everywhere", "diagnose", "interval_text", "monomial_fit", "split_terms"]

#: Points sampled for the algebraic diagnoses, and for the region one.
POINTS = 16
REGION_POINTS = 80
#: Two values agree (for a diagnosis) within this relative tolerance at 40 digits.
TOL = 1e-18
#: Most terms of a claim examined one by one.
MAX_TERMS = 12


@dataclass
class Diagnosis:
    """What is wrong, in words (``text``) and as data (``kind`` and ``detail``, JSON-ready strings).

    ``kind``: ``renamed``, ``sign``, ``factor``, ``normalisation``, ``term``,
    ``term-factor``, ``term-sign``, ``extra-term``, ``region``.
    """

    kind: str
    text: str
    detail: dict[str, Any] = field(default_factory=dict)


def diagnose(result: Result, active: list[Param], claim: sp.Expr, verified: sp.Expr, cond: Any = sp.true,
             seed: int = 0, names: tuple[str, str] = ("the claim", "the result")) -> Diagnosis | None:
    """The simplest relation between ``claim`` and ``verified`` that holds at every sampled point, if any.

    ``names`` are what the text calls the two (a step audit says "this line" and "line 3").
    """
    for finder in (_renamed, _algebraic, _region):
        try:
            found = finder(result, active, claim, verified, cond, seed)
        except (ArithmeticError, ValueError, TypeError, RecursionError):  # a diagnosis is optional
            found = None
        if found is not None:
            found.text = found.text.replace("the claim", "\0claim").replace("the result", names[1]) \
                .replace("\0claim", names[0])
            return found
    return None


# ----------------------------------------------------------------- algebra: factors and terms


def _algebraic(result, active, claim, verified, cond, seed) -> Diagnosis | None:
    terms = split_terms(claim)
    terms = terms if 2 <= len(terms) <= MAX_TERMS else []
    samples = _real_samples(result, active, [claim, *terms, verified], cond, seed)
    if len(samples) < (3 if any(not p.integer or isinstance(p.symbol, sp.IndexedBase) for p in active) else 1):
        return None
    scalars = _varying(active, samples)
    every = _varying(active, samples, integers=True)
    c = [s[0] for s, _ in samples]
    v = [s[-1] for s, _ in samples]
    pts = [p for _, p in samples]
    density = result.kind == "density" and result.variable is not None
    if not any(_zero(x) for x in v):
        ratio = [a / b for a, b in zip(c, v)]
        const = _constant(ratio)
        if const is not None and const == -1:
            return Diagnosis("sign", "the claim is the result with the opposite sign",
                             {"factor": "-1", "corrected": _show(-claim)})
        fit = _monomial(ratio, pts, scalars) if const is None else const
        if fit is not None and fit != 1:
            shown = _show(fit)
            corrected = _show(claim / fit)
            if density and not fit.has(_variable_symbol(result, active)) and not fit.has(sp.Indexed):
                return Diagnosis("normalisation",
                                 f"a density right up to normalisation: the claim is the result times {shown}, "
                                 f"so it integrates to {shown}, not 1", {"factor": shown, "corrected": corrected})
            return Diagnosis("factor", f"the claim is the result times {shown}",
                             {"factor": shown, "corrected": corrected})
    diff = [a - b for a, b in zip(c, v)]
    const = _constant(diff, absolute=_scale(v))
    fit = const if const is not None else (_monomial(diff, pts, scalars) or _affine(diff, pts, every))
    if fit is not None and fit != 0:
        sign, shown = ("minus", _show(-fit)) if _negative(fit) else ("plus", _show(fit))
        return Diagnosis("term", f"the claim is the result {sign} {shown}",
                         {"term": _show(fit), "corrected": _show(claim - fit)})
    for j, term in enumerate(terms, start=1):
        t = [s[j] for s, _ in samples]
        # Where the term vanishes, the claim must already agree; elsewhere claim - t + m t = verified.
        keep = [k for k, x in enumerate(t) if not _zero(x)]
        if len(keep) < 2 or any(not _close(diff[k], 0, absolute=_scale(v)) for k in range(len(t)) if k not in keep):
            continue
        mult = [1 - diff[k] / t[k] for k in keep]
        m = _constant(mult, absolute=TOL)
        if m is None:
            m = _monomial(mult, [pts[k] for k in keep], scalars)
        if m is None:
            continue
        shown_t = _show(term)
        others = [x for k, x in enumerate(terms, start=1) if k != j]
        if m == 0:
            return Diagnosis("extra-term", f"the term {shown_t} should not be there (without it, the claim "
                                           "equals the result)", {"term": shown_t,
                                                                 "corrected": _show(_rebuild(claim, others))})
        fixed = -term if m == -1 else _times(m, term)
        corrected = _show(_rebuild(claim, [*others[:j - 1], fixed, *others[j - 1:]]))
        if m == -1:
            return Diagnosis("term-sign", f"the term {shown_t} has the wrong sign (with {_show(fixed)}, the "
                                          "claim equals the result)",
                             {"term": shown_t, "should_be": _show(fixed), "corrected": corrected})
        should = _show(fixed)
        return Diagnosis("term-factor", f"the term {shown_t} should be {should}: it lacks a factor {_show(m)}",
                         {"term": shown_t, "factor": _show(m), "should_be": should, "corrected": corrected})
    return None


def _rebuild(claim: sp.Expr, terms: list[sp.Expr]) -> sp.Expr:
    """The claim with its terms replaced by ``terms`` (a sum over a bracket stays one sum)."""
    if isinstance(claim, sp.Sum) and len(claim.limits) == 1 and all(isinstance(t, sp.Sum) for t in terms):
        return sp.Sum(sp.Add(*[t.function for t in terms]), *claim.limits)
    return sp.Add(*terms)


def split_terms(expr: sp.Expr) -> list[sp.Expr]:
    """The additive terms of ``expr``; a sum over an index whose summand is ``a (b + c)`` gives ``sum a b`` and
    ``sum a c`` (the line of 2c-i, ``sum_i eta (x (1 - p) + (1 - x) p)``, has two terms)."""
    if isinstance(expr, sp.Add):
        return list(expr.args)
    if isinstance(expr, sp.Mul):
        sums = [a for a in expr.args if isinstance(a, sp.Sum)]
        if len(sums) == 1:
            rest = sp.Mul(*[a for a in expr.args if a is not sums[0]])
            inner = split_terms(sums[0])
            return [rest * t for t in inner] if len(inner) > 1 else [expr]
    if isinstance(expr, sp.Sum) and len(expr.limits) == 1:
        body = expr.function
        if isinstance(body, sp.Mul):
            adds = [a for a in body.args if isinstance(a, sp.Add)]
            if len(adds) == 1:
                rest = sp.Mul(*[a for a in body.args if a is not adds[0]])
                return [sp.Sum(rest * a, *expr.limits) for a in adds[0].args]
        if isinstance(body, sp.Add):
            return [sp.Sum(a, *expr.limits) for a in body.args]
    return [expr]


def _real_samples(result, active, exprs, cond, seed, points=POINTS):
    """Samples where every expression is a finite real number: (values as mpf, the point's scalars)."""
    out = []
    for smp in numeric.evaluate(result, active, exprs, cond, points, seed + 7919):
        if all(kind == "real" for kind, _ in smp.values):
            out.append(([_mpf(x) for _, x in smp.values], smp.scalars))
    return out


def _mpf(x) -> sp.Float:
    """``x`` as a 40-digit SymPy Float (arithmetic between such Floats keeps the 40 digits)."""
    return sp.Float(x, numeric.DIGITS)


def _varying(active, samples, integers: bool = False) -> list:
    """The scalar, non-integer symbols (integer ones too with ``integers``), and the indexed atoms with free
    indices (pi[k]), whose value changes between samples: what a monomial may involve."""
    out = []
    for p in active:
        if isinstance(p.symbol, sp.IndexedBase) or (p.integer and not integers):
            continue
        vals = {pts.get(p.symbol) for _, pts in samples}
        if len(vals) > 1:
            out.append(p.symbol)
    atoms = set.intersection(*[{k for k in pts if isinstance(k, sp.Indexed)} for _, pts in samples]) \
        if samples else set()
    for a in sorted(atoms, key=str):
        if len({pts[a] for _, pts in samples}) > 1:
            out.append(a)
    return out


def _close(a, b, rel=TOL, absolute=0.0) -> bool:
    return abs(a - b) <= max(absolute, rel * max(abs(a), abs(b)))


def _scale(values) -> float:
    return TOL * max((abs(x) for x in values), default=0)


def _constant(values, absolute=0.0) -> sp.Expr | None:
    """The common value of ``values`` as a simple number (``nsimplify``), or None."""
    if not values or not all(_close(x, values[0], absolute=absolute) for x in values):
        return None
    return _identify(values[0], absolute)


def _identify(x, absolute=0.0) -> sp.Expr | None:
    if abs(x) <= absolute:
        return sp.Integer(0)
    f = float(x)
    if not math.isfinite(f):
        return None
    guess = sp.nsimplify(f, [sp.pi, sp.E, sp.sqrt(2), sp.sqrt(3), sp.log(2)], tolerance=1e-13, rational=False)
    try:
        if _close(_mpf(sp.N(guess, numeric.DIGITS)), x, rel=1e-25, absolute=absolute):
            return guess
    except (TypeError, ValueError):
        pass
    return sp.Float(f, 6)


def monomial_fit(values, points: list[dict], symbols: list) -> sp.Expr | None:
    """``k * prod(s^a)`` over ``symbols`` (symbols or indexed atoms, keys of each point) equal to ``values`` at
    ``points`` (exponents multiples of 1/2 up to 4, ``k`` a simple number), or None. The fit is on
    ``log|value|`` and is then checked at 40 digits at every point."""
    return _monomial(values, points, symbols)


def _monomial(values, points, params) -> sp.Expr | None:
    import numpy as np  # numpy only for the least squares; the check below is at 40 digits

    if not params or any(_zero(v) for v in values):
        return None
    usable = [s for s in params if all(not _zero(pt.get(s, 0)) for pt in points)]
    if not usable or len(points) < len(usable) + 2:
        return None
    A = np.array([[1.0] + [math.log(abs(float(pt[s]))) for s in usable] for pt in points])
    b = np.array([math.log(abs(float(v))) for v in values])
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    exps = [sp.Rational(round(2 * e), 2) for e in coef[1:]]
    if any(abs(2 * e - round(2 * e)) > 1e-6 or abs(e) > 4 for e in coef[1:]) or all(e == 0 for e in exps):
        return None
    mono = sp.Mul(*[s ** e for s, e in zip(usable, exps)])
    ks = []
    for v, pt in zip(values, points):
        m = _mpf(sp.N(mono.xreplace({s: pt[s] if isinstance(pt[s], int) else sp.Float(pt[s], numeric.DIGITS)
                                     for s in usable}), numeric.DIGITS))
        ks.append(v / m)
    k = _constant(ks)
    if k is None or isinstance(k, sp.Float):
        return None
    return k * mono


def _times(m: sp.Expr, term: sp.Expr) -> sp.Expr:
    """``m * term``, with ``m`` moved into a sum when it does not involve the summation index."""
    coeff, rest = term.as_independent(sp.Sum, as_Add=False)
    if isinstance(rest, sp.Sum) and not (m.free_symbols & {lim[0] for lim in rest.limits}):
        return coeff * sp.Sum(sp.simplify(m * rest.function), *rest.limits)
    return sp.Mul(m, term)


def _affine(values, points, keys) -> sp.Expr | None:
    """``c0 + sum(c_j * key_j)`` equal to ``values`` at every point (simple numbers ``c``), or None
    (the 2c-ii line that writes -1 where -K belongs is off by K - 1)."""
    import numpy as np  # numpy only for the least squares; the check below is at 40 digits

    keys = [k for k in keys if not isinstance(k, sp.Indexed)][:6]
    if not keys or len(points) < len(keys) + 3:
        return None
    A = np.array([[1.0] + [float(pt[k]) for k in keys] for pt in points])
    b = np.array([float(v) for v in values])
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    cs = []
    for x in coef:
        guess = sp.nsimplify(float(x), tolerance=1e-9, rational=True)
        if abs(float(guess) - x) > 1e-7 * max(1.0, abs(x)) or (guess != 0 and max(guess.p, guess.q) > 1000):
            return None
        cs.append(guess)
    fit = cs[0] + sum(c * k for c, k in zip(cs[1:], keys))
    if fit == 0 or fit.is_number:
        return None
    for v, pt in zip(values, points):
        if not _close(v, _mpf(fit.xreplace({k: pt[k] for k in keys})), absolute=TOL * max(1, abs(v))):
            return None
    return fit


def _zero(x) -> bool:
    # (SymPy's Float(0) == 0 is False: compare the value, not the type.)
    return bool(x == 0) or bool(getattr(x, "is_zero", False))


def _negative(e: sp.Expr) -> bool:
    return e.could_extract_minus_sign()


def _show(e: sp.Expr) -> str:
    """``e`` as plain text, a negative power shown as a division (1/pi[k]**2, not pi[k]**(-2))."""
    if isinstance(e, sp.Mul) and e.could_extract_minus_sign() and not e.has(sp.Sum, sp.Product):
        inner = _show(-e)
        return "-" + (inner if not isinstance(-e, sp.Add) else f"({inner})")
    if isinstance(e, (sp.Mul, sp.Pow)) and not e.has(sp.Sum, sp.Product):
        num, den = sp.fraction(e)
        if den != 1:
            n, d = sp.sstr(num), sp.sstr(den)
            n = n if isinstance(num, (sp.Symbol, sp.Indexed, sp.Number)) or num.is_Pow or num.is_Function \
                else f"({n})"
            d = d if isinstance(den, (sp.Symbol, sp.Indexed, sp.Number)) or den.is_Pow or den.is_Function \
                else f"({d})"
            return f"{n}/{d}"
    return sp.sstr(e)


def _variable_symbol(result, active):
    p = next((p for p in active if p.name == result.variable), None)
    return p.symbol if p is not None else sp.Dummy()


# ----------------------------------------------------------------- renamed symbols (SubstEquiv)


def _renamed(result, active, claim, verified, cond, seed) -> Diagnosis | None:
    # Real symbols of scalar formulas only: exchanging a size N with lambda would make no sense.
    if claim.has(sp.Sum, sp.Product, sp.Indexed) or verified.has(sp.Sum, sp.Product, sp.Indexed):
        return None
    scalars = [p for p in active if not isinstance(p.symbol, sp.IndexedBase) and not p.integer
               and p.symbol in claim.free_symbols]
    if not 2 <= len(scalars) <= 4:
        return None
    syms = [p.symbol for p in scalars]
    for perm in itertools.permutations(syms):
        if perm == tuple(syms):
            continue
        mapping = dict(zip(syms, perm))
        moved = {a: b for a, b in mapping.items() if a != b}
        renamed = claim.xreplace(mapping)
        if agree_everywhere(result, active, renamed, verified, cond, seed, points=4) and \
                agree_everywhere(result, active, renamed, verified, cond, seed + 1):
            pairs = ", ".join(f"{a} -> {b}" for a, b in moved.items())
            return Diagnosis("renamed", f"the claim would be correct with the substitution {pairs} "
                                        "(its symbols exchanged: STACK's SubstEquiv)",
                             {"mapping": {str(a): str(b) for a, b in moved.items()}})
    return None


def agree_everywhere(result: Result, active: list[Param], a: sp.Expr, b: sp.Expr, cond: Any, seed: int,
                     points: int = POINTS) -> bool:
    """Whether ``a`` and ``b`` agree (to 20 digits) at every one of ``points`` sampled points (at least 3)."""
    samples = numeric.evaluate(result, active, [a, b], cond, points, seed + 104729)
    if len(samples) < 3:
        return False
    return all(numeric.agree(s.values[0], s.values[1], 1e-20, 1e-30) for s in samples)


# ----------------------------------------------------------------- regions


def _region(result, active, claim, verified, cond, seed) -> Diagnosis | None:
    scalars = [p for p in active if not isinstance(p.symbol, sp.IndexedBase)]
    if len(scalars) != 1 or scalars[0].integer or any(isinstance(p.symbol, sp.IndexedBase) for p in active):
        return None
    (prm,) = scalars
    s = prm.symbol
    samples = numeric.evaluate(result, active, [claim, verified], cond, REGION_POINTS, seed + 15485863)
    flags = sorted(((float(smp.scalars[s]), numeric.agree(smp.values[0], smp.values[1])) for smp in samples),
                   key=lambda t: t[0])
    if len(flags) < 10:
        return None
    right = sum(ok for _, ok in flags)
    if right == 0 or right == len(flags):
        return None
    # Runs of agreement and disagreement, their boundaries refined by bisection and identified (sqrt(2)).
    runs: list[list] = []
    for x, ok in flags:
        if runs and runs[-1][2] == ok:
            runs[-1][1] = x
        else:
            runs.append([x, x, ok])
    cuts = [_boundary(claim, verified, s, runs[i][1], runs[i + 1][0]) for i in range(len(runs) - 1)]
    region = prm.domain
    if cond is not sp.true:
        region = numeric.univariate_set(cond, s) or region
        region = prm.domain.intersect(region)
    bounds = [region.inf, *cuts, region.sup]
    pieces = []
    for i, (_, _, ok) in enumerate(runs):
        pieces.append({"from": sp.sstr(bounds[i]), "to": sp.sstr(bounds[i + 1]), "agrees": bool(ok)})
    wrong = [p for p in pieces if not p["agrees"]]
    ok_ = [p for p in pieces if p["agrees"]]

    def span(p):
        if p["to"] == "oo":
            return f"{prm.name} > {p['from']}" if p["from"] != "-oo" else f"every {prm.name}"
        lo = "" if p["from"] == "-oo" else f"{p['from']} < "
        return f"{lo}{prm.name} < {p['to']}"

    text = ("the claim is right for " + " and ".join(span(p) for p in ok_) + " but wrong for "
            + " and ".join(span(p) for p in wrong))
    if isinstance(verified, sp.Piecewise):
        named = _pieces_hit(verified, s, wrong)
        if named:
            text += f" (the result there: {named})"
    return Diagnosis("region", text, {"variable": prm.name, "pieces": pieces})


def _boundary(claim, verified, s, a: float, b: float) -> sp.Expr:
    """Where agreement turns into disagreement between ``a`` and ``b`` (bisection), identified if simple."""
    def ok(x):
        pt = {s: sp.Float(x, numeric.DIGITS)}
        cv = numeric._value(claim.xreplace(pt))
        vv = numeric._value(verified.xreplace(pt))
        return numeric.agree(cv, vv)

    left = ok(a)
    for _ in range(40):
        mid = (a + b) / 2
        if ok(mid) == left:
            a = mid
        else:
            b = mid
    x = (a + b) / 2
    guess = sp.nsimplify(x, [sp.sqrt(2), sp.sqrt(3), sp.pi], tolerance=1e-7, rational=False)
    return guess if abs(float(guess) - x) < 1e-7 else sp.Float(x, 4)


def _pieces_hit(pw: sp.Piecewise, s, wrong: list[dict]) -> str:
    """The pieces of ``pw`` (and where each holds) that the ``wrong`` intervals fall in."""
    shown = []
    remaining = sp.S.Reals
    for e, c in pw.args:
        try:
            cs = remaining if c is sp.true else c.as_set().intersect(remaining)
        except (NotImplementedError, TypeError, ValueError):
            return ""
        remaining = remaining - cs
        for w in wrong:
            lo, hi = sp.sympify(w["from"]), sp.sympify(w["to"])
            mid = (lo + hi) / 2 if lo.is_finite and hi.is_finite else (hi - 1 if hi.is_finite else lo + 1)
            if cs.contains(mid) == sp.true:
                shown.append(f"{sp.sstr(e)} for {interval_text(cs, str(s))}")
                break
    return "; ".join(dict.fromkeys(shown))


def interval_text(S: sp.Set, name: str) -> str:
    """``Interval.Lopen(1, sqrt(2))`` as ``1 < z <= sqrt(2)``."""
    if isinstance(S, sp.Interval):
        lo = "" if S.inf is sp.S.NegativeInfinity else f"{sp.sstr(S.inf)} {'<' if S.left_open else '<='} "
        hi = "" if S.sup is sp.S.Infinity else f" {'<' if S.right_open else '<='} {sp.sstr(S.sup)}"
        return f"{lo}{name}{hi}" if lo or hi else f"every {name}"
    return f"{name} in {sp.sstr(S)}"
