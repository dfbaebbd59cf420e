"""Reading the lines of a derivation: relations, declared symbols, equations, definitions (issue 16).

The first half of the step-by-step audit (:mod:`genverify.claims.steps`): a
line's text becomes a :class:`Line` (its value, an equation's residual, the
symbol it solves for, a definition), in a :class:`Context` that holds the
symbols (the result's, those the claims file declares, the definitions made
by earlier lines). :func:`parse_relation` reads how a line follows from
another; :func:`rename_bound` keeps summation indices apart from free symbols
of the same name (``\\sum_{k=1}^K`` in a line about a free ``k``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from genverify.claims import numeric
from genverify.claims.checker import evaluate_derivatives, symbol_table
from genverify.claims.errors import ClaimError
from genverify.claims.parse import parse_claim, parse_condition
from genverify.claims.writeups import StepSpec, parse_symbol_spec
from genverify.core import Param, ParameterError, Result

__all__ = [
    "INDEXED_STEP_POINTS",
    "Context",
    "Line",
    "Relation",
    "declare_symbols",
    "parse_relation",
    "read_line",
    "rename_bound",
    "split_equation",
]

#: Points for comparisons of lines with sums (expanded at each point, a fresh random size each time).
INDEXED_STEP_POINTS = 12


@dataclass
class Relation:
    """How a line follows: ``kind`` (equal, start, identity, derivative, solve, substitute, multiply),
    the symbol or factor (``arg``, as written), the line it refers to (``ref``, 1-based; None: the line
    before), and for a substitution the line substituted into (``into``)."""

    kind: str
    arg: str = ""
    ref: int | None = None
    into: int | None = None

    def describe(self, ref: int | None, into: int | None = None) -> str:
        at = f"line {ref}" if ref else "the line before"
        if self.kind == "start":
            return "start (not derived from a line)"
        if self.kind == "define":
            return "definition"
        if self.kind == "identity":
            return "identity (a side computation)"
        if self.kind == "equal":
            return f"equal to {at}"
        if self.kind == "derivative":
            return f"derivative of {at} with respect to {self.arg}"
        if self.kind == "solve":
            return f"{at} solved for {self.arg}"
        if self.kind == "multiply":
            return f"{at} multiplied by {self.arg}"
        if self.kind == "substitute":
            return f"line {into} with {at} substituted" if into else f"{at} with the definitions substituted"
        return self.kind


def parse_relation(raw: Any) -> Relation:
    """A relation from its YAML form: ``equal``, ``start``, ``derivative x``, ``{solve: x, from: 2}``, ..."""
    if isinstance(raw, str):
        word, _, rest = raw.strip().partition(" ")
        if word in ("equal", "start", "define", "identity", "substitute") and not rest:
            return Relation(word)
        if word in ("derivative", "solve", "multiply") and rest.strip():
            return Relation(word, rest.strip())
        raise ParameterError("steps", f"{{param}}: unknown relation {raw!r}")
    if isinstance(raw, dict):
        for kind in ("derivative", "solve", "multiply"):
            if kind in raw:
                return Relation(kind, str(raw[kind]), raw.get("of") or raw.get("from"))
        if "substitute" in raw:
            sub = raw["substitute"]
            return Relation("substitute", ref=None if sub is True else sub, into=raw.get("into"))
        if "equal" in raw:
            return Relation("equal", ref=None if raw["equal"] is True else raw["equal"])
        if "start" in raw:
            return Relation("start")
        if "define" in raw:
            return Relation("define")
    raise ParameterError("steps", f"{{param}}: unknown relation {raw!r}")


# ----------------------------------------------------------------- symbols


def declare_symbols(specs: dict[str, str]) -> list[Param]:
    """Params for the symbols a claims file declares (``lambda: positive``, ``pi: indexed (0, 1)``)."""
    out = []
    for name, spec in specs.items():
        indexed, kind, interval = parse_symbol_spec(name, spec)
        assumptions: dict[str, bool] = {}
        domain: sp.Set
        if kind == "real":
            domain, assumptions = sp.S.Reals, {"real": True}
        elif kind == "positive":
            domain, assumptions = sp.Interval.open(0, sp.oo), {"positive": True}
        elif kind == "nonnegative":
            domain, assumptions = sp.Interval(0, sp.oo), {"nonnegative": True}
        elif kind == "size":
            domain, assumptions = sp.Range(1, numeric.MAX_SIZE + 1), {"integer": True, "positive": True}
        elif kind == "integer":
            domain, assumptions = sp.Range(-5, 6), {"integer": True}
        else:
            left_open, lo, hi, right_open = interval
            a, b = sp.sympify(lo, rational=True), sp.sympify(hi, rational=True)  # numbers only (checked by the spec)
            domain = sp.Interval(a, b, left_open, right_open)
            assumptions = {"positive": True} if a >= 0 else {"real": True}
        symbol = sp.IndexedBase(name, **assumptions) if indexed else sp.Symbol(name, **assumptions)
        out.append(Param(name, symbol, domain, scale="linear"))
    return out


def rename_bound(e: sp.Expr, taken: set[str]) -> sp.Expr:
    """``e`` with each summation index whose name is also a free symbol's given a primed name (k -> k')."""
    if not e.has(sp.Sum, sp.Product):
        return e
    names = set(taken) | {str(s) for s in e.free_symbols}

    def fresh(var):
        name = str(var)
        while name in names:
            name += "'"
        names.add(name)
        return sp.Symbol(name, integer=True)

    def visit(x, scope: frozenset):
        if isinstance(x, (sp.Sum, sp.Product)):
            limits = []
            body = x.function
            inner = set(scope)
            for lim in x.limits:
                var, lo, hi = lim
                lo, hi = visit(lo, scope), visit(hi, scope)
                if str(var) in taken or str(var) in inner:  # a free symbol's name, or shadowing an outer index
                    new = fresh(var)
                    body = body.xreplace({var: new})
                    var = new
                inner.add(str(var))
                limits.append((var, lo, hi))
            return type(x)(visit(body, frozenset(inner)), *limits)
        if x.args:
            return x.func(*[visit(a, scope) for a in x.args])
        return x

    return visit(e, frozenset())


# ----------------------------------------------------------------- reading a line


_EQ = re.compile(r"(?<![<>=!\\])=(?![=<>])")


def split_equation(text: str) -> list[str]:
    """The parts of ``text`` between top-level ``=`` signs (not inside braces or brackets, not ``<=``)."""
    parts, depth, start = [], 0, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch == "=" and depth == 0 and _EQ.match(text, i) and (i == 0 or text[i - 1] not in "<>=!"):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip().rstrip(",.;").strip() for p in parts]


@dataclass
class Line:
    """One line of a derivation, read: what it says, and (filled by the audit) what it should say."""

    n: int
    spec: StepSpec
    relation: Relation
    text: str
    value: sp.Expr | None = None        # the expression (right-hand side of a labelled or solved line)
    residual: sp.Expr | None = None     # an equation's lhs - rhs
    unknown: sp.Expr | None = None      # a solved line's symbol
    extras: list[sp.Expr] = field(default_factory=list)
    identity: tuple | None = None       # (lhs, rhs) of a side computation
    defines: str = ""
    error: str = ""
    expected: sp.Expr | None = None     # what the line should be, given the line it follows from
    failed: bool = False                # it does not follow from the line it names

    @property
    def main(self) -> sp.Expr | None:
        return self.residual if self.residual is not None else self.value


_NAME_LHS = re.compile(r"^\s*(\\?[A-Za-z]+(?:_\{?[A-Za-z0-9]+\}?)?)\s*(?:\\left)?\s*(?:\(([^()]*)\))?\s*(?:\\right)?\s*$")


def _lhs_name(text: str) -> tuple[str, list[str]] | None:
    """``f_Y(y)`` -> ("f_Y", ["y"]); ``A`` -> ("A", []); ``\\lambda`` -> ("lambda", []); else None."""
    m = _NAME_LHS.match(text.replace("\\right)", ")"))
    if not m:
        return None
    name = m.group(1).lstrip("\\").replace("{", "").replace("}", "")
    args = [a.strip().lstrip("\\") for a in m.group(2).split(",")] if m.group(2) else []
    if any(not re.fullmatch(r"[A-Za-z]+", a) for a in args):
        return None
    return name, args


class Context:
    """The symbols (the result's, the declared ones, definitions) and the comparison settings of an audit."""

    def __init__(self, result: Result, declared: list[Param], where: str | None, assume: str | None,
                 timeout: float, points: int, seed: int):
        self.result = result
        self.params = [*result.params, *declared]
        self.table = symbol_table(result)
        for p in declared:
            self.table[p.name] = p.symbol
        self.taken = {str(p.symbol) for p in self.params if not isinstance(p.symbol, sp.IndexedBase)}
        self.cond = parse_condition(where, self.table, param="where") if where else sp.true
        extra = parse_condition(assume, self.table, param="assume") if assume else sp.true
        constraint = result.constraint if result.constraint is not True else sp.true
        self.ctx = dataclasses.replace(result, params=tuple(self.params), constraint=sp.And(constraint, extra))
        self.timeout, self.points, self.seed = timeout, points, seed

    def points_for(self, *exprs) -> int:
        """Fewer points where sums are expanded at each one (every point is a fresh random size)."""
        indexed = any(e.has(sp.Sum, sp.Product, sp.Indexed) for e in exprs)
        return min(self.points, INDEXED_STEP_POINTS) if indexed else self.points

    def parse(self, text: str, param: str) -> sp.Expr:
        e = parse_claim(text, self.table, None, param=param)
        return rename_bound(evaluate_derivatives(e), self.taken)


def read_line(line: Line, ctx: Context) -> None:
    """Parse the line's text into value / residual / unknown / definition / identity."""
    param = f"line {line.n}"
    parts = split_equation(line.text)
    kind = line.relation.kind
    if kind == "define":
        named = _lhs_name(parts[0]) if len(parts) == 2 else None
        if named is None:
            raise ClaimError(f"line {line.n}: a definition reads name = formula or f(x) = formula")
        if named[0] in ctx.table:
            raise ClaimError(f"line {line.n}: {named[0]} is already a symbol; a definition needs a new name")
        name, args = named
        if args:
            arg_syms = [ctx.table.get(a) or sp.Symbol(a, real=True) for a in args]
            saved = {a: ctx.table.get(a) for a in args}
            ctx.table.update(dict(zip(args, arg_syms)))
            try:
                body = ctx.parse(parts[1], param)
            finally:
                for a, v in saved.items():
                    if v is None:
                        ctx.table.pop(a, None)
                    else:
                        ctx.table[a] = v
            ctx.table[name] = sp.Lambda(tuple(arg_syms), body)
            line.value = body
        else:
            line.value = ctx.parse(parts[1], param)
            ctx.table[name] = line.value
        line.defines = name
        return
    parsed: list[sp.Expr | None] = []
    first_error: ClaimError | None = None
    for k, part in enumerate(parts):
        try:
            parsed.append(ctx.parse(part, param))
        except ClaimError as exc:
            if k > 0 or len(parts) == 1:
                raise
            first_error = exc
            parsed.append(None)  # a label: f_{e^Y}(z), L(\pi, \lambda), \frac{d}{d\pi_k} L
    label = parsed[0] is None
    rest = [p for p in parsed if p is not None]
    if first_error is not None and not rest:
        raise first_error
    if kind == "identity":
        if len(rest) < 2:
            raise ClaimError(f"line {line.n}: an identity needs two sides (a = b)")
        line.identity = (rest[0], rest[1])
        line.value = rest[0]
        return
    if len(rest) == 1:
        line.value = rest[0]
        return
    # "x = ...": solved for a symbol (for solve and substitute always; else when x is no symbol of the result).
    solved = not label and isinstance(rest[0], (sp.Symbol, sp.Indexed)) and (
        kind in ("solve", "substitute") or (kind in ("equal", "start") and (
            isinstance(rest[0], sp.Indexed) or rest[0].free_symbols - ctx.result.expr.free_symbols)))
    if solved:
        line.unknown, line.value, line.extras = rest[0], rest[1], rest[2:]
        return
    if rest[-1] == 0 or not label:
        # An equation: "sum ... = 0", "lhs = rhs".
        line.residual = rest[-2] - rest[-1]
        line.value = rest[-2]
        line.extras = rest[:-2][1:] if label else []
        return
    line.value, line.extras = rest[0], rest[1:]
