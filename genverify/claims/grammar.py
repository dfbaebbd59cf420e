"""The recursive-descent machinery both claim notations share: conditions, sums, products, powers.

A :class:`Parser` reads the tokens of :mod:`genverify.claims.lexer` and
builds the SymPy tree itself, from a fixed table of functions
(:data:`FUNCS1`) and the result's own symbols; it never calls ``eval``,
``sympify`` or ``parse_expr``. The grammar common to both notations is::

    condition   := conjunction ("or" conjunction)*
    conjunction := relation ("and" relation)*
    relation    := "True" | "False" | "(" condition ")" | expression (relop expression)*
    expression  := term (("+" | "-") term)*
    term        := factor (("*" | "/" | implicit) factor)*      2 pi z = 2*pi*z
    factor      := ("-" | "+") factor | power
    power       := postfix ("^" | "**") exponent
    postfix     := name [indices] | atom
    atom        := number | "(" expression ")" | "|" expression "|" | ...

Each notation is a subclass that fills in its own rules through the hooks
below (what an exponent is, which names are functions, how indices are
written, what ``apply_function`` reads):
:class:`~genverify.claims.latex_grammar.LatexParser` and
:class:`~genverify.claims.python_grammar.PythonParser`.

Every numeric power and product is checked against the lexer's limits
(:func:`power`, :func:`check_number_size`, :func:`factorial`), and every
nesting level against :data:`~genverify.claims.lexer.MAX_DEPTH`.

(Over 500 lines: the rules of one recursive-descent grammar call one another,
and its error reporting (positions, the closest known name) belongs with them.)
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import sympy as sp

from genverify.claims.errors import POS, ClaimRefused, ClaimSyntaxError, UnknownSymbolError
from genverify.claims.lexer import MAX_DEPTH, MAX_DIGITS, MAX_EXPONENT, Token, number, tokenize

__all__ = [
    "FUNCS1",
    "FUNCS_N",
    "RELATIONS",
    "Parser",
    "check_number_size",
    "factorial",
    "is_condition",
    "power",
    "relation",
]

#: Functions of one argument, by the names either notation uses for them.
FUNCS1: dict[str, Any] = {
    "exp": sp.exp, "ln": sp.log, "sqrt": sp.sqrt, "cbrt": sp.cbrt,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
    "asin": sp.asin, "acos": sp.acos, "atan": sp.atan, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh, "acosh": sp.acosh, "atanh": sp.atanh,
    "abs": sp.Abs, "Abs": sp.Abs, "erf": sp.erf, "erfc": sp.erfc, "sign": sp.sign, "sgn": sp.sign,
    "arcsinh": sp.asinh, "arccosh": sp.acosh, "arctanh": sp.atanh, "acot": sp.acot, "arccot": sp.acot,
    "asec": sp.asec, "acsc": sp.acsc, "arcsec": sp.asec, "arccsc": sp.acsc,
    "log10": lambda x: sp.log(x) / sp.log(10), "log2": lambda x: sp.log(x) / sp.log(2),
}
#: Functions of several arguments (PrairieLearn's min/max/atan2), by name -> (function, allowed counts).
FUNCS_N: dict[str, tuple[Any, tuple[int, ...] | None]] = {
    "min": (sp.Min, None), "max": (sp.Max, None), "Min": (sp.Min, None), "Max": (sp.Max, None),
    "atan2": (sp.atan2, (2,)), "arctan2": (sp.atan2, (2,)),
}
#: Inverse functions written as a power -1 (``sin^-1 x``, ``\cos^{-1}``).
INVERSE: dict[str, Any] = {"sin": sp.asin, "cos": sp.acos, "tan": sp.atan, "sinh": sp.asinh, "cosh": sp.acosh,
                           "tanh": sp.atanh}
#: Comparison operators written as operator tokens.
RELATIONS = ("<", "<=", ">", ">=", "==", "=", "!=")
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?")
# Words that end an implicit product (``x for x > 0``, ``a and b``).
_KEYWORDS = ("and", "or", "for", "if", "otherwise", "True", "False")


class Parser:
    """Shared rules; a subclass per notation supplies the hooks marked "notation hook"."""

    #: Whether the tokenizer reads LaTeX (commands, single-letter names).
    latex = False

    def __init__(self, text: str, symbols: Mapping[str, Any]):
        self.symbols = dict(symbols)
        self.toks = tokenize(text, self.latex)
        self.i = 0
        self.depth = 0
        self.abs_depth = 0  # inside |...|: a further | closes it rather than starting a factor
        self.bound: list[dict[str, sp.Symbol]] = []  # summation indices in scope
        #: When a dict: unknown plain names become new real symbols, collected here (renamed-variable search).
        self.new_symbols: dict[str, sp.Symbol] | None = None

    # -- tokens -----------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_cmd(self, *names: str) -> bool:
        return self.tok.kind == "cmd" and self.tok.value in names

    def is_name(self, word: str) -> bool:
        t = self.tok
        return (t.kind == "name" and t.value == word) or (t.kind == "text" and t.value.strip() == word)

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.error(f"expected {op!r}")
        self.advance()

    def error(self, msg: str) -> ClaimSyntaxError:
        t = self.tok
        where = "end of input" if t.kind == "end" else f"{t.value!r} at position {POS}"
        return ClaimSyntaxError(f"{msg} (found {where})", pos=t.pos)

    def skip_noise(self) -> None:
        while self.at_noise():
            self.advance()

    @contextlib.contextmanager
    def nest(self) -> Iterator[None]:
        """One level deeper; refused beyond :data:`~genverify.claims.lexer.MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ClaimRefused(f"formula nested deeper than {MAX_DEPTH} levels")
        try:
            yield
        finally:
            self.depth -= 1

    # -- names ------------------------------------------------------------
    def lookup(self, name: str) -> Any | None:
        for scope in reversed(self.bound):
            if name in scope:
                return scope[name]
        return self.symbols.get(name)

    def fallback(self, name: str, pos: int) -> Any:
        """An unknown ``name``: a new symbol when collecting them (:attr:`new_symbols`), else the error."""
        if self.new_symbols is not None and _PLAIN_NAME.fullmatch(name):
            sym = self.new_symbols.setdefault(name, sp.Symbol(name, real=True))
            self.symbols[name] = sym
            return sym
        raise self.unknown(name, pos)

    def unknown(self, name: str, pos: int) -> UnknownSymbolError:
        """Unknown ``name``: the message names the closest known symbol or function, and all the symbols."""
        symbols = sorted(n for n, v in self.symbols.items() if not isinstance(v, sp.Lambda))
        functions = sorted(n for n, v in self.symbols.items() if isinstance(v, sp.Lambda))
        known = ", ".join(symbols) or "none: the result is a constant"
        if functions:
            known += "; functions: " + ", ".join(functions)
        hint = ""
        lower = {n.lower(): n for n in symbols + functions}
        close = difflib.get_close_matches(name, symbols + functions + sorted(FUNCS1) + ["pi"], n=1, cutoff=0.6)
        if name.lower() in lower and lower[name.lower()] != name:
            hint = f"; did you mean {lower[name.lower()]!r}?"
        elif close:
            hint = f"; did you mean {close[0]!r}?"
        return UnknownSymbolError(f"unknown symbol {name!r} at position {POS}{hint} (the result's symbols are: "
                                  f"{known})", pos=pos)

    # -- notation hooks (the defaults are the rules both notations share) ---
    def at_noise(self) -> bool:
        """Whether the current token carries no meaning (LaTeX spacing)."""
        return False

    def at_or(self) -> bool:
        return self.is_name("or")

    def at_and(self, allow_comma: bool) -> bool:
        return self.is_op("&&", "\\&", "&") or self.is_name("and") or (allow_comma and self.is_op(","))

    def at_times(self) -> bool:
        return self.is_op("*")

    def relation_op(self) -> str | None:
        """Consume and return a comparison operator (``<``, ``<=``, ...) at the cursor, if there is one."""
        if self.tok.kind == "op" and self.tok.value in RELATIONS:
            return self.advance().value
        return None

    def is_relation_token(self, t: Token) -> bool:
        return t.kind == "op" and t.value in ("<", "<=", ">", ">=", "==", "!=", "&", "|")

    def truth_value(self) -> Any | None:
        """Consume a literal ``True``/``False`` (``otherwise``) and return it, if there is one."""
        t = self.tok
        if t.kind == "name" and t.value in ("True", "true", "otherwise", "else"):
            self.advance()
            return sp.true
        if t.kind == "name" and t.value in ("False", "false"):
            self.advance()
            return sp.false
        return None

    def membership(self, x: sp.Expr) -> Any | None:
        """A condition ``x in ...`` starting at the cursor, if the notation has one."""
        return None

    def starts_atom(self) -> bool:
        """Whether the current token starts a factor of an implicit product (``2 pi z``)."""
        t = self.tok
        if t.kind in ("num", "name"):
            return not (t.kind == "name" and t.value in _KEYWORDS)
        return t.kind == "op" and t.value == "("

    def parse_exponent(self) -> Any:
        raise NotImplementedError

    def parse_inner(self) -> Any:
        """The expression between a pair of delimiters."""
        return self.parse_additive()

    def starts_name(self) -> bool:
        return self.tok.kind == "name"

    def read_name(self) -> tuple[str, int, str | None]:
        """Read a name -> (name, position, accent)."""
        t = self.tok
        if t.kind == "name":
            self.advance()
            return t.value, t.pos, None
        raise self.error("expected a name")

    def is_builtin(self, name: str) -> bool:
        """Whether ``name`` is a constant or function of the notation (and not one of the result's symbols)."""
        raise NotImplementedError

    def parse_builtin(self, name: str, pos: int) -> Any:
        raise NotImplementedError

    def name_candidates(self, name: str, accent: str | None) -> list[str]:
        """The symbol names ``name`` may stand for; the last one found wins."""
        return [name]

    def resolve_subscript(self, base: Any, name: str, pos: int) -> tuple[Any, str]:
        """A subscript that joins the name (``\\sigma_1`` names sigma_1); no change by default."""
        return base, name

    def read_index_group(self, upper: list, lower: list) -> bool:
        """Read one group of indices of an indexed symbol into ``upper``/``lower``; False when there is none."""
        if self.is_op("[") or (self.is_op("(") and not upper and not lower):
            closing = "]" if self.advance().value == "[" else ")"
            lower.extend(self.index_items(closing))
            return True
        return False

    def split_bars(self) -> None:
        """Read the token ``||`` at the cursor as two bars (nested absolute values, not "or")."""
        t = self.tok
        self.toks[self.i:self.i + 1] = [Token("op", "|", t.pos), Token("op", "|", t.pos + 1)]

    def close_abs(self, closer: str) -> None:
        if closer == "|" and self.is_op("||"):
            self.split_bars()  # |x + |y||
        if closer == "|" and self.is_op("|"):
            self.advance()
            return
        raise self.error("expected a closing |")

    def apply_function(self, name: str, pos: int) -> Any:
        """Read the argument(s) of the function ``name`` (just read) and apply it."""
        raise NotImplementedError

    # -- conditions -------------------------------------------------------
    def parse_expression_top(self) -> sp.Expr:
        e = self.parse_additive()
        self.skip_noise()
        if self.tok.kind != "end":
            raise self.error("unexpected input after the formula")
        return self.as_expr(e)

    def parse_condition_top(self) -> Any:
        c = self.parse_condition(allow_comma=True)
        self.skip_noise()
        if self.tok.kind != "end":
            raise self.error("unexpected input after the condition")
        return c

    def as_expr(self, e: Any) -> sp.Expr:
        if is_condition(e):
            raise ClaimSyntaxError("expected a formula, got a condition")
        if isinstance(e, sp.IndexedBase):
            raise ClaimSyntaxError(f"{e} needs its indices (write e.g. {e}_d or {e}[d])")
        return e

    def parse_condition(self, allow_comma: bool = False) -> Any:
        parts = [self.parse_conjunction(allow_comma)]
        while self.at_or():
            self.advance()
            parts.append(self.parse_conjunction(allow_comma))
        return sp.Or(*parts) if len(parts) > 1 else parts[0]

    def parse_conjunction(self, allow_comma: bool) -> Any:
        parts = [self.parse_relation()]
        while True:
            self.skip_noise()
            if self.at_and(allow_comma):
                self.advance()
                parts.append(self.parse_relation())
            else:
                break
        return sp.And(*parts) if len(parts) > 1 else parts[0]

    def parse_relation(self) -> Any:
        self.skip_noise()
        literal = self.truth_value()
        if literal is not None:
            return literal
        if self.is_op("(") and self.paren_holds_condition():
            with self.nest():
                self.advance()
                c = self.parse_condition()
                self.expect_op(")")
            return c
        left = self.as_expr(self.parse_additive())
        rels = []
        while True:
            self.skip_noise()
            member = self.membership(left)
            if member is not None:
                rels.append(member)
                break
            op = self.relation_op()
            if op is None:
                break
            right = self.as_expr(self.parse_additive())
            rels.append(relation(op, left, right))
            left = right
        if not rels:
            raise self.error("expected a condition (a comparison such as z < 1)")
        return sp.And(*rels) if len(rels) > 1 else rels[0]

    def paren_holds_condition(self) -> bool:
        """Whether the parenthesis at the cursor encloses a comparison (scan to its partner)."""
        depth = 0
        for t in self.toks[self.i:]:
            if t.kind == "op" and t.value == "(":
                depth += 1
            elif t.kind == "op" and t.value == ")":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and self.is_relation_token(t):
                return True
            elif t.kind == "end":
                return False
        return False

    # -- expressions ------------------------------------------------------
    def parse_additive(self) -> Any:
        self.skip_noise()
        terms = [self.parse_term()]
        while True:
            self.skip_noise()
            if self.is_op("+"):
                self.advance()
                terms.append(self.parse_term())
            elif self.is_op("-"):
                self.advance()
                terms.append(-self.as_expr(self.parse_term()))
            else:
                break
        if len(terms) == 1:
            return terms[0]
        return sp.Add(*[self.as_expr(t) for t in terms])

    def parse_term(self) -> Any:
        factors = [self.parse_factor()]
        divide = [False]
        while True:
            self.skip_noise()
            if self.at_times():
                self.advance()
                factors.append(self.parse_factor())
                divide.append(False)
            elif self.is_op("/"):
                self.advance()
                factors.append(self.parse_factor())
                divide.append(True)
            elif self.starts_atom():
                factors.append(self.parse_factor(implicit=True))
                divide.append(False)
            else:
                break
        if len(factors) == 1:
            return factors[0]
        out = sp.Integer(1)
        for f, d in zip(factors, divide):
            f = self.as_expr(f)
            out = out / f if d else out * f
            check_number_size(out)
        return out

    def parse_factor(self, implicit: bool = False) -> Any:
        with self.nest():
            self.skip_noise()
            if self.is_op("-"):
                if implicit:
                    raise self.error("unexpected '-'")
                self.advance()
                return -self.as_expr(self.parse_factor())
            if self.is_op("+"):
                self.advance()
                return self.parse_factor()
            return self.parse_power()

    def parse_power(self) -> Any:
        base = self.parse_factorials(self.parse_postfix())
        self.skip_noise()
        if self.is_op("^", "**"):
            self.advance()
            with self.nest():
                exponent = self.parse_exponent()
            return power(self.as_expr(base), self.as_expr(exponent))
        return base

    def parse_factorials(self, base: Any) -> Any:
        """``x!`` (and ``x!!``, the double factorial), as PrairieLearn and SymPy read them."""
        applied = 0
        while self.is_op("!"):
            t = self.advance()
            double = self.is_op("!") and self.tok.pos == t.pos + 1
            if double:
                self.advance()
            applied += 1
            if applied > 2:
                # (x!!)!! grows beyond any number SymPy could evaluate at a sampled point.
                raise ClaimRefused(f"more than two factorials in a row at position {POS}", pos=t.pos)
            base = factorial(self.as_expr(base), double)
        return base

    def parse_postfix(self) -> Any:
        self.skip_noise()
        if self.starts_name():
            return self.parse_name_atom()
        return self.parse_atom()

    def parse_name_atom(self) -> Any:
        name, pos, accent = self.read_name()
        if self.is_builtin(name):
            return self.parse_builtin(name, pos)
        base = None
        for cand in reversed(self.name_candidates(name, accent)):
            base = self.lookup(cand)
            if base is not None:
                name = cand
                break
        base, name = self.resolve_subscript(base, name, pos)
        if base is None:
            if name == "pi":
                return sp.pi
            base = self.fallback(name, pos)
        if isinstance(base, sp.Lambda):
            return self.apply_user_function(name, base, pos)
        if isinstance(base, sp.IndexedBase):
            return self.parse_indices(base, pos)
        return base

    def apply_user_function(self, name: str, fn: sp.Lambda, pos: int) -> Any:
        """A function the claims file defines (``f_Y(y) = ...``), applied: ``f_Y(\\ln z)``."""
        self.skip_noise()
        right = False
        if self.tok.kind == "cmd" and self.tok.value == "left":
            self.advance()
            right = True
        if not self.is_op("("):
            raise self.error(f"{name} is a function of {len(fn.variables)} argument(s): write {name}(...)")
        args = []
        with self.nest():
            self.advance()
            while True:
                args.append(self.as_expr(self.parse_additive()))
                self.skip_noise()
                if self.is_op(","):
                    self.advance()
                    continue
                break
            if right and self.tok.kind == "cmd" and self.tok.value == "right":
                self.advance()
            self.expect_op(")")
        if len(args) != len(fn.variables):
            raise ClaimSyntaxError(f"{name} at position {POS} takes {len(fn.variables)} argument(s), got {len(args)}",
                                   pos=pos)
        return fn(*args)

    def parse_indices(self, base: sp.IndexedBase, pos: int) -> Any:
        """The indices of ``base``: ``p[k, d]`` or ``pi(k)`` in both notations, more forms in LaTeX."""
        upper: list[sp.Expr] = []
        lower: list[sp.Expr] = []
        while self.read_index_group(upper, lower):
            pass
        indices = upper + lower
        if not indices:
            raise ClaimSyntaxError(f"{base} at position {POS} needs its indices (e.g. {base}_d or {base}[k, d])",
                                   pos=pos)
        return base[tuple(indices)] if len(indices) > 1 else base[indices[0]]

    def index_items(self, closing: str) -> list[sp.Expr]:
        items = []
        with self.nest():
            while True:
                items.append(self.as_expr(self.parse_additive()))
                if self.is_op(","):
                    self.advance()
                    continue
                self.expect_op(closing)
                return items

    def parse_atom(self) -> Any:
        self.skip_noise()
        t = self.tok
        if t.kind == "num":
            self.advance()
            return number(t.value)
        if t.kind == "op" and t.value == "(":
            with self.nest():
                self.advance()
                e = self.parse_inner()
                self.skip_noise()
                self.expect_op(")")
            return e
        if t.kind == "op" and t.value == "||":
            self.split_bars()  # ||x| + y|: two opening bars
            t = self.tok
        if t.kind == "op" and t.value == "|":
            return self.parse_abs("|")
        if t.kind == "name":
            return self.parse_name_atom()
        raise self.error("expected a number, a symbol or a function")

    def parse_abs(self, closer: str) -> Any:
        with self.nest():
            self.advance()
            self.abs_depth += 1
            e = self.parse_additive()
            self.abs_depth -= 1
            self.skip_noise()
            self.close_abs(closer)
        return sp.Abs(self.as_expr(e))


# ----------------------------------------------------------------- helpers


def is_condition(e: Any) -> bool:
    """Whether ``e`` is a SymPy condition (a relation, a boolean function or True/False)."""
    # (A Symbol is also a sympy Boolean, so test for the condition classes themselves.)
    return isinstance(e, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction,
                          sp.logic.boolalg.BooleanAtom))


def check_number_size(value: Any) -> None:
    """Refuse a rational with more than :data:`~genverify.claims.lexer.MAX_DIGITS` digits."""
    if isinstance(value, sp.Rational):
        for part in (value.p, value.q):
            if part != 0 and abs(part).bit_length() * 0.30103 > MAX_DIGITS + 1:
                raise ClaimRefused(f"numbers larger than {MAX_DIGITS} digits are refused")


def factorial(x: sp.Expr, double: bool = False) -> sp.Expr:
    """``x!`` (``x!!`` when ``double``); refused when a number's factorial would exceed the digit limit."""
    if x.is_Number and x.is_real:
        size = float(abs(x)) if abs(x) < 10**300 else math.inf
        digits = (math.lgamma(size + 1) / math.log(10) if size < 1e300 else math.inf) / (2 if double else 1)
        if digits > MAX_DIGITS:
            raise ClaimRefused(f"{_short(x)}{'!!' if double else '!'} would have about "
                               f"{digits:.3g} digits (limit {MAX_DIGITS})")
    return sp.factorial2(x) if double else sp.factorial(x)


def power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """``base ** exponent``, refused when a numeric exponent or the numeric result is too large."""
    if exponent.is_Number:
        if exponent.is_Rational:
            if abs(exponent.p) > MAX_EXPONENT or exponent.q > MAX_EXPONENT:
                raise ClaimRefused(f"exponent {_short(exponent)} is beyond the limit of ±{MAX_EXPONENT}")
        elif exponent.is_Float and abs(exponent) > MAX_EXPONENT:
            raise ClaimRefused(f"exponent {_short(exponent)} is beyond the limit of ±{MAX_EXPONENT}")
        if base.is_Rational and base != 0:
            size = max(abs(base.p), base.q)
            digits = math.log10(size) * abs(float(exponent)) if size > 1 else 0.0
            if digits > MAX_DIGITS:
                raise ClaimRefused(f"{_short(base)}^{_short(exponent)} would have about {digits:.0f} digits "
                                   f"(limit {MAX_DIGITS})")
    return sp.Pow(base, exponent)


def _short(x: Any) -> str:
    s = str(x)
    return s if len(s) <= 30 else s[:27] + "..."


def relation(op: str, a: sp.Expr, b: sp.Expr) -> Any:
    """The SymPy relation ``a op b`` for an operator of :data:`RELATIONS`."""
    if op == "<":
        return sp.Lt(a, b)
    if op == "<=":
        return sp.Le(a, b)
    if op == ">":
        return sp.Gt(a, b)
    if op == ">=":
        return sp.Ge(a, b)
    if op in ("=", "=="):
        return sp.Eq(a, b)
    return sp.Ne(a, b)
