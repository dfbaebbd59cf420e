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

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import mpmath
import sympy as sp

from genverify import registry
from genverify.claims import numeric
from genverify.claims.errors import CheckTimeout, ClaimArgumentError, ClaimError
from genverify.claims.isolation import BudgetExceeded, run_isolated, with_alarm
from genverify.claims.numeric import DIGITS, Counterexample, show, univariate_set
from genverify.claims.parse import parse_claim, parse_condition
from genverify.claims.verdict import Verdict
from genverify.core import Param, ParameterError, Result

__all__ = ["CheckOutcome", "Counterexample", "CheckTimeout", "check", "reference_values",
           "DIGITS", "DEFAULT_TIMEOUT", "DEFAULT_POINTS"]

#: Seconds a whole check may take before it is stopped (exit 2).
DEFAULT_TIMEOUT = 30.0
#: Random points compared (fewer for indexed results, which are expanded at each point).
DEFAULT_POINTS = 100


@dataclass
class CheckOutcome:
    """The outcome of :func:`check`. ``bool(outcome)`` is ``outcome.equivalent``."""

    result_id: str
    claim: str
    equivalent: bool
    message: str
    method: str = ""  # "symbolic", "numeric", "infinite"
    counterexample: Counterexample | None = None
    where: str | None = None
    points: int = 0
    integral: float | None = None
    integral_note: str = ""
    defaults: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.equivalent

    @property
    def verdict(self) -> Verdict:
        """:attr:`Verdict.CORRECT` when equivalent, else :attr:`Verdict.INCORRECT`."""
        return Verdict.CORRECT if self.equivalent else Verdict.INCORRECT

    @property
    def label(self) -> str:
        return "EQUIVALENT" if self.equivalent else "NOT EQUIVALENT"

    def report(self) -> str:
        lines = [self.label, f"  claim:    {self.claim}"]
        if self.where:
            lines.append(f"  where:    {self.where}")
        if self.defaults:
            lines.append("  defaults: " + ", ".join(f"{k} = {v}" for k, v in self.defaults.items()))
        lines.append(f"  {self.message}")
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
          timeout: float = DEFAULT_TIMEOUT, points: int = DEFAULT_POINTS, seed: int = 0,
          isolate: bool = True) -> CheckOutcome:
    """Is ``expr`` (SymPy-style or LaTeX) equal to the registered result ``id`` (on ``where``)?

    Returns a :class:`CheckOutcome`. Raises a ``ValueError`` naming the problem when
    the claim cannot be checked: unknown id (:class:`~genverify.core.UnknownResultError`),
    syntax error, unknown symbol or refused input (:class:`~genverify.claims.errors.ClaimError`),
    the time limit (:class:`CheckTimeout`), or a bad argument
    (:class:`~genverify.core.ParameterError` naming ``expr``, ``where``,
    ``timeout`` or ``points``). ``isolate=False`` runs in this process (no hard
    time limit; for debugging).
    """
    if not isinstance(expr, str):
        raise ClaimArgumentError("expr", f"{{param}} must be a string, got {type(expr).__name__}")
    if where is not None and not isinstance(where, str):
        raise ClaimArgumentError("where", f"{{param}} must be a string, got {type(where).__name__}")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ParameterError("timeout", f"{{param}} must be a positive number of seconds, got {timeout!r}")
    if not (isinstance(points, int) and 1 <= points <= 100_000):
        raise ParameterError("points", f"{{param}} must be an integer in [1, 100000], got {points!r}")
    result = registry.get(id)
    # The derivation is trusted code: compute (and cache) it here, outside the time limit.
    result.expr  # noqa: B018
    args = (result, expr, where, latex, points, seed, timeout)
    if not isolate or not hasattr(os, "fork"):
        return _check_impl(*args)
    return run_isolated(_check_impl, args, timeout)


# ----------------------------------------------------------------- the check


def _symbol_table(result: Result) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for p in result.params:
        table[p.name] = p.symbol
        table.setdefault(str(p.symbol), p.symbol)
    return table


def _check_impl(result: Result, expr: str, where: str | None, latex: bool | None,
                points: int, seed: int, timeout: float) -> CheckOutcome:
    """The check itself (in the isolated child): parse, defaults, infinite case, symbols, numbers, integral."""
    start = time.monotonic()
    if isinstance(result.expr, sp.MatrixBase):
        # kl-forward-fit's (m, s^2): claims are scalar formulas, so there is nothing to compare with.
        raise ClaimError(f"result {result.id!r} is vector-valued ({result.expr.shape[0]} components); "
                         "`check` compares scalar formulas only (see `genverify derive "
                         f"{result.id}` for its components)")
    table = _symbol_table(result)
    claim = parse_claim(expr, table, latex, param="expr")
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
    base = dict(result_id=result.id, claim=str(claim), where=where, defaults=defaults)

    # An infinite result (KL(U[-2,2] || U[0,1]) = oo) is checked as such.
    if verified in (sp.oo, -sp.oo, sp.zoo):
        same = sp.simplify(claim) == verified
        msg = (f"the result is {verified}, and so is the claim" if same
               else f"the result is {verified}; the claim is {sp.N(claim, 12) if claim.is_number else claim}")
        return CheckOutcome(**base, equivalent=bool(same), message=msg, method="infinite",
                            counterexample=None if same else Counterexample({}, show(sp.N(claim, 15)), str(verified)))

    claim_r, verified_r = _restrict(claim, cond), _restrict(verified, cond)

    budget = max(0.2, min(0.4 * timeout, 15.0) - (time.monotonic() - start))
    proved = False
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
        found = numeric.compare(result, active, claim, verified, cond, points, seed)
        outcome = CheckOutcome(**base, equivalent=found.equivalent, method="numeric", message=found.message,
                               points=found.points, counterexample=found.counterexample)
    if result.kind == "density" and result.variable and not where and not claim.has(sp.Indexed):
        outcome.integral, outcome.integral_note = _density_integral(result, active, claim)
    return outcome


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


