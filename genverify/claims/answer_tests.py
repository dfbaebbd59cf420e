"""Answer tests other than equivalence, as STACK and WeBWorK offer them (issue 16, item 2).

``check(..., test=...)`` picks one:

* ``equivalent`` (default; STACK's AlgEquiv): symbolic, else 40-digit
  comparison at random points (``rtol`` loosens the numeric comparison);
* ``numeric`` (STACK's NumRelative, WeBWorK's tolerances): the numeric
  comparison only, within ``rtol`` (default :data:`NUMERIC_RTOL`);
* ``up-to-constant`` (STACK's Int: an antiderivative is right up to its
  constant): ``claim - result`` does not depend on the variable (a density's
  or cdf's variable; every symbol for other results);
* ``proportional``: ``claim / result`` is a non-zero constant in the same
  sense (a density right up to normalisation passes).

A claim that is a bare decimal number (``1.3863``) for a result without free
symbols (``kl-uniform-forward = log 4``) is compared to the precision it is
written with: half a unit in its last digit (:func:`decimal_tolerance`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import sympy as sp

from genverify.claims import numeric
from genverify.claims.isolation import BudgetExceeded, with_alarm
from genverify.claims.numeric import Counterexample, show_value
from genverify.core import Param, Result

__all__ = ["LABELS", "NUMERIC_RTOL", "TESTS", "Relation", "constant_relation", "decimal_tolerance"]

#: The answer tests, by the name ``check(test=...)`` and ``--test`` take.
TESTS = ("equivalent", "up-to-constant", "proportional", "numeric")
#: What a passed / failed test is called in a report.
LABELS = {
    "equivalent": ("EQUIVALENT", "NOT EQUIVALENT"),
    "numeric": ("NUMERICALLY EQUAL", "NOT NUMERICALLY EQUAL"),
    "up-to-constant": ("EQUAL UP TO A CONSTANT", "NOT EQUAL UP TO A CONSTANT"),
    "proportional": ("PROPORTIONAL", "NOT PROPORTIONAL"),
}
#: Default relative tolerance of the ``numeric`` test.
NUMERIC_RTOL = 1e-9
# Agreement of two values of a difference or ratio (40 digits computed).
_TOL = 1e-20

_DECIMAL = re.compile(r"^\s*\$?\s*([+-]?)(\d*)\.(\d+)(?:[eE]([+-]?\d+))?\s*\$?\s*$")


def decimal_tolerance(text: str) -> float | None:
    """Half a unit in the last written digit of a bare decimal claim (``1.3863`` -> 5e-5), else None."""
    m = _DECIMAL.match(text.replace("\u2212", "-"))
    if not m:
        return None
    exponent = int(m.group(4) or 0)
    return 0.5 * 10.0 ** (exponent - len(m.group(3)))


@dataclass
class Relation:
    """Whether ``claim - result`` (or ``claim / result``) is constant, the constant, and a counterexample."""

    holds: bool
    message: str
    method: str
    points: int = 0
    constant: str = ""
    counterexample: Counterexample | None = None


def constant_relation(result: Result, active: list[Param], claim: sp.Expr, verified: sp.Expr, cond: Any,
                      kind: str, points: int, seed: int, budget: float, rtol: float | None = None) -> Relation:
    """Is ``claim - verified`` (``kind="difference"``) or ``claim / verified`` (``"ratio"``) constant?

    Constant means: independent of the result's variable when it has one
    (the parameters may enter the constant), else of every symbol. Symbolic
    first (within ``budget`` seconds), else at random pairs of points that
    differ in those symbols only.
    """
    what = "claim - result" if kind == "difference" else "claim / result"
    moving = _moving(result, active)
    f = (claim - verified) if kind == "difference" else (claim / verified)
    start = time.monotonic()
    try:
        simple = with_alarm(budget, sp.simplify, f)
        if not (simple.free_symbols & {p.symbol for p in moving}) and not simple.has(sp.Indexed) \
                and simple.is_finite is not False and not (kind == "ratio" and simple == 0):
            return Relation(True, f"proved symbolically: {what} = {sp.sstr(simple)}", "symbolic",
                            constant=sp.sstr(simple))
    except (BudgetExceeded, Exception):  # noqa: BLE001, S110 - SymPy may fail to simplify: the numbers decide
        pass
    tol = _TOL if rtol is None else rtol
    samples = numeric.evaluate(result, active, [claim, verified], cond, points, seed)
    pairs = _pairs(result, active, moving, samples, claim, verified, cond)
    checked = 0
    for (p1, c1, v1), (p2, c2, v2) in pairs:
        if time.monotonic() - start > 4 * budget:
            break
        vals = []
        for c, v in ((c1, v1), (c2, v2)):
            if c[0] != "real" or v[0] != "real" or (kind == "ratio" and v[1] == 0):
                break
            vals.append(c[1] - v[1] if kind == "difference" else c[1] / v[1])
        if len(vals) < 2:
            continue
        checked += 1
        a, b = vals
        if kind == "ratio" and a == 0:
            return Relation(False, f"{what} = 0 at {_at(p1)}: not a non-zero constant", "numeric", checked,
                            counterexample=Counterexample(p1, show_value(c1), show_value(v1)))
        if abs(a - b) > tol * max(abs(a), abs(b), 1e-30 if kind == "difference" else 0):
            return Relation(False, f"{what} is not constant: {numeric.show(a)} at {_at(p1)} but "
                                   f"{numeric.show(b)} at {_at(p2)}", "numeric", checked,
                            counterexample=Counterexample(p2, show_value(c2), show_value(v2)))
        last = a
    if checked == 0:
        return Relation(False, f"{what} could not be evaluated at any sampled point", "numeric")
    by = "the variable " + result.variable if result.variable and len(moving) == 1 else "the symbols"
    const = sp.sstr(sp.nsimplify(float(last), [sp.pi, sp.E, sp.sqrt(2), sp.log(2)], tolerance=1e-12))
    return Relation(True, f"{what} = {const} at {checked} random pairs of points that differ in {by}",
                    "numeric", checked, constant=const)


def _moving(result: Result, active: list[Param]) -> list[Param]:
    if result.variable:
        var = [p for p in active if p.name == result.variable]
        if var:
            return var
    return list(active)


def _pairs(result, active, moving, samples, claim, verified, cond):
    """Pairs of points that differ in the ``moving`` symbols only (every pair of samples, if all move)."""
    if len(moving) == len(active):
        return list(zip([(s.point, *s.values) for s in samples[::2]], [(s.point, *s.values) for s in samples[1::2]]))
    full = sp.And(cond, result.constraint if result.constraint is not True else sp.true)
    out = []
    for a, b in zip(samples, samples[1:] + samples[:1]):
        point = dict(a.scalars)
        for p in moving:
            point[p.symbol] = b.scalars[p.symbol]
        subs = {s: (sp.Integer(v) if isinstance(v, int) else sp.Float(v, numeric.DIGITS)) for s, v in point.items()}
        if full is not sp.true and full.xreplace(subs) != sp.true:
            continue
        c, v = numeric._value(claim.xreplace(subs)), numeric._value(verified.xreplace(subs))
        shown = {p.name: numeric.show(point[p.symbol]) for p in active if p.symbol in point}
        out.append(((a.point, *a.values), (shown, c, v)))
    return out


def _at(point: dict) -> str:
    return ", ".join(f"{k} = {v}" for k, v in point.items()) or "the only point"
