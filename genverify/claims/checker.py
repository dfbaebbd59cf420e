"""Check a claimed formula against the registry: ``genverify.check(id, expr)`` (issue 5).

Given a result id and a formula a student wrote, decide whether the formula
equals the verified result on the result's domain (or on the part of it named
by ``where``), and if not, show a point where it fails:

1. Parse the claim safely (:mod:`genverify.claims.parse`; nothing reaches ``eval``).
   Symbols with a default (the Leaky-ReLU slope alpha = 1/10) that the claim
   does not mention are fixed to the default in the verified result.
2. Symbolic: ``simplify(claim - result) == 0`` (after selecting the branches of
   any ``Piecewise`` that cover the ``where`` region) proves equivalence.
3. Otherwise numeric (:mod:`genverify.claims.numeric`): both sides are
   evaluated with 40 significant digits at random points of the domain that
   satisfy the symbols' assumptions, the result's joint constraint and
   ``where``; agreement to 10^-25 relative at every point is EQUIVALENT, the
   first disagreement is the counterexample.
4. For a density, the claim's integral over the variable's domain at reference
   parameter values (the defaults, else 0 or 1 where allowed), e.g. the 5b
   answer ∫ 1/(σ√(2πz)) e^{-(ln z-μ)²/(2σ²)} dz = e^{μ/2+σ²/8} = 1.1331 at μ=0, σ=1.

The whole check runs in a forked child process that is killed after
``timeout`` seconds (:mod:`genverify.claims.isolation`), so no input can hang
the caller.

>>> v = check("cauchy-reciprocal-pdf", r"\\frac{1}{\\pi y^2 (y^{-2} + 1)}")
>>> v.equivalent, v.method
(True, 'symbolic')
"""

from __future__ import annotations

import itertools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import mpmath
import sympy as sp

from genverify import registry
from genverify.claims import numeric
from genverify.claims.answer_tests import LABELS, NUMERIC_RTOL, TESTS, constant_relation, decimal_tolerance
from genverify.claims.diagnose import Diagnosis, agree_everywhere
from genverify.claims.diagnose import diagnose as diagnose_claim
from genverify.claims.errors import CheckTimeout, ClaimArgumentError, ClaimError, UnknownSymbolError
from genverify.claims.isolation import BudgetExceeded, run_isolated, with_alarm
from genverify.claims.numeric import DIGITS, Counterexample, show, show_value, univariate_set
from genverify.claims.parse import parse_claim, parse_condition
from genverify.claims.verdict import Verdict
from genverify.core import Param, ParameterError, Result

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_TIMEOUT",
    "DIGITS",
    "TESTS",
    "CheckOutcome",
    "CheckTimeout",
    "Counterexample",
    "Diagnosis",
    "check",
    "evaluate_derivatives",
    "reference_values",
    "symbol_table",
]

#: Seconds a whole check may take before it is stopped (exit 2).
DEFAULT_TIMEOUT = 30.0
#: Random points compared (fewer for indexed results, which are expanded at each point).
DEFAULT_POINTS = 100


@dataclass
class CheckOutcome:
    """The outcome of :func:`check`. ``bool(outcome)`` is ``outcome.equivalent`` (the test passed).

    ``diagnosis`` says what is wrong when the test fails and SymPy can tell
    (:class:`~genverify.claims.diagnose.Diagnosis`: ``kind``, ``text``,
    ``detail``); the counterexample is there all the same.
    """

    result_id: str
    claim: str
    equivalent: bool
    message: str
    method: str = ""  # "symbolic", "numeric", "infinite", "decimal", "renamed"
    counterexample: Counterexample | None = None
    where: str | None = None
    points: int = 0
    integral: float | None = None
    integral_note: str = ""
    defaults: dict[str, str] = field(default_factory=dict)
    test: str = "equivalent"
    rtol: float | None = None
    diagnosis: Diagnosis | None = None

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def verdict(self) -> Verdict:
        """:attr:`Verdict.CORRECT` when the test passed, else :attr:`Verdict.INCORRECT`."""
        return Verdict.CORRECT if self.equivalent else Verdict.INCORRECT

    @property
    def label(self) -> str:
        yes, no = LABELS.get(self.test, LABELS["equivalent"])
        return yes if self.equivalent else no

    @property
    def diagnosis_text(self) -> str:
        """The diagnosis in words ("" when there is none)."""
        return self.diagnosis.text if self.diagnosis is not None else ""

    def report(self) -> str:
        lines = [self.label, f"  claim:    {self.claim}"]
        if self.where:
            lines.append(f"  where:    {self.where}")
        if self.defaults:
            lines.append("  defaults: " + ", ".join(f"{k} = {v}" for k, v in self.defaults.items()))
        lines.append(f"  {self.message}")
        if self.diagnosis is not None:
            lines.append(f"  diagnosis: {self.diagnosis.text}")
        if self.counterexample is not None:
            ce = self.counterexample
            lines.append("  counterexample: " + (", ".join(f"{k} = {v}" for k, v in ce.point.items()) or "-"))
            lines.append(f"    claimed:  {ce.claimed}")
            lines.append(f"    verified: {ce.verified}")
        if self.integral_note:
            lines.append(f"  {self.integral_note}")
        return "\n".join(lines)


# ----------------------------------------------------------------- public entry point


def check(id: str, expr: str, where: str | None = None, latex: bool | None = None, *,
          test: str = "equivalent", rtol: float | None = None,
          timeout: float = DEFAULT_TIMEOUT, points: int = DEFAULT_POINTS, seed: int = 0,
          isolate: bool = True, diagnose: bool = True) -> CheckOutcome:
    """Does ``expr`` (SymPy-style or LaTeX) pass the answer ``test`` against the registered result ``id``?

    ``test`` is one of :data:`~genverify.claims.answer_tests.TESTS`:
    ``equivalent`` (default), ``up-to-constant``, ``proportional``,
    ``numeric``; ``rtol`` is the relative tolerance of the numeric comparison
    (default 10^-25, for ``numeric`` 10^-9). On ``where`` only, if given. When
    the test fails, the outcome carries a counterexample and, if one is found,
    a diagnosis (``diagnose=False`` skips the search).

    Returns a :class:`CheckOutcome`. Raises a ``ValueError`` naming the problem when
    the claim cannot be checked: unknown id (:class:`~genverify.core.UnknownResultError`),
    syntax error, unknown symbol or refused input (:class:`~genverify.claims.errors.ClaimError`,
    whose ``caret()`` points at the place), the time limit (:class:`CheckTimeout`:
    the claim is undecided, not wrong), or a bad argument
    (:class:`~genverify.core.ParameterError` naming ``expr``, ``where``,
    ``test``, ``rtol``, ``timeout`` or ``points``). ``isolate=False`` runs in
    this process (no hard time limit; for debugging).
    """
    if not isinstance(expr, str):
        raise ClaimArgumentError("expr", f"{{param}} must be a string, got {type(expr).__name__}")
    if where is not None and not isinstance(where, str):
        raise ClaimArgumentError("where", f"{{param}} must be a string, got {type(where).__name__}")
    if test not in TESTS:
        raise ParameterError("test", f"{{param}} must be one of {', '.join(TESTS)}, got {test!r}")
    if rtol is not None and not (isinstance(rtol, (int, float)) and 0 < rtol < 1):
        raise ParameterError("rtol", f"{{param}} must be a number in (0, 1), got {rtol!r}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ParameterError("timeout", f"{{param}} must be a positive number of seconds, got {timeout!r}")
    if not (isinstance(points, int) and 1 <= points <= 100_000):
        raise ParameterError("points", f"{{param}} must be an integer in [1, 100000], got {points!r}")
    result = registry.get(id)
    # The derivation is trusted code: compute (and cache) it here, outside the time limit.
    result.expr  # noqa: B018
    args = (result, expr, where, latex, points, seed, timeout, test, rtol, diagnose)
    if not isolate or not hasattr(os, "fork"):
        return _check_impl(*args)
    return run_isolated(_check_impl, args, timeout)


# ----------------------------------------------------------------- the check


def symbol_table(result: Result) -> dict[str, Any]:
    """Name -> symbol for parsing claims about ``result`` (each parameter by name and by its symbol's name)."""
    table: dict[str, Any] = {}
    for p in result.params:
        table[p.name] = p.symbol
        table.setdefault(str(p.symbol), p.symbol)
    return table


_symbol_table = symbol_table


def evaluate_derivatives(e: sp.Expr) -> sp.Expr:
    """Carry out the derivatives a claim writes (``\\frac{d}{dz} \\ln z`` is 1/z): their value is what is claimed."""
    if not e.has(sp.Derivative):
        return e
    return e.replace(lambda x: isinstance(x, sp.Derivative), lambda x: x.doit())


def _check_impl(result: Result, expr: str, where: str | None, latex: bool | None, points: int, seed: int,
                timeout: float, test: str = "equivalent", rtol: float | None = None,
                want_diagnosis: bool = True) -> CheckOutcome:
    """The check itself (in the isolated child): parse, defaults, infinite case, symbols, numbers, integral."""
    start = time.monotonic()
    if isinstance(result.expr, sp.MatrixBase):
        # kl-forward-fit's (m, s^2): claims are scalar formulas, so there is nothing to compare with.
        raise ClaimError(f"result {result.id!r} is vector-valued ({result.expr.shape[0]} components); "
                         "`check` compares scalar formulas only (see `genverify derive "
                         f"{result.id}` for its components)")
    table = symbol_table(result)
    try:
        claim = parse_claim(expr, table, latex, param="expr")
    except UnknownSymbolError as exc:
        # Perhaps the student's x is the result's z (STACK's SubstEquiv): say so, or refuse as before.
        renamed = _renamed_outcome(result, expr, latex, where, table, seed)
        if renamed is None:
            raise exc from None
        return renamed
    claim = evaluate_derivatives(claim)
    cond = parse_condition(where, table, param="where") if where else sp.true
    verified = result.expr

    mentioned = _mentioned(claim) | _mentioned(cond)
    defaults: dict[str, str] = {}
    subs = {}
    for p in result.params:
        if p.default is not None and p.symbol not in mentioned:
            subs[p.symbol] = p.default
            defaults[p.name] = str(p.default)
    if subs:
        verified = verified.xreplace(subs)
        claim = claim.xreplace(subs)
    active = [p for p in result.params if p.symbol not in subs]
    base = dict(result_id=result.id, claim=str(claim), where=where, defaults=defaults, test=test, rtol=rtol)

    # An infinite result (KL(U[-2,2] || U[0,1]) = oo) is checked as such.
    if verified in (sp.oo, -sp.oo, sp.zoo):
        same = sp.simplify(claim) == verified
        msg = (f"the result is {verified}, and so is the claim" if same
               else f"the result is {verified}; the claim is {sp.N(claim, 12) if claim.is_number else claim}")
        return CheckOutcome(**base, equivalent=bool(same), message=msg, method="infinite",
                            counterexample=None if same else Counterexample({}, show(sp.N(claim, 15)), str(verified)))

    claim_r, verified_r = _restrict(claim, cond), _restrict(verified, cond)
    budget = max(0.2, min(0.4 * timeout, 15.0) - (time.monotonic() - start))
    tolerance = decimal_tolerance(expr) if rtol is None and test in ("equivalent", "numeric") else None
    if tolerance is not None and not _free(verified_r):
        outcome = _decimal_outcome({**base, "claim": expr.strip()}, claim_r, verified_r, tolerance)
    elif test in ("up-to-constant", "proportional"):
        rel = constant_relation(result, active, claim_r, verified_r, cond,
                                "difference" if test == "up-to-constant" else "ratio", points, seed, budget, rtol)
        outcome = CheckOutcome(**base, equivalent=rel.holds, message=rel.message, method=rel.method,
                               points=rel.points, counterexample=rel.counterexample)
    else:
        proved = False
        if test == "equivalent" and (claim_r == verified_r or
                                     not _differs_at_a_few_points(result, active, claim, verified, cond, seed)):
            try:
                diff = with_alarm(budget, _symbolic_difference, claim_r, verified_r)
                proved = diff == 0
            except (BudgetExceeded, Exception):  # noqa: BLE001 - SymPy may fail to simplify; numbers decide then
                proved = False
        if proved:
            outcome = CheckOutcome(**base, equivalent=True, method="symbolic",
                                   message="proved symbolically: simplify(claim - result) = 0"
                                           + (" on the given region" if where else ""))
        else:
            tol = rtol if rtol is not None else (NUMERIC_RTOL if test == "numeric" else None)
            found = numeric.compare(result, active, claim, verified, cond, points, seed, rtol=tol)
            message = found.message if test == "equivalent" else \
                found.message.replace("; SymPy could not prove it symbolically", "")
            outcome = CheckOutcome(**base, equivalent=found.equivalent, method="numeric", message=message,
                                   points=found.points, counterexample=found.counterexample)
    if not outcome.equivalent and want_diagnosis and outcome.method != "decimal":
        left = timeout - (time.monotonic() - start)
        try:
            outcome.diagnosis = with_alarm(max(0.5, min(0.4 * left, 10.0)), diagnose_claim, result, active,
                                           claim_r, verified_r, cond, seed)
        except (BudgetExceeded, Exception):  # noqa: BLE001 - a diagnosis is optional; the verdict stands
            outcome.diagnosis = None
    if result.kind == "density" and result.variable and not where and not claim.has(sp.Indexed):
        outcome.integral, outcome.integral_note = _density_integral(result, active, claim)
    return outcome


#: Points of the quick numeric look before the symbolic proof (:func:`_differs_at_a_few_points`).
SCREEN_POINTS = 3


def _differs_at_a_few_points(result: Result, active: list[Param], claim: sp.Expr, verified: sp.Expr, cond: Any,
                             seed: int) -> bool:
    """Whether the claim already differs from the result at :data:`SCREEN_POINTS` points.

    A claim that differs at a point cannot be proved equal: the numeric comparison (which
    finds that point again) decides, and SymPy's ``simplify`` of a difference that is not
    zero, the slowest step of a check, is skipped. When the points cannot be sampled,
    the proof is tried as before.
    """
    try:
        return not numeric.compare(result, active, claim, verified, cond, SCREEN_POINTS, seed).equivalent
    except Exception:  # noqa: BLE001 - no verdict from the look: the proof and the full comparison decide
        return False


def _free(e: sp.Expr) -> set:
    return e.free_symbols | set(e.atoms(sp.Indexed))


def _decimal_outcome(base: dict, claim: sp.Expr, verified: sp.Expr, tolerance: float) -> CheckOutcome:
    """A decimal claim (1.3863) for a number (log 4): right when it is the number to the digits written."""
    value = sp.N(verified, DIGITS)
    err = abs(sp.N(claim, DIGITS) - value)
    ok = bool(err <= tolerance * (1 + 1e-12))
    shown = f"{sp.sstr(verified)} = {sp.N(verified, 12)}" if not verified.is_Float else sp.sstr(verified)
    msg = (f"equal to the precision written (±{tolerance:.1g}): the result is {shown}" if ok else
           f"not equal to the precision written (±{tolerance:.1g}): the result is {shown}")
    return CheckOutcome(**base, equivalent=ok, method="decimal", message=msg,
                        counterexample=None if ok else Counterexample({}, show(sp.N(claim, 15)),
                                                                      show(value)))


def _renamed_outcome(result: Result, expr: str, latex: bool | None, where: str | None, table: dict,
                     seed: int) -> CheckOutcome | None:
    """The claim uses names the result does not (x for z): the renaming that makes it right, if one does."""
    new: dict[str, sp.Symbol] = {}
    try:
        claim = evaluate_derivatives(parse_claim(expr, table, latex, param="expr", new_symbols=new))
        cond = parse_condition(where, table, param="where") if where else sp.true
    except ClaimError:
        return None
    if not new or len(new) > 4:
        return None
    active = [p for p in result.params if not isinstance(p.symbol, sp.IndexedBase)]
    unused = [p for p in active if p.symbol not in claim.free_symbols]
    verified = _restrict(result.expr, cond)
    defaults = {p.symbol: p.default for p in result.params if p.default is not None and p.symbol not in
                claim.free_symbols and p not in unused}
    for targets in itertools.islice(itertools.permutations(unused, len(new)), 120):
        mapping = {new[n]: t.symbol for n, t in zip(new, targets)}
        candidate = claim.xreplace(mapping).xreplace(defaults)
        if not agree_everywhere(result, list(result.params), candidate, verified.xreplace(defaults), cond, seed):
            continue
        pairs = ", ".join(f"{n} -> {t.name}" for n, t in zip(new, targets))
        names = ", ".join(new)
        ce = _renamed_counterexample(result, claim, verified, mapping, cond, seed)
        return CheckOutcome(
            result_id=result.id, claim=str(claim), where=where, equivalent=False, method="renamed",
            message=f"not equivalent as written: {names} {'is' if len(new) == 1 else 'are'} not among the "
                    f"result's symbols ({', '.join(p.name for p in result.params)})",
            diagnosis=Diagnosis("renamed", f"the claim would be correct with the substitution {pairs} "
                                           "(STACK's SubstEquiv)",
                                {"mapping": {n: t.name for n, t in zip(new, targets)}}),
            counterexample=ce)
    return None


def _renamed_counterexample(result, claim, verified, mapping, cond, seed) -> Counterexample | None:
    """A point where the claim, its own symbols set apart from the result's, differs from the result."""
    samples = numeric.evaluate(result, list(result.params), [verified], cond, 6, seed)
    for a, b in itertools.pairwise(samples):
        point = {s: (sp.Integer(v) if isinstance(v, int) else sp.Float(v, DIGITS)) for s, v in a.scalars.items()}
        other = {new: (sp.Integer(b.scalars[old]) if isinstance(b.scalars[old], int) else
                       sp.Float(b.scalars[old], DIGITS)) for new, old in mapping.items() if old in b.scalars}
        c = numeric._value(claim.xreplace({**point, **other}))
        if not numeric.agree(c, a.values[0]):
            shown = {**a.point, **{str(k): show(v) for k, v in other.items()}}
            return Counterexample(shown, show_value(c), show_value(a.values[0]))
    return None


def _mentioned(e: Any) -> set:
    out = set(getattr(e, "free_symbols", set()))
    for ind in getattr(e, "atoms", lambda *a: set())(sp.Indexed):
        out.add(ind.base)
        out.add(ind.base.label)
    return out


def _symbolic_difference(a: sp.Expr, b: sp.Expr) -> sp.Expr:
    if a == b:
        return sp.Integer(0)
    diff = a - b
    if diff.has(sp.Piecewise):
        diff = sp.piecewise_fold(diff)
    return sp.simplify(diff)


def _restrict(expr: sp.Expr, cond: Any) -> sp.Expr:
    """Replace each univariate Piecewise by the single branch that covers the ``cond`` region, if one does."""
    if cond is sp.true or not expr.has(sp.Piecewise):
        return expr

    def pick(pw: sp.Piecewise) -> sp.Expr:
        syms = pw.free_symbols & cond.free_symbols
        if len(syms) != 1:
            return pw
        (s,) = syms
        try:
            region = univariate_set(cond, s)
            if region is None:
                return pw
            remaining = region
            for e, c in pw.args:
                cs = sp.S.Reals if c is sp.true else c.as_set()
                if remaining.intersect(cs) is sp.S.EmptySet:
                    continue
                if remaining.is_subset(cs):
                    return e
                return pw
        except Exception:  # noqa: BLE001 - leave it to the numbers
            return pw
        return pw

    try:
        return expr.replace(lambda e: isinstance(e, sp.Piecewise), pick)
    except Exception:  # noqa: BLE001
        return expr


# ----------------------------------------------------------------- densities


def reference_values(result: Result, params: list[Param]) -> dict:
    """Parameter values for the integral report: the default, else 0 or 1 if in the domain, else the middle."""
    out = {}
    for p in params:
        if p.name == result.variable:
            continue
        if p.default is not None:
            out[p] = p.default
            continue
        dom = p.domain
        for cand in (sp.Integer(0), sp.Integer(1)):
            if dom.contains(cand) == sp.true and (not hasattr(dom, "boundary") or cand not in dom.boundary
                                                  or isinstance(dom, sp.Range)):
                out[p] = cand
                break
        else:
            lo, hi = p.sampling_bounds()
            out[p] = sp.Rational(str(round((lo + hi) / 2, 3)))
    return out


def _density_integral(result, params, claim) -> tuple[float | None, str]:
    """∫ claim d(variable) over the variable's domain at reference parameter values."""
    var_param = next((p for p in result.params if p.name == result.variable), None)
    if var_param is None:
        return None, ""
    refs = reference_values(result, params)
    f_expr = claim.xreplace({p.symbol: v for p, v in refs.items()})
    if f_expr.free_symbols - {var_param.symbol}:
        return None, ""
    at = ", ".join(f"{p.name} = {v}" for p, v in refs.items())
    dom = var_param.domain
    lo, hi = dom.inf, dom.sup
    cuts = {lo, hi}
    for rel in f_expr.atoms(sp.core.relational.Relational):
        for side in rel.args:
            if side.is_number and side.is_real:
                cuts.add(side)
    finite = [c for c in cuts if c.is_finite]
    if lo.is_infinite or hi.is_infinite:
        cuts.add(sp.Integer(1) if not finite else max(finite) + 1)
        cuts.add(sp.Integer(-1) if not finite else min(finite) - 1)
    pts = sorted((c for c in cuts if (c >= lo) == sp.true and (c <= hi) == sp.true), key=lambda c: float(c))
    try:
        f = sp.lambdify(var_param.symbol, f_expr, "mpmath")

        def integrand(t):
            try:
                return mpmath.re(f(t))
            except ZeroDivisionError:
                # A removable singularity (1/(y^2 (1 + y^-2)) at y = 0): step off it.
                return mpmath.re(f(t + mpmath.mpf("1e-12")))

        with mpmath.workdps(20):
            total = mpmath.quad(integrand, [mpmath.mpf(float(c)) if c.is_finite else
                                                             (mpmath.inf if c > 0 else -mpmath.inf) for c in pts])
        value = float(total)
    except Exception as exc:  # noqa: BLE001 - report instead of failing the whole check
        return None, f"could not integrate the claim over {result.variable} ({type(exc).__name__})"
    span = f"{result.variable} in {_show_set(dom)}"
    cond = f" at {at}" if at else ""
    if math.isfinite(value) and abs(value - 1) <= 1e-8:
        return value, f"as a density: the claim integrates to 1 over {span}{cond}"
    return value, (f"as a density: the claim integrates to {value:.5g} over {span}{cond}, "
                   "not 1" if math.isfinite(value) else
                   f"as a density: the claim's integral over {span}{cond} diverges")


def _show_set(s: sp.Set) -> str:
    return str(s).replace("Interval.open", "").replace("Interval", "")


