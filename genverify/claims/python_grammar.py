"""SymPy/Python-style claims: the rules of the plain-text notation, on top of the shared grammar.

The 5b answer written as ``exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))``.
What this grammar adds to :class:`~genverify.claims.grammar.Parser`:

* ``**`` or ``^`` for powers (an exponent is a signed factor: ``z**-2``),
  implicit multiplication (``2 pi z``, ``5 mu sigma``; a run of declared
  symbols such as ``nm`` or ``musigma`` is split into them, ``x2`` is x*2);
* function calls ``f(x)`` from :data:`~genverify.claims.grammar.FUNCS1`,
  ``log(x)`` and ``log(x, b)``, ``min``/``max``/``atan2``, ``factorial(x)``
  and ``x!``; constants ``pi``, ``E``/``e``, ``oo``/``inf``/``infty``;
* functions without parentheses, as PrairieLearn reads them: ``ln z``,
  ``sin 2x`` = sin(2x), ``sin atan x``, ``x sin x`` (the argument is the
  implicit product that follows, up to the next function or operator);
  powers of functions ``sin^2(x)``, ``log^2 z``, ``sin**2 (x)``, and
  ``sin^-1 x`` = asin(x);
* ``(...)``, ``[...]`` and ``{...}`` as brackets (full-width ones included);
* ``diff(f, x)`` / ``Derivative(f, x)``: the derivative (steps of a derivation);
* ``Piecewise((pi*z/2, z <= 1), (0, True))`` and ``Sum(x[i], (i, 1, n))``,
  ``Product(...)``: the function names SymPy prints, parsed here, never
  evaluated;
* names with underscores: ``sigma_1`` also finds a symbol ``sigma1``;
* indexed symbols ``p[k, d]`` (or ``pi(k)``); ``|`` and ``||`` for "or".
"""

from __future__ import annotations

import re
from typing import Any

import sympy as sp

from genverify.claims.errors import POS, ClaimSyntaxError, UnsupportedConstructError
from genverify.claims.grammar import FUNCS1, FUNCS_N, INVERSE, Parser, factorial, is_condition, power

__all__ = ["PythonParser"]

_CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "inf": sp.oo, "infinity": sp.oo, "Infinity": sp.oo,
              "infty": sp.oo}
# Names that are always functions here, even when a symbol has the same name.
_CALLS = ("Piecewise", "Sum", "Product", "log")
# Other callables: factorial(x), diff(f, x) / Derivative(f, x).
_SPECIAL = ("factorial", "diff", "Derivative")
# Names a student may reach for that the checker does not evaluate, with what to write instead.
_UNSUPPORTED = {
    "Integral": "integrals are not evaluated: write the integrated formula",
    "integrate": "integrals are not evaluated: write the integrated formula",
    "Limit": "limits are not evaluated: write the limit's value", "limit": "limits are not evaluated: "
    "write the limit's value",
    "lambda": "Python is not evaluated: write a formula", "import": "Python is not evaluated: write a formula",
    "eval": "Python is not evaluated: write a formula", "exec": "Python is not evaluated: write a formula",
    "__import__": "Python is not evaluated: write a formula",
}


class PythonParser(Parser):
    """The SymPy/Python-style notation."""

    latex = False

    # -- hooks of the shared grammar ----------------------------------------
    def at_or(self) -> bool:
        return self.is_op("|", "||") or super().at_or()

    def parse_exponent(self) -> Any:
        return self.parse_factor()

    def starts_atom(self) -> bool:
        return super().starts_atom() or self.is_op("[", "{") or (self.is_op("|") and self._bar_opens_abs())

    def _bar_opens_abs(self) -> bool:
        """Whether the ``|`` at the cursor opens an absolute value (2|x|) rather than meaning "or"."""
        if self.abs_depth:
            return False
        for t in self.toks[self.i + 1:]:
            if t.kind == "end" or (t.kind == "op" and t.value in ("<", "<=", ">", ">=", "==", "!=", "&", "||")):
                return False
            if t.kind == "op" and t.value == "|":
                return True
        return False

    def parse_atom(self) -> Any:
        # [ ] and { } are brackets too ([x + 1] (x - 1)); indices after an indexed name are read before this.
        if self.is_op("[", "{"):
            closing = "]" if self.tok.value == "[" else "}"
            with self.nest():
                self.advance()
                e = self.parse_inner()
                self.expect_op(closing)
            return e
        return super().parse_atom()

    def is_builtin(self, name: str) -> bool:
        if name in _CALLS:
            return True
        return self.lookup(name) is None and (name == "e" or name in _CONSTANTS or self.is_function(name))

    def is_function(self, name: str) -> bool:
        return name in FUNCS1 or name in FUNCS_N or name in _SPECIAL or name in _CALLS

    def read_name(self) -> tuple[str, int, str | None]:
        """A name; an unknown run of declared symbols (``nm``, ``sinx``, ``x2``) is split into them."""
        t = self.tok
        if t.kind == "name" and not self._known(t.value) and t.value in _UNSUPPORTED:
            raise UnsupportedConstructError(f"{t.value!r} at position {POS}: {_UNSUPPORTED[t.value]}", pos=t.pos)
        if t.kind == "name" and not self._known(t.value):
            pieces = self._split(t.value)
            if pieces and len(pieces) > 1:
                first = pieces[0]
                rest = t.value[len(first):]
                t.value, t.pos = rest, t.pos + len(first)
                if rest.isdigit():
                    t.kind = "num"
                return first, t.pos - len(first), None
        return super().read_name()

    def _known(self, name: str) -> bool:
        if self.lookup(name) is not None or self.is_builtin(name):
            return True
        return any(self.lookup(c) is not None for c in self.name_candidates(name, None))

    def _split(self, name: str) -> list[str] | None:
        """``name`` as a sequence of declared scalar symbols, constants and (first only) functions, else None."""
        if "_" in name or len(name) > 40:
            return None
        m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
        if m and self.lookup(m.group(1)) is not None and not isinstance(self.lookup(m.group(1)), sp.IndexedBase):
            return [m.group(1), m.group(2)]  # x2 = x*2 (PrairieLearn), unless a symbol x2 exists
        if not name.isalpha():
            return None

        def piece_ok(p: str, first: bool) -> bool:
            v = self.lookup(p)
            if v is not None:
                return not isinstance(v, (sp.IndexedBase, sp.Lambda))
            return p in ("pi", "e") or (first and (p in FUNCS1 or p == "log"))

        memo: dict[int, list[str] | None] = {}

        def from_(i: int) -> list[str] | None:
            if i == len(name):
                return []
            if i in memo:
                return memo[i]
            memo[i] = None
            for j in range(len(name), i, -1):  # longest piece first: "sigma" before "s"
                if piece_ok(name[i:j], i == 0):
                    rest = from_(j)
                    if rest is not None:
                        memo[i] = [name[i:j], *rest]
                        break
            return memo[i]

        return from_(0)

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
        """``f(x)``, ``f x``, ``f^2(x)``, ``log(x, b)``, ``min(a, b, ...)``, ``Piecewise(...)``, ``Sum(...)``."""
        if name == "Piecewise":
            return self.parse_piecewise()
        if name in ("Sum", "Product"):
            return self.parse_big_operator(name)
        if self.is_op("(") and self.lookup(name) is not None:
            return self.lookup(name)
        exponent = None
        if self.is_op("^", "**") and (name in FUNCS1 or name == "log"):
            # sin^2(x), log^2 z, sin**2 (x): the power of the function's value; sin^-1 x is arcsin.
            self.advance()
            with self.nest():
                exponent = self.as_expr(self.parse_factor())
        if self.is_op("("):
            args = [self.as_expr(a) if not isinstance(a, tuple) else a for a in self.call_args()]
        else:
            if name in FUNCS_N or name in _SPECIAL:
                raise self.error(f"{name} needs parentheses: {name}(...)")
            args = [self.parse_bare_argument(name)]
        if any(isinstance(a, tuple) for a in args) and name not in ("diff", "Derivative"):
            raise ClaimSyntaxError(f"{name} at position {POS} takes formulas, not tuples", pos=pos)
        value = self.call(name, args, pos, inverse=exponent is not None and exponent == -1)
        if exponent is not None and not (exponent == -1 and name in INVERSE):
            value = power(value, exponent)
        return value

    def call(self, name: str, args: list, pos: int, inverse: bool = False) -> Any:
        """The function ``name`` applied to ``args`` (already parsed)."""
        if name == "log":
            if len(args) == 1:
                return sp.log(args[0])
            if len(args) == 2:
                return sp.log(args[0]) / sp.log(args[1])
            raise ClaimSyntaxError(f"log at position {POS} takes one or two arguments", pos=pos)
        if name in FUNCS_N:
            fn, counts = FUNCS_N[name]
            if not args or (counts is not None and len(args) not in counts):
                raise ClaimSyntaxError(f"{name} at position {POS} takes {' or '.join(map(str, counts or (1,)))}"
                                       f"{'+' if counts is None else ''} argument(s), got {len(args)}", pos=pos)
            return fn(*args)
        if name in ("diff", "Derivative"):
            if len(args) < 2 or not all(isinstance(a, (sp.Symbol, sp.Indexed)) for a in args[1:]):
                raise ClaimSyntaxError(f"{name} at position {POS} needs a formula and the symbol(s) to "
                                       f"differentiate by: {name}(f, x)", pos=pos)
            return sp.Derivative(args[0], *args[1:])
        if len(args) != 1:
            raise ClaimSyntaxError(f"{name} at position {POS} takes one argument, got {len(args)}", pos=pos)
        if name == "factorial":
            return factorial(args[0])
        if inverse and name in INVERSE:
            return INVERSE[name](args[0])
        return FUNCS1[name](args[0])

    def parse_bare_argument(self, name: str) -> sp.Expr:
        """The argument of a function written without parentheses: ``sin 2x`` = sin(2x), ``x sin x``."""
        self.skip_noise()
        if not (self.starts_atom() or self.is_op("-", "+")):
            raise self.error(f"{name} needs an argument: {name}(x) or {name} x")
        with self.nest():
            arg = self.as_expr(self.parse_factor())
            while self.starts_atom() and not self.at_function():
                arg = arg * self.as_expr(self.parse_factor(implicit=True))
        return arg

    def at_function(self) -> bool:
        t = self.tok
        if t.kind != "name" or self.lookup(t.value) is not None:
            return False
        if self.is_function(t.value):
            return True
        pieces = self._split(t.value)
        return bool(pieces) and self.is_function(pieces[0])

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
