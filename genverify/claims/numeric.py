"""The numeric half of the claim check: both sides at random points of the domain, 40 digits.

When SymPy cannot prove ``claim - result = 0``, :func:`compare` evaluates both
sides with :data:`DIGITS` significant digits at random points that satisfy
the symbols' domains, the result's joint constraint and the ``where``
condition. Two values agree when

.. math:: |c - v| \\le \\mathrm{ATOL} \\quad\\text{or}\\quad |c - v| \\le \\mathrm{RTOL}\\,\\max(|c|, |v|),

with RTOL = 10^-25 and ATOL = 10^-30; infinities agree with themselves, and a
point where the verified result is undefined (nan) is skipped. Agreement at
every point is equivalence; the first disagreement is the
:class:`Counterexample`, rounded to a readable point that still disagrees.

Indexed results (sums and products over i = 1..n, d = 1..D) are compared at
random small concrete sizes (up to :data:`MAX_SIZE`) with random entries;
entries constrained to sum to one (mixture weights, responsibilities) are
normalised, or drawn one-hot when they take only the values 0 and 1.
:func:`evaluate` gives the values of several expressions at the same points
(the diagnoses and the answer tests use it).

(Somewhat over 500 lines: sampling, evaluation at 40 digits and comparison
share the points, the concrete sizes and the value encoding; split, each part
would need the others' internals.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from genverify.checks import expand_concrete
from genverify.claims.errors import ClaimError, EmptyRegionError
from genverify.core import Param, Result

__all__ = [
    "ATOL",
    "DIGITS",
    "INDEXED_POINTS",
    "MAX_SIZE",
    "RTOL",
    "Comparison",
    "Counterexample",
    "Sample",
    "agree",
    "compare",
    "evaluate",
    "expand_concrete",
    "show",
    "show_value",
    "univariate_set",
]

#: Working precision (significant digits) of the numeric comparison.
DIGITS = 40
#: Two values agree when they differ by at most this, relative to the larger (or absolutely, near 0).
RTOL = 1e-25
ATOL = 1e-30
#: Random points compared for indexed results (expanded at each point, so fewer).
INDEXED_POINTS = 25
#: Largest concrete size (n, K, D) used to expand sums and products.
MAX_SIZE = 4


@dataclass
class Counterexample:
    """A point where the claim and the verified result differ."""

    point: dict[str, str]
    claimed: str
    verified: str

    def describe(self) -> str:
        where = ", ".join(f"{k} = {v}" for k, v in self.point.items()) or "(no free symbols)"
        return f"at {where}: claimed {self.claimed}, verified {self.verified}"



@dataclass
class Comparison:
    """What the numbers say: equivalent or not, at how many points, and where it fails."""

    equivalent: bool
    message: str
    points: int
    counterexample: Counterexample | None = None


def compare(result: Result, active: list[Param], claim: sp.Expr, verified: sp.Expr, cond: Any,
            points: int, seed: int, rtol: float | None = None, atol: float | None = None,
            both_defined: bool = False) -> Comparison:
    """Compare ``claim`` and ``verified`` at ``points`` random points (of the ``cond`` region) of ``active``.

    Two values agree within ``rtol`` relative or ``atol`` absolute (default
    :data:`RTOL`, :data:`ATOL`). A point where the verified result is
    undefined is skipped; with ``both_defined``, so is one where the claim is
    (two lines of a derivation are compared where both make sense: a solution
    ``p = sum(x)/sum(1)`` divides by zero where every x is 0). Raises
    :class:`~genverify.claims.errors.ClaimError` when no point can be sampled
    or the verified result is undefined at every one.
    """
    tol = (RTOL if rtol is None else rtol, ATOL if atol is None else atol)
    rng = np.random.default_rng(seed)
    indexed = [p for p in active if isinstance(p.symbol, sp.IndexedBase)]
    scalars = [p for p in active if not isinstance(p.symbol, sp.IndexedBase)]
    has_indexed = bool(indexed) or claim.has(sp.Sum, sp.Product) or verified.has(sp.Sum, sp.Product)
    n = min(points, INDEXED_POINTS) if has_indexed else points
    constraint, simplex = _split_constraint(result.constraint)
    sample = _sample_points(scalars, sp.And(cond, constraint), rng, n, small_integers=has_indexed)
    if sample is not None and has_indexed:
        # Small sizes first: the first failure is then the smallest counterexample.
        sample.sort(key=lambda row: sum(v for v in row if isinstance(v, int)))
    if sample is None:
        if cond is not sp.true:
            raise EmptyRegionError("where", "no point of the domain satisfies {param} and the result's constraints")
        raise ClaimError("could not sample points of the domain")
    checked = 0
    skipped = 0
    for values in sample:
        point = {p.symbol: v for p, v in zip(scalars, values)}
        c_val, v_val, entries = _evaluate_pair(claim, verified, point, indexed, rng, simplex)
        if v_val[0] in ("nan", "undefined") or (both_defined and c_val[0] in ("nan", "undefined", "zoo")):
            skipped += 1
            continue
        checked += 1
        if not _agree(c_val, v_val, *tol):
            shown = {p.name: show(v) for p, v in zip(scalars, values)}
            shown.update(entries)
            nicer = _nicer_counterexample(scalars, values, claim, verified, cond, constraint, indexed, tol) \
                if not has_indexed else None
            if nicer is not None:
                shown, c_val, v_val = nicer
            ce = Counterexample(shown, _show_val(c_val), _show_val(v_val))
            return Comparison(equivalent=False, counterexample=ce, points=checked,
                              message="the claim differs from the verified result"
                                      + (" on the given region" if cond is not sp.true else ""))
    if checked == 0:
        raise ClaimError("the verified result is undefined at every sampled point; nothing to compare")
    where_txt = " of the given region" if cond is not sp.true else " of the domain"
    sizes = " (sums and products expanded at random sizes up to %d)" % MAX_SIZE if has_indexed else ""
    within = f"to {DIGITS - 15}+ significant digits" if rtol is None and atol is None else \
        f"within a relative tolerance of {tol[0]:g}" + (f" (absolute {tol[1]:g})" if atol is not None else "")
    msg = (f"agrees at {checked} random points{where_txt} {within}{sizes}; "
           "SymPy could not prove it symbolically") if scalars or indexed else f"equal {within}"
    return Comparison(equivalent=True, message=msg, points=checked)


@dataclass
class Sample:
    """The values of several expressions at one random point: ``values[j]`` is a (kind, number) pair.

    ``point`` is the point for a report (names -> text); ``scalars`` the
    scalar symbols' values, and those of the indexed atoms with free indices
    (``pi[k]`` at the point's k).
    """

    point: dict[str, str]
    scalars: dict[Any, Any]
    values: list[tuple]


def evaluate(result: Result, active: list[Param], exprs: list[sp.Expr], cond: Any, points: int,
             seed: int) -> list[Sample]:
    """``exprs`` at up to ``points`` random points (as :func:`compare` draws them); indexed entries are
    drawn once per point, shared by all the expressions. Points where the last expression (the
    verified result) is undefined are skipped. Returns [] when no point can be sampled."""
    rng = np.random.default_rng(seed)
    indexed = [p for p in active if isinstance(p.symbol, sp.IndexedBase)]
    scalars = [p for p in active if not isinstance(p.symbol, sp.IndexedBase)]
    has_indexed = bool(indexed) or any(e.has(sp.Sum, sp.Product) for e in exprs)
    constraint, simplex = _split_constraint(result.constraint)
    try:
        sample = _sample_points(scalars, sp.And(cond, constraint), rng, points, small_integers=has_indexed)
    except ClaimError:
        return []
    # Indexed atoms with free indices (pi[k], p[k, d]): their value at each point, for the diagnoses' fits.
    free_atoms = [a for a in set().union(*(e.atoms(sp.Indexed) for e in exprs))
                  if all(i.free_symbols <= {p.symbol for p in scalars} for i in a.indices)]
    out = []
    for values in sample or []:
        point = {p.symbol: v for p, v in zip(scalars, values)}
        vals, entries, drawn = _evaluate_many(exprs, point, indexed, rng, simplex)
        if vals[-1][0] in ("nan", "undefined"):
            continue
        shown = {p.name: show(v) for p, v in zip(scalars, values)}
        shown.update(entries)
        subs = {s: _as_number(v, isinstance(v, int)) for s, v in point.items()}
        known = dict(point)
        for a in free_atoms:
            concrete = a.xreplace(subs)
            if concrete in drawn:
                known[a] = drawn[concrete]
        out.append(Sample(shown, known, vals))
    return out


def _sample_points(params, cond, rng, n, small_integers=False) -> list[tuple] | None:
    if not params:
        return [()]
    cols = []
    for p in params:
        a, b = _sampling_interval(p, cond)
        if p.integer or isinstance(p.domain, sp.Range):
            lo, hi = int(math.ceil(a)), int(math.floor(b))
            if small_integers:
                hi = min(hi, max(lo, 1) + MAX_SIZE - 1)
            if hi < lo:
                return None
            cols.append(rng.integers(lo, hi + 1, size=40 * n).astype(float))
        elif p.scale == "log" and a > 0:
            cols.append(np.exp(rng.uniform(math.log(a), math.log(b), size=40 * n)))
        else:
            cols.append(rng.uniform(a, b, size=40 * n))
    draws = np.stack(cols, axis=1)
    if cond is not sp.true:
        try:
            f = _lambdified_condition(tuple(p.symbol for p in params), cond)
            with np.errstate(all="ignore"):
                ok = np.broadcast_to(np.asarray(f(*draws.T), dtype=bool), (draws.shape[0],))
        except Exception:  # noqa: BLE001 - fall back to SymPy truth values
            ok = np.array([bool(cond.xreplace({p.symbol: sp.Float(v) for p, v in zip(params, row)}))
                           for row in draws])
        draws = draws[ok]
    if len(draws) == 0:
        return None
    out = []
    for row in draws[:n]:
        out.append(tuple(int(v) if (p.integer or isinstance(p.domain, sp.Range)) else float(v)
                         for p, v in zip(params, row)))
    return out


@functools.lru_cache(maxsize=256)
def _lambdified_condition(symbols: tuple, cond: Any):
    return sp.lambdify(list(symbols), cond, "numpy")


@functools.lru_cache(maxsize=256)
def _sampling_interval(p: Param, cond: Any) -> tuple[float, float]:
    """The interval of ``p``'s values to sample under ``cond`` (cached: a step-by-step audit compares
    many lines over the same region, and solving ``cond`` for a symbol is SymPy's ``as_set``)."""
    dom = p.domain
    region = univariate_set(cond, p.symbol) if cond is not sp.true else None
    S = dom if region is None else dom.intersect(region)
    if S is sp.S.EmptySet or (S.is_FiniteSet and len(S) == 0):
        raise EmptyRegionError("where", f"{{param}} leaves no value of {p.name} in its domain {dom}")
    lo, hi = p.sampling_bounds()
    R = S.intersect(sp.Interval(lo, hi))
    try:
        a, b = float(R.inf), float(R.sup)
        if R is not sp.S.EmptySet and b > a:
            return _inside(a, b)
    except (TypeError, ValueError):
        pass
    # The region lies outside the usual sampling range: sample its own (finite part of the) extent.
    a, b = S.inf, S.sup
    if a is sp.S.NegativeInfinity and b is sp.S.Infinity:
        return (-10.0, 10.0)
    if a is sp.S.NegativeInfinity:
        return (float(b) - 10.0, float(b))
    if b is sp.S.Infinity:
        return _inside(float(a), float(a) + max(10.0, abs(float(a))))
    return _inside(float(a), float(b))


def _inside(a: float, b: float) -> tuple[float, float]:
    # Open ends: stay a hair inside, where Piecewise boundaries and singular endpoints cannot be hit.
    return (np.nextafter(a, b), np.nextafter(b, a)) if b > a else (a, b)


def _as_number(v: Any, integer: bool) -> sp.Expr:
    return sp.Integer(int(v)) if integer else sp.Float(float(v), DIGITS)


def _split_constraint(constraint: Any) -> tuple[Any, list[tuple[sp.Expr, int, sp.Expr]]]:
    """Split a result's constraint into a scalar part and simplex rules.

    A conjunct ``Eq(Sum(b[..., j, ...], (j, 1, S)), 1)`` (mixture weights
    pi_k, responsibilities eta_ik summing to one) becomes a rule
    ``(b.label, position of j, S)``: sampled entries of ``b`` are normalised
    along that index, or, when ``b`` takes only the values 0 and 1 (a latent
    code z_ik), drawn as a one-hot vector along it. Other conjuncts with
    indexed symbols are ignored.
    """
    if constraint is True or constraint is sp.true:
        return sp.true, []
    parts = constraint.args if isinstance(constraint, sp.And) else (constraint,)
    scalar, rules = [], []
    for c in parts:
        if not c.has(sp.Indexed, sp.Sum, sp.Product, sp.IndexedBase):
            scalar.append(c)
            continue
        if isinstance(c, sp.Eq):
            lhs, rhs = (c.lhs, c.rhs) if c.rhs == 1 else (c.rhs, c.lhs)
            if rhs == 1 and isinstance(lhs, sp.Sum) and len(lhs.limits) == 1 and isinstance(lhs.function, sp.Indexed):
                j, lo, hi = lhs.limits[0]
                idx = list(lhs.function.indices)
                if j in idx and lo == 1:
                    rules.append((lhs.function.base.label, idx.index(j), hi))
    return (sp.And(*scalar) if scalar else sp.true), rules


def _evaluate_pair(claim, verified, point, indexed, rng, simplex=()):
    (c_val, v_val), entries, _ = _evaluate_many([claim, verified], point, indexed, rng, simplex)
    return c_val, v_val, entries


def _evaluate_many(exprs, point, indexed, rng, simplex=()):
    """The value of each expression at ``point``; indexed entries are drawn once, shared by all of them.

    Sums and products are expanded at the point's sizes; entries constrained to
    sum to one are normalised (or one-hot for 0/1 entries).
    """
    subs = {s: _as_number(v, isinstance(v, int)) for s, v in point.items()}
    entries: dict[str, str] = {}
    # The sums are written out at the point's whole numbers (sizes, indices), which many points share
    # (cached), and the real values substituted after.
    whole = tuple(sorted(((s, v) for s, v in subs.items() if v.is_Integer), key=lambda sv: str(sv[0])))
    rest = {s: v for s, v in subs.items() if not v.is_Integer}
    try:
        # Substitution evaluates eagerly (exp of a Float is computed at once): it can overflow.
        done = [_at_whole_numbers(e, whole) for e in exprs]
        done = [d.xreplace(rest) for d in done] if rest else done
    except Exception:  # noqa: BLE001
        return [_value_of(lambda e=e: e.xreplace(subs)) for e in exprs], entries, {}
    if any(d.has(sp.Indexed) for d in done):
        atoms = sorted(set().union(*(d.atoms(sp.Indexed) for d in done)), key=str)
        values = {}

        def draw(a):
            if a not in values:
                prm = next((p for p in indexed if p.symbol == a.base or p.symbol.label == a.base.label), None)
                values[a] = _random_entry(prm, rng)

        for a in atoms:
            draw(a)
        for label, pos, size in simplex:
            size = int(size.xreplace(subs)) if isinstance(size, sp.Basic) else int(size)
            groups: dict[tuple, list] = {}
            for a in [a for a in list(values) if a.base.label == label and len(a.indices) > pos]:
                key = tuple(a.indices[:pos]) + tuple(a.indices[pos + 1:])
                groups.setdefault(key, [])
            prm = next((p for p in indexed if p.symbol.label == label), None)
            binary = prm is not None and prm.domain.is_subset(sp.FiniteSet(0, 1)) is True
            for key in groups:
                members = [_entry_at(label, key, pos, j, atoms) for j in range(1, size + 1)]
                if binary:
                    # 0/1 entries summing to one: a one-hot code (the latent z of a mixture).
                    hot = int(rng.integers(0, size))
                    for n, m in enumerate(members):
                        values[m] = sp.Integer(int(n == hot))
                    continue
                for m in members:
                    draw(m)
                total = sum(values[m] for m in members)
                for m in members:
                    values[m] = values[m] / total
        for a in atoms:
            entries[str(a)] = show(values[a])
        return [_value_of(lambda d=d: d.xreplace(values)) for d in done], entries, values
    return [_value(d) for d in done], entries, {}


@functools.lru_cache(maxsize=256)
def _at_whole_numbers(e: sp.Expr, whole: tuple) -> sp.Expr:
    """``e`` with the whole-number values ``whole`` ((symbol, Integer) pairs) substituted, sums and
    products over the then concrete limits written out."""
    done = e.xreplace(dict(whole))
    return expand_concrete(done) if done.has(sp.Sum, sp.Product, sp.Indexed, sp.Derivative) else done


def _entry_at(label, key: tuple, pos: int, j: int, atoms) -> sp.Indexed:
    """The entry b[key with j inserted at pos], reusing the IndexedBase object found in ``atoms``."""
    base = next(a.base for a in atoms if a.base.label == label)
    idx = list(key)
    idx.insert(pos, sp.Integer(j))
    return base[tuple(idx)] if len(idx) > 1 else base[idx[0]]


def _random_entry(prm, rng) -> sp.Expr:
    if prm is None:
        return sp.Float(rng.uniform(0.1, 0.9), DIGITS)
    dom = prm.domain
    if isinstance(dom, (sp.FiniteSet, sp.Range)):
        items = list(dom)[:50]
        return items[int(rng.integers(0, len(items)))]
    lo, hi = prm.sampling_bounds()
    return sp.Float(rng.uniform(lo, hi), DIGITS)


def _value_of(build) -> tuple:
    try:
        return _value(build())
    except Exception:  # noqa: BLE001 - an overflow while substituting: not a number we can compare
        return ("undefined", None)


def _value(e: sp.Expr) -> tuple:
    try:
        v = sp.N(e, DIGITS)
    except Exception:  # noqa: BLE001 - evaluation failure is "undefined"
        return ("undefined", None)
    if v is sp.nan:
        return ("nan", None)
    if v is sp.zoo:
        return ("zoo", None)
    if v in (sp.oo, -sp.oo):
        return ("inf", 1 if v is sp.oo else -1)
    if v.is_Number:
        return ("real", v)
    if v.free_symbols:
        return ("undefined", None)
    re_, im_ = v.as_real_imag()
    re_, im_ = sp.N(re_, DIGITS), sp.N(im_, DIGITS)
    if re_.is_Number and im_.is_Number:
        if abs(im_) <= ATOL + RTOL * abs(re_):
            return ("real", re_)
        return ("complex", re_ + sp.I * im_)
    return ("undefined", None)


def _agree(a: tuple, b: tuple, rtol: float = RTOL, atol: float = ATOL) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "real":
        x, y = a[1], b[1]
        d = abs(x - y)
        return bool(d <= atol or d <= rtol * max(abs(x), abs(y)))
    if a[0] == "complex":
        d = abs(a[1] - b[1])
        return bool(d <= atol or d <= rtol * max(abs(a[1]), abs(b[1])))
    if a[0] == "inf":
        return a[1] == b[1]
    return a[0] == b[0] and a[0] == "zoo"


def _nicer_counterexample(params, values, claim, verified, cond, constraint, indexed,
                          tol=(RTOL, ATOL)):
    """Round the failing point to few significant digits while it still fails (for a readable report)."""
    if not params:
        return None
    full = sp.And(cond, constraint)
    for digits in (1, 2, 3, 4, 6):
        cand = []
        for p, v in zip(params, values):
            if isinstance(v, int):
                cand.append(v)
            else:
                r = float(f"{v:.{digits}g}")
                cand.append(r)
        try:
            if not all(p.domain.contains(sp.Rational(str(v)) if not isinstance(v, int) else v) == sp.true
                       for p, v in zip(params, cand)):
                continue
            subs = {p.symbol: (sp.Integer(v) if isinstance(v, int) else sp.Rational(str(v)))
                    for p, v in zip(params, cand)}
            if full is not sp.true and full.xreplace(subs) != sp.true:
                continue
            c_val = _value(claim.xreplace(subs))
            v_val = _value(verified.xreplace(subs))
        except Exception:  # noqa: BLE001
            continue
        if v_val[0] not in ("nan", "undefined", "zoo") and not _agree(c_val, v_val, *tol):
            return {p.name: _show_plain(v) for p, v in zip(params, cand)}, c_val, v_val
    return None


def _show_plain(v: Any) -> str:
    if isinstance(v, int):
        return str(v)
    return f"{v:g}"


def show(v: Any) -> str:
    """A value for a report: an integer as it is, anything else to 10 significant digits."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        return f"{v:.10g}"
    try:
        if v.is_Integer:
            return str(v)
        return f"{float(v):.10g}"
    except (TypeError, ValueError):
        return str(v)


def agree(a: tuple, b: tuple, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Whether two values of :func:`evaluate` agree within ``rtol`` (relative) or ``atol``."""
    return _agree(a, b, rtol, atol)


def show_value(val: tuple) -> str:
    """A value of :func:`evaluate` for a report (12 significant digits, or what went wrong)."""
    return _show_val(val)


def _show_val(val: tuple) -> str:
    kind, x = val
    if kind == "real":
        return f"{float(x):.12g}" if abs(x) < 1e300 and (x == 0 or abs(x) > 1e-300) else str(sp.N(x, 12))
    if kind == "inf":
        return "oo" if x > 0 else "-oo"
    if kind == "complex":
        return str(sp.N(x, 12)) + " (not real)"
    if kind == "zoo":
        return "undefined (division by zero)"
    return "could not be evaluated (undefined or overflow)"


def univariate_set(cond: Any, s: sp.Symbol) -> sp.Set | None:
    """The set of ``s`` on which the conjuncts of ``cond`` that mention only ``s`` hold (None: no such conjunct)."""
    parts = cond.args if isinstance(cond, sp.And) else (cond,)
    mine = [c for c in parts if c.free_symbols == {s}]
    if not mine:
        return None
    try:
        return sp.And(*mine).as_set()
    except Exception:  # noqa: BLE001
        return None

