"""SymPy/Python-style claims: the rules of the plain-text notation, on top of the shared grammar.

The 5b answer written as ``exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))``.
What this grammar adds to :class:`~genverify.claims.grammar.Parser`:

* ``**`` or ``^`` for powers (an exponent is a signed factor: ``z**-2``),
  implicit multiplication (``2 pi z``);
* function calls ``f(x)`` from :data:`~genverify.claims.grammar.FUNCS1`,
  ``log(x)`` and ``log(x, b)``; constants ``pi``, ``E``/``e``, ``oo``/``inf``;
* ``Piecewise((pi*z/2, z <= 1), (0, True))`` and ``Sum(x[i], (i, 1, n))``,
  ``Product(...)``: the function names SymPy prints, parsed here, never
  evaluated;
* names with underscores: ``sigma_1`` also finds a symbol ``sigma1``;
* indexed symbols ``p[k, d]`` (or ``pi(k)``); ``|`` and ``||`` for "or".
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from genverify.claims.errors import ClaimSyntaxError
from genverify.claims.grammar import FUNCS1, Parser, is_condition

__all__ = ["PythonParser"]

_CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "inf": sp.oo, "infinity": sp.oo, "Infinity": sp.oo}
# Names that are always functions here, even when a symbol has the same name.
_CALLS = ("Piecewise", "Sum", "Product", "log")


class PythonParser(Parser):
    """The SymPy/Python-style notation."""

    latex = False

    # -- hooks of the shared grammar ----------------------------------------
    def at_or(self) -> bool:
        return self.is_op("|", "||") or super().at_or()

    def parse_exponent(self) -> Any:
        return self.parse_factor()

    def is_builtin(self, name: str) -> bool:
        if name in _CALLS:
            return True
        return self.lookup(name) is None and (name == "e" or name in _CONSTANTS or name in FUNCS1)

    def parse_builtin(self, name: str, pos: int) -> Any:
        if self.lookup(name) is None:
            if name == "e":
                return sp.E
            if name in _CONSTANTS:
                return _CONSTANTS[name]
        return self.apply_function(name, pos)

    def name_candidates(self, name: str, accent: str | None) -> list[str]:
        if "_" in name.strip("_"):
            return [name, name.replace("_", "")]  # sigma_1 names sigma1
        return [name]

    def apply_function(self, name: str, pos: int) -> Any:
        """``f(x)``, ``log(x, b)``, ``Piecewise(...)``, ``Sum(...)``/``Product(...)``."""
        if name == "Piecewise":
            return self.parse_piecewise()
        if name in ("Sum", "Product"):
            return self.parse_big_operator(name)
        if not self.is_op("("):
            raise self.error(f"{name} needs parentheses: {name}(...)")
        if self.lookup(name) is not None:
            return self.lookup(name)
        args = [self.as_expr(a) for a in self.call_args()]
        if name == "log":
            if len(args) == 1:
                return sp.log(args[0])
            if len(args) == 2:
                return sp.log(args[0]) / sp.log(args[1])
            raise ClaimSyntaxError("log takes one or two arguments")
        if len(args) != 1:
            raise ClaimSyntaxError(f"{name} takes one argument, got {len(args)}")
        return FUNCS1[name](args[0])

    # -- calls ------------------------------------------------------------
    def call_args(self) -> list[Any]:
        self.expect_op("(")
        args = []
        with self.nest():
            if self.is_op(")"):
                self.advance()
                return args
            while True:
                args.append(self.parse_argument())
                if self.is_op(","):
                    self.advance()
                    continue
                self.expect_op(")")
                return args

    def parse_argument(self) -> Any:
        """A call argument: a formula, a condition, or a tuple ``(a, b, ...)``."""
        self.skip_noise()
        if self.is_op("(") and self._paren_is_tuple():
            with self.nest():
                self.advance()
                items = [self.parse_argument()]
                while self.is_op(","):
                    self.advance()
                    items.append(self.parse_argument())
                self.expect_op(")")
            return tuple(items)
        if self.tok.kind == "name" and self.tok.value in ("True", "False"):
            return sp.true if self.advance().value == "True" else sp.false
        if self.is_op("(") and self.paren_holds_condition():
            return self.parse_condition()
        start = self.i
        e = self.parse_additive()
        self.skip_noise()
        if self.tok.kind == "op" and self.tok.value in ("<", "<=", ">", ">=", "==", "!=", "&", "|") \
                or self.is_name("and") or self.is_name("or"):
            self.i = start
            return self.parse_condition()
        return e

    def _paren_is_tuple(self) -> bool:
        depth = 0
        for t in self.toks[self.i:]:
            if t.kind == "op" and t.value in "([":
                depth += 1
            elif t.kind == "op" and t.value in ")]":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and t.kind == "op" and t.value == ",":
                return True
            elif t.kind == "end":
                return False
        return False

    def parse_piecewise(self) -> Any:
        """``Piecewise((expr, cond), ...)``; a condition ``True`` (or 1) is the otherwise branch."""
        pairs = self.call_args()
        if not pairs:
            raise ClaimSyntaxError("Piecewise needs (expression, condition) pairs")
        out = []
        for p in pairs:
            if not (isinstance(p, tuple) and len(p) == 2):
                raise ClaimSyntaxError("each Piecewise argument must be a pair (expression, condition)")
            expr, cond = p
            if cond is True or cond == sp.true:
                cond = sp.true
            if not is_condition(cond):
                if cond == 1 or str(cond) == "True":
                    cond = sp.true
                else:
                    raise ClaimSyntaxError(f"Piecewise condition {cond} is not a condition")
            out.append((self.as_expr(expr), cond))
        return sp.Piecewise(*out)

    def parse_big_operator(self, name: str) -> Any:
        """``Sum(expr, (i, a, b))`` / ``Product(...)``."""
        # The index must be bound before the summand is parsed, so read the limits
        # first by scanning for the tuple, then parse the summand.
        self.expect_op("(")
        start = self.i
        depth = 0
        j = self.i
        comma = None
        while j < len(self.toks):
            t = self.toks[j]
            if t.kind == "end":
                break
            if t.kind == "op" and t.value in "([":
                depth += 1
            elif t.kind == "op" and t.value in ")]":
                if depth == 0:
                    break
                depth -= 1
            elif t.kind == "op" and t.value == "," and depth == 0:
                comma = j
                break
            j += 1
        if comma is None:
            raise self.error(f"{name} needs limits: {name}(expr, (i, 1, n))")
        self.i = comma + 1
        self.expect_op("(")
        idx_tok = self.advance()
        if idx_tok.kind != "name":
            raise self.error("expected the index name")
        index = sp.Symbol(idx_tok.value, integer=True)
        self.expect_op(",")
        lo = self.as_expr(self.parse_additive())
        self.expect_op(",")
        hi = self.as_expr(self.parse_additive())
        self.expect_op(")")
        self.expect_op(")")
        after = self.i
        self.i = start
        self.bound.append({idx_tok.value: index})
        try:
            body = self.as_expr(self.parse_additive())
        finally:
            self.bound.pop()
        if self.i != comma:
            raise self.error(f"unexpected input in {name}")
        self.i = after
        cls = sp.Sum if name == "Sum" else sp.Product
        return cls(body, (index, lo, hi))
