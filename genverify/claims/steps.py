"""Step-by-step audit of a derivation: where does the error enter? (STACK's Equiv, for whole chains; issue 16.)

A derivation is a list of lines (:class:`~genverify.claims.writeups.StepSpec`),
each an expression or an equation with a **relation** to a line before:

* ``equal`` (default): the same value as the line before (``{equal: 2}``: as line 2);
* ``start`` / ``define``: not derived from a line; ``f_Y(y) = ...`` or
  ``A = ...`` *defines* ``f_Y`` (a function) or ``A`` for the lines after;
* ``identity``: a side computation, true on its own (``\\frac{d}{dz} \\ln z = \\frac1z``);
* ``{derivative: x}``: the derivative of the line before with respect to ``x``
  (a line ``... = 0`` sets it to zero);
* ``{solve: x}``: ``x = ...`` solves the equation of the line before;
* ``{substitute: N, into: M}``: line ``M`` with the solution of line ``N`` put
  in (``substitute`` alone: the line before with definitions expanded);
* ``{multiply: F}``: the equation of the line before multiplied by ``F``
  (cleared denominators).

A line is written as in the write-up: ``f_{e^Y}(z) = ...`` (a left-hand side
that is no formula is a label), ``\\pi_k = \\frac{N_k}{\\lambda}`` (solved for
a symbol), ``-\\sum_i \\eta \\pi_k + \\lambda = 0`` (an equation),
``p = A = B`` (a chain of equal forms).

:func:`audit_steps` checks every line against the line it names (symbolic,
else 40-digit comparison at random points; sums at concrete sizes), finds the
**first line that does not follow**, says how (a diagnosis, a
counterexample), and whether a failing line follows from the line before *as
it should have been* (2c-ii: the written derivative is wrong, yet the next
line is what the correct derivative gives). The lines of the final chain of
equal forms, and lines with an ``id``, are also compared with the verified
result: "line 3 equals the verified result; line 4 differs by a factor sqrt(z)".
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any

import sympy as sp

from genverify import registry
from genverify.claims import numeric
from genverify.claims.checker import DEFAULT_TIMEOUT
from genverify.claims.diagnose import diagnose
from genverify.claims.errors import ClaimError
from genverify.claims.isolation import BudgetExceeded, run_isolated, with_alarm
from genverify.claims.lines import (
    Context,
    Line,
    Relation,
    declare_symbols,
    parse_relation,
    read_line,
    rename_bound,
    split_equation,
)
from genverify.claims.verdict import StepRow, StepStatus
from genverify.claims.writeups import StepSpec
from genverify.core import Param, ParameterError, Result

__all__ = [
    "Relation",
    "StepsAudit",
    "audit_steps",
    "declare_symbols",
    "parse_relation",
    "rename_bound",
    "split_equation",
]

#: Points for the comparisons between lines (sums are expanded at each point: see INDEXED_STEP_POINTS).
STEP_POINTS = 40


@dataclass
class StepsAudit:
    """The audit of a derivation: a :class:`~genverify.claims.verdict.StepRow` per line, the first failing
    line (0: none) and where the error enters, in words (``summary``)."""

    result_id: str
    rows: list[StepRow]
    first_error: int = 0
    summary: str = ""

    def report(self) -> str:
        lines = [f"{self.result_id}: step-by-step audit"]
        for r in self.rows:
            mark = ">>" if r.n == self.first_error else "  "
            lines.append(f"{mark} {r.n}. {r.label + ': ' if r.label else ''}{r.claim}")
            status = "" if r.status is StepStatus.START else f": {r.status.value}"
            lines.append(f"      {r.relation}{status}" + (f" ({r.evidence})" if r.evidence else ""))
            if r.diagnosis:
                lines.append(f"      diagnosis: {r.diagnosis}")
            if r.corrected:
                lines.append(f"      as it should be: {r.corrected}")
            if r.versus_result:
                lines.append(f"      {r.versus_result}")
        lines.append(self.summary or "every line follows from the one it names")
        return "\n".join(lines)


def audit_steps(id: str, steps: list[StepSpec | dict | str], *, symbols: dict[str, str] | None = None,
                where: str | None = None, assume: str | None = None, rename: dict[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT, points: int = STEP_POINTS, seed: int = 0,
                isolate: bool = True) -> StepsAudit:
    """Audit the derivation ``steps`` of the result ``id``: which line is the first that does not follow?

    ``symbols`` declares the symbols the lines use beyond the result's
    (``{"lambda": "positive", "pi": "indexed (0, 1)"}``), ``where`` restricts
    the comparisons to a region, ``assume`` is a condition on the symbols
    (``d <= D``), ``rename`` the text replacements of the claims file.
    ``timeout`` is per line (the whole audit runs in one child process,
    killed after ``timeout`` times the number of lines). Raises
    :class:`~genverify.core.ParameterError` for a bad argument, and
    :class:`~genverify.claims.errors.CheckTimeout` when the whole audit runs
    out of time (a line that runs out of its own time is "undecided").
    """
    specs = [_spec(s, n) for n, s in enumerate(steps, start=1)] if isinstance(steps, list) else None
    if not specs:
        raise ParameterError("steps", "{param} must be a non-empty list of lines")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ParameterError("timeout", f"{{param}} must be a positive number of seconds, got {timeout!r}")
    for n, s in enumerate(specs, start=1):
        parse_relation(s.relation) if s.relation else None
        if s.relation and isinstance(s.relation, dict):
            for key in ("of", "from", "into", "substitute", "equal"):
                v = s.relation.get(key)
                if v is not None and v is not True and not (isinstance(v, int) and 1 <= v < n):
                    raise ParameterError("steps", f"{{param}}: line {n}: '{key}' must name an earlier line")
    result = registry.get(id)
    result.expr  # noqa: B018 - the trusted derivation, computed outside the time limit
    args = (result, specs, dict(symbols or {}), where, assume, dict(rename or {}), timeout, points, seed)
    if not isolate or not hasattr(os, "fork"):
        return _audit_impl(*args)
    return run_isolated(_audit_impl, args, min(timeout * (len(specs) + 1), 600.0))


def _spec(s: Any, n: int) -> StepSpec:
    if isinstance(s, StepSpec):
        return s
    if isinstance(s, str):
        return StepSpec(claim=s)
    if isinstance(s, dict) and isinstance(s.get("claim"), str):
        return StepSpec(claim=s["claim"], label=str(s.get("label", "")), relation=s.get("relation", "equal"),
                        id=str(s.get("id", "")), note=str(s.get("note", "")))
    raise ParameterError("steps", f"{{param}}: line {n} must be text or a mapping with a 'claim'")


# ----------------------------------------------------------------- the audit


def _audit_impl(result, specs, symbols, where, assume, rename, timeout, points, seed) -> StepsAudit:
    ctx = Context(result, declare_symbols(symbols), where, assume, timeout, points, seed)
    lines: list[Line] = []
    rows: list[StepRow] = []
    for n, spec in enumerate(specs, start=1):
        text = spec.claim
        for old, new in rename.items():
            text = text.replace(old, new)
        rel = parse_relation(spec.relation) if spec.relation else Relation("equal")
        line = Line(n, spec, rel, text)
        lines.append(line)
        row = StepRow(n=n, label=spec.label, claim=spec.claim, relation="", status=StepStatus.NOT_CHECKABLE)
        rows.append(row)
        try:
            read_line(line, ctx)
        except (ClaimError, ValueError, TypeError) as exc:
            line.error = str(exc)
            row.relation = rel.describe(rel.ref)
            row.evidence = f"cannot be read: {exc}"
            continue
        start = time.monotonic()
        try:
            with_alarm(timeout, _check_line, line, lines, row, ctx)
        except BudgetExceeded:
            row.status, row.evidence = StepStatus.UNDECIDED, f"the time limit of {timeout:g} s was reached"
        except (ClaimError, ValueError, TypeError, ArithmeticError) as exc:
            row.status, row.evidence = StepStatus.NOT_CHECKABLE, str(exc)
        if spec.id and line.value is not None and line.residual is None:
            left = max(0.5, timeout - (time.monotonic() - start))
            try:
                row.versus_result = with_alarm(left, _versus, line, ctx, registry.get(spec.id), None)
            except (BudgetExceeded, ClaimError, ValueError, TypeError, ArithmeticError) as exc:
                row.versus_result = f"not compared with {spec.id}: {exc or 'time limit'}"
    for n in _final_run(lines):
        line, row = lines[n - 1], rows[n - 1]
        if row.versus_result or line.value is None or line.residual is not None or line.error:
            continue
        try:
            row.versus_result = with_alarm(timeout, _versus, line, ctx, result, ctx.cond)
        except (BudgetExceeded, ClaimError, ValueError, TypeError, ArithmeticError):
            row.versus_result = ""
    first = next((r.n for r in rows if r.status is StepStatus.FAILS), 0)
    return StepsAudit(result.id, rows, first, _summary(rows, first))


def _prev_main(lines: list[Line], n: int) -> int | None:
    """The line before ``n`` that a relation refers to by default (not an identity)."""
    for k in range(n - 1, 0, -1):
        if lines[k - 1].relation.kind != "identity":
            return k
    return None


def _check_line(line: Line, lines: list[Line], row: StepRow, ctx: Context) -> None:
    rel = line.relation
    ref_n = rel.ref or _prev_main(lines, line.n)
    into_n = rel.into
    row.relation = rel.describe(ref_n, into_n)
    if rel.kind in ("start", "define"):
        row.status = StepStatus.START
        row.relation = f"definition of {line.defines}" if line.defines else "start"
        row.evidence = ""
        return
    if rel.kind == "identity":
        lhs, rhs = line.identity
        _verdict(line, row, ctx, lhs, rhs, None)
        return
    if ref_n is None:
        row.status, row.evidence = StepStatus.START, "the first line"
        return
    ref = lines[ref_n - 1]
    if ref.error or ref.main is None:
        row.status, row.evidence = StepStatus.NOT_CHECKABLE, f"line {ref_n} could not be read"
        return
    actual, expected = _expected(line, ref, lines, into_n, ctx)
    line.expected = expected
    ok = _verdict(line, row, ctx, actual, expected, ref)
    line.failed = not ok
    if not ok and ref.expected is not None and ref.failed:
        # The line before is wrong: does this one follow from it as it should have been?
        fixed = dataclasses.replace(ref, value=ref.expected if ref.residual is None else ref.value,
                                    residual=ref.expected if ref.residual is not None else None)
        try:
            actual2, expected2 = _expected(line, fixed, lines, into_n, ctx)
            if _same(ctx, actual2, expected2):
                row.status = StepStatus.FOLLOWS_CORRECTED
                row.corrected = ""
                row.evidence = (f"does not follow from line {ref_n} as written, but from line {ref_n} as it "
                                "should be: the error there does not carry over")
                row.diagnosis = ""
        except (ClaimError, ValueError, TypeError, ArithmeticError):
            pass


def _expected(line: Line, ref: Line, lines: list[Line], into_n: int | None, ctx: Context):
    """(what the line says, what it should say given ``ref``) for the line's relation."""
    rel = line.relation
    if rel.kind == "equal" or (rel.kind == "substitute" and into_n is None):
        if line.residual is not None and ref.residual is not None:
            return line.residual, ref.residual
        return line.value, ref.value
    if rel.kind == "derivative":
        var = ctx.parse(rel.arg, "derivative")
        if not isinstance(var, (sp.Symbol, sp.Indexed)):
            raise ClaimError(f"line {line.n}: a derivative is with respect to a symbol, not {var}")
        base = ref.value if ref.residual is None else ref.residual
        return line.main, sp.diff(base, var)
    if rel.kind == "multiply":
        factor = ctx.parse(rel.arg, "multiply")
        if line.residual is None or ref.residual is None:
            raise ClaimError(f"line {line.n}: 'multiply' relates two equations (lines of the form a = b)")
        return line.residual, factor * ref.residual
    if rel.kind == "solve":
        var = ctx.parse(rel.arg, "solve")
        if ref.residual is None:
            raise ClaimError(f"line {ref.n} is no equation to solve")
        if line.unknown is None or line.unknown != var:
            raise ClaimError(f"line {line.n} must read {rel.arg} = ... to solve for it")
        return _substitute(ref.residual, var, line.value, ctx), sp.Integer(0)
    if rel.kind == "substitute":
        target = lines[into_n - 1]
        if ref.unknown is None:
            raise ClaimError(f"line {ref.n} solves for no symbol (write it as x = ...)")
        if target.main is None:
            raise ClaimError(f"line {into_n} could not be read")
        base = target.value if target.residual is None or line.residual is None else target.residual
        return line.main, _substitute(base, ref.unknown, ref.value, ctx)
    raise ClaimError(f"unknown relation {rel.kind}")


def _substitute(e: sp.Expr, unknown: sp.Expr, value: sp.Expr, ctx: Context) -> sp.Expr:
    """``e`` with ``unknown`` := ``value``; an indexed unknown ``pi[k]`` replaces every ``pi[j]`` by value(k=j)."""
    # The value's summation indices renamed apart from every name in e (bound ones too: no capture).
    value = rename_bound(value, ctx.taken | {str(s) for s in e.atoms(sp.Symbol)})
    if isinstance(unknown, sp.Indexed):
        free = [i for i in unknown.indices if isinstance(i, sp.Symbol)]

        def put(x):
            return value.xreplace(dict(zip(free, x.indices)))

        return e.replace(lambda x: isinstance(x, sp.Indexed) and x.base == unknown.base
                         and len(x.indices) == len(unknown.indices), put)
    return e.xreplace({unknown: value})


def _active(ctx: Context, *exprs) -> list[Param]:
    """The params the expressions (and the constraints, whose sizes the sampling needs) mention."""
    used = set()
    constraint = ctx.ctx.constraint
    for e in (*exprs, constraint if isinstance(constraint, sp.Basic) else sp.true):
        used |= e.free_symbols
        used |= {a.base for a in e.atoms(sp.Indexed)}
        used |= {a.base.label for a in e.atoms(sp.Indexed)}
    return [p for p in ctx.params if p.symbol in used or (isinstance(p.symbol, sp.IndexedBase)
                                                         and p.symbol.label in used)]


def _same(ctx: Context, a: sp.Expr, b: sp.Expr) -> bool:
    if a is None or b is None:
        return False
    active = _active(ctx, a, b, ctx.cond)
    try:
        found = numeric.compare(ctx.ctx, active, a, b, ctx.cond, min(ctx.points, 12), ctx.seed + 3,
                                both_defined=True)
    except ClaimError:
        return False
    return found.equivalent


def _verdict(line: Line, row: StepRow, ctx: Context, actual: sp.Expr, expected: sp.Expr, ref) -> bool:
    """Compare ``actual`` with ``expected``; fill the row (status, evidence, diagnosis). True when they agree."""
    proved = False
    if not actual.has(sp.Sum, sp.Product, sp.Indexed):
        try:
            proved = with_alarm(min(2.0, ctx.timeout / 4), lambda: sp.simplify(actual - expected) == 0)
        except (BudgetExceeded, Exception):  # noqa: BLE001 - the numbers decide then
            proved = False
    extras_ok = True
    if proved:
        row.status, row.evidence = StepStatus.FOLLOWS, "proved symbolically"
    else:
        active = _active(ctx, actual, expected, ctx.cond)
        found = numeric.compare(ctx.ctx, active, actual, expected, ctx.cond, ctx.points_for(actual, expected),
                                ctx.seed, both_defined=True)
        if found.equivalent:
            row.status, row.evidence = StepStatus.FOLLOWS, found.message
        elif line.relation.kind == "equal" and line.residual is not None and ref is not None \
                and ref.residual is not None and _proportional(ctx, actual, expected):
            row.status, row.evidence = StepStatus.FOLLOWS, "the same equation up to a constant factor"
        else:
            row.status = StepStatus.FAILS
            ref_name = "the line as it should be" if ref is None else f"line {ref.n}"
            if line.relation.kind not in ("equal", "substitute"):
                ref_name = "what it should be"
            ce = found.counterexample
            row.evidence = (f"at {', '.join(f'{k} = {v}' for k, v in ce.point.items()) or 'every point'}: "
                            f"this line {ce.claimed}, {ref_name} {ce.verified}") if ce else found.message
            d = diagnose(ctx.ctx, active, actual, expected, ctx.cond, ctx.seed, names=("this line", ref_name))
            row.diagnosis = d.text if d is not None else ""
            row.corrected = _corrected(line, d, expected)
            return False
    for k, extra in enumerate(line.extras, start=2):
        if not _same(ctx, line.value, extra):
            extras_ok = False
            row.status = StepStatus.FAILS
            row.evidence = f"its own parts differ: part {k} is not equal to part 1"
    return extras_ok


def _corrected(line: Line, d, expected: sp.Expr) -> str:
    """The line as it should be: the diagnosis's repair of the line as written, else the expected formula
    when it reads plainly (no Kronecker deltas of a derivative of a sum); a solution is not shown."""
    if line.relation.kind == "solve":
        return ""
    text = d.detail.get("corrected", "") if d is not None else ""
    if not text:
        plain = expected.doit() if expected.has(sp.KroneckerDelta) else expected
        if plain.has(sp.KroneckerDelta, sp.Piecewise):
            return ""
        text = _show(plain)
    return f"{text} = 0" if line.residual is not None else text


def _proportional(ctx: Context, a: sp.Expr, b: sp.Expr) -> bool:
    samples = numeric.evaluate(ctx.ctx, _active(ctx, a, b, ctx.cond), [a, b], ctx.cond, 12, ctx.seed + 11)
    ratios = [x[1] / y[1] for x, y in (s.values for s in samples) if x[0] == y[0] == "real" and y[1] != 0]
    return len(ratios) >= 3 and ratios[0] != 0 and all(abs(r - ratios[0]) <= 1e-20 * abs(ratios[0])
                                                       for r in ratios)


def _show(e: sp.Expr | None) -> str:
    return "" if e is None else sp.sstr(e)


def _final_run(lines: list[Line]) -> list[int]:
    """The last main line and the lines it equals through a run of ``equal`` relations (to its start)."""
    mains = [ln for ln in lines if ln.relation.kind != "identity" and not ln.defines]
    if not mains:
        return []
    out = [mains[-1].n]
    cur = mains[-1]
    while cur.relation.kind in ("equal", "substitute") and cur.relation.into is None:
        ref_n = cur.relation.ref or _prev_main(lines, cur.n)
        if ref_n is None:
            break
        cur = lines[ref_n - 1]
        if cur.defines:
            break
        out.append(cur.n)
    return sorted(out)


def _versus(line: Line, ctx: Context, result: Result, cond) -> str:
    """"equals the verified result" / "differs from ...: diagnosis" for the line's value against ``result``."""
    target = result.expr
    by_name = {p.name: p.symbol for p in ctx.params}
    target = target.xreplace({p.symbol: by_name[p.name] for p in result.params if p.name in by_name})
    target = rename_bound(target, ctx.taken)
    value = line.value
    known = {p.symbol for p in ctx.params if not isinstance(p.symbol, sp.IndexedBase)}
    known |= {p.symbol.label for p in ctx.params if isinstance(p.symbol, sp.IndexedBase)}
    bound = {lim[0] for s in value.atoms(sp.Sum, sp.Product) for lim in s.limits}
    foreign = {s for s in value.free_symbols if isinstance(s, sp.Symbol) and not isinstance(s, sp.Indexed)
               and s not in known and s not in bound}
    if foreign:
        names = ", ".join(sorted(map(str, foreign)))
        return f"not compared with {'the verified result' if result is ctx.result else result.id} (the line " \
               f"uses {names})"
    cond = cond if cond is not None else sp.true
    from genverify.claims.checker import _restrict  # the same branch selection as a claim's check

    value_r, target_r = _restrict(value, cond), _restrict(target, cond)
    active = _active(ctx, value_r, target_r, cond)
    name = "the verified result" if result is ctx.result else f"the result {result.id}"
    ctx_result = ctx.ctx  # the entry's symbols and constraints (the other result's are renamed onto them)
    found = numeric.compare(ctx_result, active, value_r, target_r, cond, ctx.points_for(value_r, target_r),
                            ctx.seed + 5)
    if found.equivalent:
        return f"equals {name}"
    d = diagnose(ctx_result, active, value_r, target_r, cond, ctx.seed, names=("the line", name))
    return f"differs from {name}" + (f": {d.text}" if d else
                                     f" ({found.counterexample.describe()})" if found.counterexample else "")


def _summary(rows: list[StepRow], first: int) -> str:
    if not first:
        undecided = [r.n for r in rows if r.status is StepStatus.UNDECIDED]
        unreadable = [r.n for r in rows if r.status is StepStatus.NOT_CHECKABLE]
        if undecided or unreadable:
            parts = []
            if undecided:
                parts.append("undecided at line(s) " + ", ".join(map(str, undecided)))
            if unreadable:
                parts.append("not checkable at line(s) " + ", ".join(map(str, unreadable)))
            return "no line found wrong; " + "; ".join(parts)
        return "every line follows from the one it names"
    row = rows[first - 1]
    label = f" ({row.label})" if row.label else ""
    what = row.relation if row.relation.startswith(("equal", "line", "identity")) else "the " + row.relation
    text = f"the error enters at line {first}{label}: it is not {what}"
    before = rows[first - 2] if first >= 2 else None
    if before is not None and before.versus_result.startswith("equals"):
        text = (f"the error enters at line {first}{label}: line {before.n} {before.versus_result}; "
                f"line {first} is not {what}")
    if row.diagnosis:
        text += f": {row.diagnosis}"
    elif row.versus_result.startswith("differs"):
        text += f"; it {row.versus_result}"
    later = [r.n for r in rows[first:] if r.status is StepStatus.FOLLOWS_CORRECTED]
    if later:
        text += (f". Line {later[0]} follows from line {later[0] - 1} as it should be: the error does not "
                 "carry over")
    more = [r.n for r in rows[first:] if r.status is StepStatus.FAILS]
    if more:
        text += f". Also wrong: line(s) {', '.join(map(str, more))}"
    return text
