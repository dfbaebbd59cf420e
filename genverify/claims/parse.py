"""A safe parser for claimed formulas: SymPy/Python-style math or LaTeX -> a SymPy tree.

``genverify check`` and ``genverify errata`` (issue 5) read formulas a student
wrote, such as the 5b answer

.. math:: f_{e^Y}(z) = \\frac{1}{\\sigma\\sqrt{2\\pi z}}\\, e^{-\\frac{(\\ln z-\\mu)^2}{2\\sigma^2}},

and compare them with the registry's derived result. Nothing the user types
reaches ``eval``/``exec``: SymPy's ``parse_expr``/``sympify`` evaluate Python,
so they are never called. Instead a whitelist tokenizer turns the text into
tokens (a character outside the whitelist is refused), and a recursive-descent
parser builds the SymPy tree itself from a fixed table of functions and
constants and the result's own symbols. An unknown name is an input error.

Both notations are accepted and detected automatically (a backslash or a brace
means LaTeX), or forced with ``latex=True``:

* Python style: ``exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))``,
  ``^`` for powers, implicit multiplication (``2 pi z``), ``oo``/``inf``,
  ``Piecewise((pi*z/2, z <= 1), (0, True))``, ``Sum(x[i], (i, 1, n))``,
  ``p[k, d]`` for indexed symbols.
* LaTeX: ``\\frac``, ``\\sqrt[n]{}``, ``\\ln``, ``\\log``, ``\\exp``, ``e^{...}``,
  ``\\cdot``, ``\\times``, ``\\left( \\right)``, Greek letters, ``\\pi``,
  ``\\infty``, ``\\cos^{-1}``, ``\\begin{cases} ... \\end{cases}`` with
  ``\\text{for}``/``\\text{otherwise}`` and ``z \\in [0, 1]`` conditions,
  ``\\sum_{i=1}^{n}``/``\\prod_{d=1}^{D}``, and indexed symbols written
  ``p_d^{(k)}`` (superscript indices first: ``p[k, d]``, as in the homework's
  K x D matrix ``p``).

Limits (each refusal is a :class:`ClaimRefused`, a ``ValueError``):
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of nesting, numeric
exponents up to :data:`MAX_EXPONENT` and numbers of at most
:data:`MAX_DIGITS` digits, so that no input can make SymPy build a huge
integer (``9**9**9**9`` is refused, not computed).

>>> import sympy as sp
>>> z = sp.Symbol("z", positive=True)
>>> parse_claim("\\\\frac{\\\\pi z}{2}", {"z": z})
pi*z/2
>>> parse_claim("2 pi z^2", {"z": z})
2*pi*z**2
"""

from __future__ import annotations

import fractions
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import sympy as sp

__all__ = [
    "ClaimError",
    "ClaimSyntaxError",
    "ClaimRefused",
    "UnknownSymbolError",
    "parse_claim",
    "parse_condition",
    "is_latex",
    "MAX_LENGTH",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_DIGITS",
]

#: Longest accepted input, in characters.
MAX_LENGTH = 2000
#: Deepest accepted nesting (parentheses, braces, function arguments, unary signs, powers).
MAX_DEPTH = 50
#: Largest accepted |numeric exponent| (numerator and denominator of a rational one).
MAX_EXPONENT = 1000
#: Most digits in one number (a literal, or the result of a numeric power).
MAX_DIGITS = 1000


class ClaimError(ValueError):
    """A claim that cannot be checked (bad syntax, unknown symbol, refused input)."""


class ClaimSyntaxError(ClaimError):
    """The text is not a formula in either accepted notation."""


class UnknownSymbolError(ClaimError):
    """The formula uses a name that is neither a known function nor one of the result's symbols."""


class ClaimRefused(ClaimError):
    """The input exceeds a safety limit (length, nesting, exponent or number size)."""


# ----------------------------------------------------------------- tables

_GREEK = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "mu", "nu", "xi", "omicron", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Upsilon", "Phi", "Psi", "Omega",
]
_GREEK_ALIASES = {"varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta", "varrho": "rho",
                  "varsigma": "sigma", "varpi": "pi"}

_UNICODE_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho",
    "σ": "sigma", "τ": "tau", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}
# Unicode operators a student may paste; mapped to ASCII before tokenizing.
_UNICODE_OPS = {"·": "*", "×": "*", "−": "-", "–": "-", "≤": "<=", "≥": ">=", "≠": "!=", "²": "^2", "³": "^3"}

# Functions of one argument, by the names either notation uses for them.
_FUNCS1: dict[str, Any] = {
    "exp": sp.exp, "ln": sp.log, "sqrt": sp.sqrt, "cbrt": sp.cbrt,
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
    "asin": sp.asin, "acos": sp.acos, "atan": sp.atan, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
    "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "asinh": sp.asinh, "acosh": sp.acosh, "atanh": sp.atanh,
    "abs": sp.Abs, "Abs": sp.Abs, "erf": sp.erf, "erfc": sp.erfc, "sign": sp.sign,
}
_INVERSE_TRIG = {"sin": sp.asin, "cos": sp.acos, "tan": sp.atan, "sinh": sp.asinh, "cosh": sp.acosh, "tanh": sp.atanh}
# LaTeX commands that are functions (\ln z, \cos^{-1}(1/z), \log_2 x).
_LATEX_FUNCS = {"exp", "ln", "log", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan",
                "sinh", "cosh", "tanh", "erf"}
# Letter runs that, in LaTeX written without a backslash, still mean a function (``ln z``).
_PLAIN_LATEX_FUNCS = {"exp", "ln", "log", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "acos", "asin", "atan"}

_PY_CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo, "inf": sp.oo, "infinity": sp.oo, "Infinity": sp.oo}

_LATEX_SKIP = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "big", "Big", "bigg", "Bigg",
               "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "limits", "nolimits"}
_LATEX_REL = {"le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=",
              "lt": "<", "gt": ">", "ne": "!=", "neq": "!="}
_LATEX_MUL = {"cdot", "times", "ast"}
_ACCENTS = {"hat", "bar", "tilde", "widehat", "widetilde", "overline", "vec"}
_FONTS = {"mathbf", "boldsymbol", "bm", "mathrm", "mathit", "operatorname", "mathsf", "mathcal", "mathbb"}
_TEXT_SKIP = {"", "for", "if", "when", "where", "with", "on", ","}
_TEXT_TRUE = {"otherwise", "elsewhere", "else", "true", "otherwise,"}


# ----------------------------------------------------------------- tokens


@dataclass
class _Tok:
    kind: str  # "num", "name", "cmd", "text", "op", "end"
    value: str
    pos: int


_NUM_RE = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
_NUM_LATEX_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*'*")
_LETTERS_RE = re.compile(r"[A-Za-z]+'*")
_OPS = ["**", "<=", ">=", "==", "!=", "&&", "||", "\\\\", "\\{", "\\}", "\\|", "\\&",
        "+", "-", "*", "/", "^", "(", ")", "[", "]", "{", "}", ",", "<", ">", "=", "&", "|", "_", "!", "'", "."]


def is_latex(text: str) -> bool:
    """Whether ``text`` is LaTeX: it has a backslash or a brace (Python-style math has neither)."""
    return any(c in text for c in "\\{}")


def _normalise(text: str, latex: bool) -> str:
    out = []
    for ch in text:
        if ch in _UNICODE_OPS:
            out.append(_UNICODE_OPS[ch])
        elif ch in _UNICODE_GREEK:
            name = _UNICODE_GREEK[ch]
            out.append(f"\\{name} " if latex else f" {name} ")
        elif ch == "∞":
            out.append("\\infty " if latex else " oo ")
        elif ch == "√":
            out.append("\\sqrt" if latex else "sqrt")
        else:
            out.append(ch)
    return "".join(out)


def _tokenize(text: str, latex: bool) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if latex and ch == "\\" and i + 1 < n and text[i + 1].isalpha():
            m = re.compile(r"[A-Za-z]+").match(text, i + 1)
            name = m.group(0)
            j = m.end()
            if name in ("text", "textrm", "textnormal", "mbox"):
                # \text{...}: keep the words verbatim; they are interpreted (for/if/otherwise) or refused.
                k = j
                while k < n and text[k] == " ":
                    k += 1
                if k < n and text[k] == "{":
                    close = text.find("}", k + 1)
                    if close < 0:
                        raise ClaimSyntaxError(f"unclosed \\{name}{{ at position {i}")
                    toks.append(_Tok("text", text[k + 1:close], i))
                    i = close + 1
                    continue
            toks.append(_Tok("cmd", name, i))
            i = j
            continue
        if latex and ch == "\\" and i + 1 < n and text[i + 1] in ",;:! ":
            i += 2  # spacing
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = (_NUM_LATEX_RE if latex else _NUM_RE).match(text, i)
            toks.append(_Tok("num", m.group(0), i))
            i = m.end()
            continue
        if ch.isascii() and (ch.isalpha() or (ch == "_" and not latex)):
            m = (_LETTERS_RE if latex else _NAME_RE).match(text, i)
            toks.append(_Tok("name", m.group(0), i))
            i = m.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                toks.append(_Tok("op", op, i))
                i += len(op)
                break
        else:
            shown = ch if ch.isprintable() else repr(ch)
            raise ClaimSyntaxError(f"character {shown!r} at position {i} is not allowed in a formula")
    toks.append(_Tok("end", "", n))
    return toks


# ----------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, symbols: Mapping[str, Any], latex: bool):
        self.latex = latex
        self.symbols = dict(symbols)
        self.toks = _tokenize(text, latex)
        self.i = 0
        self.depth = 0
        self.abs_depth = 0
        self.bound: list[dict[str, sp.Symbol]] = []
        self.row_mode = False  # inside \begin{cases}: & and \\ end an expression

    # -- token helpers ----------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> _Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> _Tok:
        t = self.toks[self.i]
        if t.kind != "end":
            self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def is_cmd(self, *names: str) -> bool:
        return self.tok.kind == "cmd" and self.tok.value in names

    def expect_op(self, op: str) -> None:
        if not self.is_op(op):
            raise self.error(f"expected {op!r}")
        self.advance()

    def error(self, msg: str) -> ClaimSyntaxError:
        t = self.tok
        where = "end of input" if t.kind == "end" else f"{t.value!r} at position {t.pos}"
        return ClaimSyntaxError(f"{msg} (found {where})")

    def skip_noise(self) -> None:
        while True:
            if self.tok.kind == "cmd" and self.tok.value in _LATEX_SKIP:
                self.advance()
            elif self.latex and self.tok.kind == "text" and self.tok.value.strip() == "":
                self.advance()
            else:
                return

    def nest(self):
        parser = self

        class _Nest:
            def __enter__(self):
                parser.depth += 1
                if parser.depth > MAX_DEPTH:
                    raise ClaimRefused(f"formula nested deeper than {MAX_DEPTH} levels")

            def __exit__(self, *exc):
                parser.depth -= 1
                return False

        return _Nest()

    # -- names ------------------------------------------------------------
    def lookup(self, name: str) -> Any | None:
        for scope in reversed(self.bound):
            if name in scope:
                return scope[name]
        return self.symbols.get(name)

    def unknown(self, name: str, pos: int) -> UnknownSymbolError:
        known = ", ".join(sorted(self.symbols)) or "none: the result is a constant"
        return UnknownSymbolError(f"unknown symbol {name!r} at position {pos} (the result's symbols are: {known})")

    # -- grammar ----------------------------------------------------------
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
        if _is_condition(e):
            raise ClaimSyntaxError("expected a formula, got a condition")
        if isinstance(e, sp.IndexedBase):
            raise ClaimSyntaxError(f"{e} needs its indices (write e.g. {e}_d or {e}[d])")
        return e

    def parse_condition(self, allow_comma: bool = False) -> Any:
        parts = [self.parse_conjunction(allow_comma)]
        while self.is_op("|", "||") and not self.latex or self.is_cmd("lor", "vee") or self.is_name("or"):
            self.advance()
            parts.append(self.parse_conjunction(allow_comma))
        return sp.Or(*parts) if len(parts) > 1 else parts[0]

    def is_name(self, word: str) -> bool:
        t = self.tok
        return (t.kind == "name" and t.value == word) or (t.kind == "text" and t.value.strip() == word)

    def parse_conjunction(self, allow_comma: bool) -> Any:
        parts = [self.parse_relation()]
        while True:
            self.skip_noise()
            if (self.is_op("&&", "\\&") or (self.is_op("&") and not self.row_mode) or self.is_cmd("land", "wedge")
                    or self.is_name("and") or (allow_comma and self.is_op(","))):
                self.advance()
                parts.append(self.parse_relation())
            else:
                break
        return sp.And(*parts) if len(parts) > 1 else parts[0]

    def parse_relation(self) -> Any:
        self.skip_noise()
        t = self.tok
        if t.kind == "name" and t.value in ("True", "true", "otherwise", "else"):
            self.advance()
            return sp.true
        if t.kind == "name" and t.value in ("False", "false"):
            self.advance()
            return sp.false
        if t.kind == "text" and t.value.strip().lower() in _TEXT_TRUE:
            self.advance()
            return sp.true
        if self.is_op("(") and self._paren_holds_condition():
            with self.nest():
                self.advance()
                c = self.parse_condition()
                self.expect_op(")")
            return c
        left = self.as_expr(self.parse_additive())
        rels = []
        while True:
            self.skip_noise()
            op = None
            if self.tok.kind == "op" and self.tok.value in ("<", "<=", ">", ">=", "==", "=", "!="):
                op = self.advance().value
            elif self.tok.kind == "cmd" and self.tok.value in _LATEX_REL:
                op = _LATEX_REL[self.advance().value]
            elif self.is_cmd("in"):
                self.advance()
                rels.append(self.parse_interval(left))
                break
            if op is None:
                break
            right = self.as_expr(self.parse_additive())
            rels.append(_relation(op, left, right))
            left = right
        if not rels:
            raise self.error("expected a condition (a comparison such as z < 1)")
        return sp.And(*rels) if len(rels) > 1 else rels[0]

    def _paren_holds_condition(self) -> bool:
        """Whether the parenthesis at the cursor encloses a comparison (scan to its partner)."""
        depth = 0
        for t in self.toks[self.i:]:
            if t.kind == "op" and t.value == "(":
                depth += 1
            elif t.kind == "op" and t.value == ")":
                depth -= 1
                if depth == 0:
                    return False
            elif depth == 1 and ((t.kind == "op" and t.value in ("<", "<=", ">", ">=", "==", "!=", "&", "|"))
                                 or (t.kind == "cmd" and t.value in _LATEX_REL)):
                return True
            elif t.kind == "end":
                return False
        return False

    def parse_interval(self, x: sp.Expr) -> Any:
        if not (self.is_op("[", "(") or self.is_cmd("left")):
            raise self.error("expected an interval such as [0, 1] after \\in")
        if self.is_cmd("left"):
            self.advance()
        left_closed = self.advance().value == "["
        lo = self.as_expr(self.parse_additive())
        self.expect_op(",")
        hi = self.as_expr(self.parse_additive())
        if self.is_cmd("right"):
            self.advance()
        if not self.is_op("]", ")"):
            raise self.error("expected ] or ) closing the interval")
        right_closed = self.advance().value == "]"
        lo_rel = (x >= lo) if left_closed and lo.is_finite is not False else (x > lo)
        hi_rel = (x <= hi) if right_closed and hi.is_finite is not False else (x < hi)
        return sp.And(lo_rel, hi_rel)

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
            if self.is_op("*") or self.is_cmd(*_LATEX_MUL):
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
            _check_number_size(out)
        return out

    def starts_atom(self) -> bool:
        t = self.tok
        if t.kind in ("num", "name"):
            return not (t.kind == "name" and t.value in ("and", "or", "for", "if", "otherwise", "True", "False"))
        if t.kind == "op":
            if t.value == "(" or (t.value == "{" and self.latex):
                return True
            if t.value == "|" and self.latex and self.abs_depth == 0:
                return True
            return False
        if t.kind == "cmd":
            v = t.value
            if v == "left":
                return True
            return (v in _LATEX_FUNCS or v in _GREEK or v in _GREEK_ALIASES or v in _ACCENTS or v in _FONTS
                    or v in ("pi", "infty", "frac", "dfrac", "tfrac", "sqrt", "sum", "prod", "lvert", "vert",
                             "exp", "ell", "begin"))
        return False

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
        base = self.parse_postfix()
        self.skip_noise()
        if self.is_op("^", "**"):
            self.advance()
            with self.nest():
                exponent = self.parse_exponent()
            return _power(self.as_expr(base), self.as_expr(exponent))
        return base

    def parse_exponent(self) -> Any:
        if self.latex:
            if self.is_op("{"):
                return self.parse_group()
            return self.parse_single_token_arg(allow_sign=True)
        return self.parse_factor()

    def parse_group(self) -> Any:
        """``{ ... }`` in LaTeX."""
        with self.nest():
            self.expect_op("{")
            saved, self.row_mode = self.row_mode, False
            e = self.parse_additive()
            self.row_mode = saved
            self.skip_noise()
            self.expect_op("}")
            return e

    def parse_single_token_arg(self, allow_sign: bool = False) -> Any:
        """A LaTeX argument without braces: one digit, one letter or one command (``\\frac12``, ``x^2``)."""
        self.skip_noise()
        t = self.tok
        if self.is_op("{"):
            return self.parse_group()
        if allow_sign and self.is_op("-"):
            self.advance()
            return -self.as_expr(self.parse_single_token_arg())
        if t.kind == "num":
            if len(t.value) > 1 and t.value[0].isdigit():
                # LaTeX takes one digit as an unbraced argument: \frac12 = 1/2, x^23 = x^2 * 3.
                digit = t.value[0]
                t.value = t.value[1:]
                t.pos += 1
                return sp.Integer(int(digit))
            self.advance()
            return _number(t.value)
        if t.kind == "name":
            if len(t.value) > 1 and self.lookup(t.value) is None:
                letter = t.value[0]
                t.value = t.value[1:]
                t.pos += 1
                return self.resolve_name(letter, t.pos - 1)
            return self.parse_postfix()
        if t.kind == "cmd":
            return self.parse_atom()
        raise self.error("expected an argument")

    # -- postfix: subscripts, indices, primes -------------------------------
    def parse_postfix(self) -> Any:
        self.skip_noise()
        t = self.tok
        if t.kind == "name" or (t.kind == "cmd" and (t.value in _GREEK or t.value in _GREEK_ALIASES
                                                      or t.value in _ACCENTS or t.value in _FONTS
                                                      or t.value == "pi")):
            return self.parse_name_atom()
        return self.parse_atom()

    def read_name(self) -> tuple[str, int, str | None]:
        """Read a name token (letters, Greek command, accent or font around a name) -> (name, pos, accent)."""
        t = self.tok
        accent = None
        if t.kind == "cmd" and (t.value in _ACCENTS or t.value in _FONTS):
            self.advance()
            if t.value in _ACCENTS:
                accent = t.value
            if self.is_op("{"):
                with self.nest():
                    self.advance()
                    self.skip_noise()
                    inner, pos, inner_accent = self.read_name()
                    self.skip_noise()
                    self.expect_op("}")
                return inner, pos, accent or inner_accent
            inner, pos, inner_accent = self.read_name()
            return inner, pos, accent or inner_accent
        if t.kind == "cmd" and (t.value in _GREEK or t.value in _GREEK_ALIASES or t.value == "pi"):
            self.advance()
            return _GREEK_ALIASES.get(t.value, t.value), t.pos, None
        if t.kind == "name":
            name = t.value
            if self.latex and len(name.rstrip("'")) > 1 and self.lookup(name) is None \
                    and not self._plain_function(name):
                # LaTeX letters are single-letter symbols: ``xy`` is x*y. Split off the first letter.
                t.value = name[1:]
                t.pos += 1
                return name[0], t.pos - 1, None
            self.advance()
            return name, t.pos, None
        raise self.error("expected a name")

    def _plain_function(self, name: str) -> bool:
        return name in _PLAIN_LATEX_FUNCS or name in ("e",)

    def read_subscript_text(self) -> tuple[str, int, int]:
        """Read ``_x`` or ``_{...}``; return its raw text and the token span (start, end) for re-parsing."""
        self.expect_op("_")
        start = self.i
        if self.is_op("{"):
            depth = 0
            parts = []
            while True:
                t = self.advance()
                if t.kind == "end":
                    raise self.error("unclosed { in a subscript")
                if t.kind == "op" and t.value == "{":
                    depth += 1
                    if depth == 1:
                        continue
                if t.kind == "op" and t.value == "}":
                    depth -= 1
                    if depth == 0:
                        break
                parts.append(t.value if t.kind != "cmd" else "\\" + t.value)
            return "".join(parts), start + 1, self.i - 1
        t = self.tok
        if t.kind == "num":
            self.advance()
            return t.value, start, self.i
        if t.kind == "name":
            if self.latex and len(t.value.rstrip("'")) > 1:
                letter = t.value[0]
                t.value = t.value[1:]
                t.pos += 1
                return letter, start, start  # (a split token cannot be re-parsed by span)
            self.advance()
            return t.value, start, self.i
        if t.kind == "cmd":
            self.advance()
            return _GREEK_ALIASES.get(t.value, t.value), start, self.i
        raise self.error("expected a subscript")

    def parse_name_atom(self) -> Any:
        name, pos, accent = self.read_name()
        if self._plain_function(name) and self.lookup(name) is None:
            if name == "e":
                return sp.E
            return self.apply_function(name, pos)
        if not self.latex and name in _PY_CONSTANTS and self.lookup(name) is None:
            return _PY_CONSTANTS[name]
        if not self.latex and name in ("Piecewise", "Sum", "Product", "log") or (
                not self.latex and (name in _FUNCS1) and self.lookup(name) is None):
            return self.apply_function(name, pos)
        # Subscripts join the name (sigma_1 -> sigma1 / sigma_1) unless the base is indexed.
        candidates = [name] + ([f"{name}_{accent}", f"{name}{accent}"] if accent else [])
        if not self.latex and "_" in name.strip("_"):
            candidates.append(name.replace("_", ""))  # sigma_1 names sigma1
        base = None
        for cand in reversed(candidates):
            base = self.lookup(cand)
            if base is not None:
                name = cand
                break
        if self.latex and self.is_op("_") and not isinstance(base, sp.IndexedBase):
            sub, _, _ = self.read_subscript_text()
            for cand in (f"{name}_{sub}", f"{name}{sub}", f"{name}_{{{sub}}}"):
                found = self.lookup(cand)
                if found is not None:
                    base, name = found, cand
                    break
            else:
                raise self.unknown(f"{name}_{{{sub}}}", pos)
        if base is None:
            if name == "pi":
                return sp.pi
            if name in ("e",) and self.latex:
                return sp.E
            raise self.unknown(name, pos)
        if isinstance(base, sp.IndexedBase):
            return self.parse_indices(base, pos)
        return base

    def parse_indices(self, base: sp.IndexedBase, pos: int) -> Any:
        """``p_d^{(k)}`` (LaTeX; superscript indices come first) or ``p[k, d]`` / ``pi(k)`` (both)."""
        upper: list[sp.Expr] = []
        lower: list[sp.Expr] = []
        while True:
            if self.latex and self.is_op("_"):
                self.advance()
                lower.extend(self.parse_index_list(closing="}" if self.is_op("{") else None))
            elif self.latex and self.is_op("^") and self.peek().kind == "op" and self.peek().value == "{" \
                    and self.peek(2).kind == "op" and self.peek(2).value == "(":
                self.advance()
                self.advance()
                self.advance()
                upper.extend(self._index_items(")"))
                self.expect_op("}")
            elif self.latex and self.is_op("^") and self.peek().kind == "op" and self.peek().value == "(":
                self.advance()
                self.advance()
                upper.extend(self._index_items(")"))
            elif self.is_op("[") or (self.is_op("(") and not upper and not lower):
                closing = "]" if self.advance().value == "[" else ")"
                lower.extend(self._index_items(closing))
            else:
                break
        indices = upper + lower
        if not indices:
            raise ClaimSyntaxError(f"{base} at position {pos} needs its indices (e.g. {base}_d or {base}[k, d])")
        return base[tuple(indices)] if len(indices) > 1 else base[indices[0]]

    def parse_index_list(self, closing: str | None) -> list[sp.Expr]:
        if closing is None:
            name, pos, _ = self.read_name() if self.tok.kind != "num" else (self.advance().value, 0, None)
            return [self.index_value(name, pos)]
        self.advance()  # {
        # ``_{ik}``: a run of index letters is one index per letter.
        t = self.tok
        if t.kind == "name" and self.peek().kind == "op" and self.peek().value == "}" \
                and self.lookup(t.value) is None and len(t.value.rstrip("'")) > 1:
            self.advance()
            self.advance()
            letters = re.findall(r"[A-Za-z]'*", t.value)
            return [self.index_value(ch, t.pos) for ch in letters]
        return self._index_items("}")

    def _index_items(self, closing: str) -> list[sp.Expr]:
        items = []
        with self.nest():
            while True:
                items.append(self.as_expr(self.parse_additive()))
                if self.is_op(","):
                    self.advance()
                    continue
                self.expect_op(closing)
                return items

    def index_value(self, name: str, pos: int) -> sp.Expr:
        if re.fullmatch(r"\d+", name):
            return sp.Integer(int(name))
        found = self.lookup(name)
        if found is None:
            raise self.unknown(name, pos)
        return found

    # -- atoms ------------------------------------------------------------
    def parse_atom(self) -> Any:
        self.skip_noise()
        t = self.tok
        if t.kind == "num":
            self.advance()
            return _number(t.value)
        if t.kind == "op":
            if t.value == "(":
                with self.nest():
                    self.advance()
                    saved, self.row_mode = self.row_mode, False
                    e = self.parse_additive()
                    self.row_mode = saved
                    self.skip_noise()
                    self.expect_op(")")
                return e
            if t.value == "[" and self.latex:
                with self.nest():
                    self.advance()
                    e = self.parse_additive()
                    self.expect_op("]")
                return e
            if t.value == "{" and self.latex:
                return self.parse_group()
            if t.value == "|":
                return self.parse_abs("|")
        if t.kind == "cmd":
            return self.parse_command()
        if t.kind == "name":
            return self.parse_name_atom()
        if t.kind == "text":
            raise self.error(f"unsupported text \\text{{{t.value}}}")
        raise self.error("expected a number, a symbol or a function")

    def parse_abs(self, closer: str) -> Any:
        with self.nest():
            self.advance()
            self.abs_depth += 1
            e = self.parse_additive()
            self.abs_depth -= 1
            self.skip_noise()
            if self.is_cmd("right"):
                self.advance()
            if closer == "|" and self.is_op("|"):
                self.advance()
            elif closer == "rvert" and self.is_cmd("rvert", "vert"):
                self.advance()
            else:
                raise self.error("expected a closing |")
        return sp.Abs(self.as_expr(e))

    def parse_command(self) -> Any:
        t = self.tok
        v = t.value
        if v == "left":
            self.advance()
            if self.is_op("("):
                with self.nest():
                    self.advance()
                    saved, self.row_mode = self.row_mode, False
                    e = self.parse_additive()
                    self.row_mode = saved
                    self.skip_noise()
                    if not self.is_cmd("right"):
                        raise self.error("expected \\right)")
                    self.advance()
                    self.expect_op(")")
                return e
            if self.is_op("["):
                with self.nest():
                    self.advance()
                    e = self.parse_additive()
                    if self.is_cmd("right"):
                        self.advance()
                    self.expect_op("]")
                return e
            if self.is_op("|") or self.is_cmd("vert", "lvert"):
                return self.parse_abs("|" if self.is_op("|") else "rvert")
            if self.is_op("\\{"):
                with self.nest():
                    self.advance()
                    e = self.parse_additive()
                    if self.is_cmd("right"):
                        self.advance()
                    self.expect_op("\\}")
                return e
            raise self.error("unsupported \\left delimiter")
        if v in ("lvert", "vert"):
            return self.parse_abs("rvert")
        if v in ("frac", "dfrac", "tfrac"):
            self.advance()
            with self.nest():
                num = self.as_expr(self.parse_single_token_arg())
                den = self.as_expr(self.parse_single_token_arg())
            out = num / den
            _check_number_size(out)
            return out
        if v == "sqrt":
            self.advance()
            index = None
            if self.is_op("["):
                with self.nest():
                    self.advance()
                    index = self.as_expr(self.parse_additive())
                    self.expect_op("]")
            with self.nest():
                arg = self.as_expr(self.parse_single_token_arg())
            if index is None:
                return sp.sqrt(arg)
            return _power(arg, 1 / index)
        if v == "infty":
            self.advance()
            return sp.oo
        if v == "pi" and self.lookup("pi") is None:
            self.advance()
            return sp.pi
        if v in _LATEX_FUNCS:
            self.advance()
            return self.apply_function(v, t.pos)
        if v in ("sum", "prod"):
            self.advance()
            return self.parse_big_operator(v)
        if v == "begin":
            return self.parse_cases()
        if v in _GREEK or v in _GREEK_ALIASES or v in _ACCENTS or v in _FONTS or v == "pi":
            return self.parse_name_atom()
        if v == "ell":
            self.advance()
            found = self.lookup("ell") or self.lookup("l")
            if found is None:
                raise self.unknown("ell", t.pos)
            return found
        raise ClaimSyntaxError(f"unsupported LaTeX command \\{v} at position {t.pos}")

    # -- functions --------------------------------------------------------
    def apply_function(self, name: str, pos: int) -> Any:
        if not self.latex:
            return self.apply_python_function(name, pos)
        log_base = None
        power = None
        if name == "log" and self.is_op("_"):
            self.advance()
            log_base = self.as_expr(self.parse_single_token_arg())
        if self.is_op("^"):
            self.advance()
            power = self.as_expr(self.parse_exponent())
        self.skip_noise()
        with self.nest():
            if self.is_op("(", "{") or self.is_cmd("left"):
                # A delimited argument: a following ^ raises the function's value (\ln(z)^2 = (ln z)^2).
                arg = self.as_expr(self.parse_atom())
            else:
                # ``\ln z``: the argument is one factor with its power (``\log x^2`` = log(x^2)).
                arg = self.as_expr(self.parse_power())
        if power is not None and power == -1 and name in _INVERSE_TRIG:
            return _INVERSE_TRIG[name](arg)
        if name == "log":
            value = sp.log(arg) if log_base is None else sp.log(arg) / sp.log(log_base)
        else:
            value = _FUNCS1[name](arg)
        return value if power is None else _power(value, power)

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
        if self.is_op("(") and self._paren_holds_condition():
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

    def apply_python_function(self, name: str, pos: int) -> Any:
        if name == "Piecewise":
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
                if not _is_condition(cond):
                    if cond == 1 or str(cond) == "True":
                        cond = sp.true
                    else:
                        raise ClaimSyntaxError(f"Piecewise condition {cond} is not a condition")
                out.append((self.as_expr(expr), cond))
            return sp.Piecewise(*out)
        if name in ("Sum", "Product"):
            return self.parse_python_big_operator(name)
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
        return _FUNCS1[name](args[0])

    def parse_python_big_operator(self, name: str) -> Any:
        # Sum(expr, (i, a, b)): the index must be bound before the summand is parsed, so
        # read the limits first by scanning for the tuple, then parse the summand.
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

    def parse_big_operator(self, kind: str) -> Any:
        """``\\sum_{i=1}^{n} term`` / ``\\prod_{d=1}^{D} term``: the operand is the following product."""
        if not self.is_op("_"):
            raise self.error(f"\\{kind} needs limits: \\{kind}_{{i=1}}^{{n}}")
        self.advance()
        braced = self.is_op("{")
        if braced:
            self.advance()
        idx_tok = self.advance()
        if idx_tok.kind != "name":
            raise self.error("expected the index name")
        name = idx_tok.value
        index = sp.Symbol(name, integer=True)
        if not self.is_op("="):
            raise ClaimSyntaxError(f"\\{kind} over {name} needs explicit limits, e.g. \\{kind}_{{{name}=1}}^{{n}}")
        self.advance()
        if braced:
            lo = self.as_expr(self.parse_additive())
            self.expect_op("}")
        else:
            lo = self.as_expr(self.parse_single_token_arg())
        self.expect_op("^")
        hi = self.as_expr(self.parse_single_token_arg())
        self.bound.append({name: index})
        try:
            with self.nest():
                body = self.as_expr(self.parse_term())
        finally:
            self.bound.pop()
        cls = sp.Sum if kind == "sum" else sp.Product
        return cls(body, (index, lo, hi))

    def parse_cases(self) -> Any:
        self.advance()  # \begin
        env = self.parse_env_name()
        if env != "cases":
            raise ClaimSyntaxError(f"unsupported environment {env!r} (only cases)")
        pieces = []
        saved, self.row_mode = self.row_mode, True
        try:
            with self.nest():
                while True:
                    self.skip_noise()
                    expr = self.as_expr(self.parse_additive())
                    self.skip_noise()
                    if self.is_op(","):
                        self.advance()
                    self.skip_noise()
                    if self.is_op("&"):
                        self.advance()
                    self.skip_noise()
                    while self.tok.kind == "text" and self.tok.value.strip().lower() in _TEXT_SKIP:
                        self.advance()
                        self.skip_noise()
                    while self.tok.kind == "name" and self.tok.value in ("for", "if", "when"):
                        self.advance()
                    if self.is_op("\\\\") or self.is_cmd("end"):
                        cond = sp.true
                    else:
                        cond = self.parse_condition(allow_comma=False)
                    pieces.append((expr, cond))
                    self.skip_noise()
                    while self.is_op(".", ","):
                        self.advance()
                    if self.is_op("\\\\"):
                        self.advance()
                        self.skip_noise()
                        if self.is_cmd("end"):
                            break
                        continue
                    if self.is_cmd("end"):
                        break
                    raise self.error("expected \\\\ or \\end{cases}")
        finally:
            self.row_mode = saved
        self.advance()  # \end
        if self.parse_env_name() != "cases":
            raise ClaimSyntaxError("\\begin{cases} closed by a different \\end")
        return sp.Piecewise(*pieces)

    def parse_env_name(self) -> str:
        self.expect_op("{")
        t = self.advance()
        self.expect_op("}")
        return t.value


# ----------------------------------------------------------------- helpers


def _is_condition(e: Any) -> bool:
    # (A Symbol is also a sympy Boolean, so test for the condition classes themselves.)
    return isinstance(e, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction,
                          sp.logic.boolalg.BooleanAtom))


def _number(text: str) -> sp.Expr:
    mantissa = re.split(r"[eE]", text)[0]
    if len(mantissa.replace(".", "").lstrip("0")) > MAX_DIGITS:
        raise ClaimRefused(f"number with more than {MAX_DIGITS} digits")
    if re.search(r"[eE.]", text):
        if "e" in text.lower():
            exp10 = int(re.split(r"[eE]", text)[1])
            if abs(exp10) > MAX_EXPONENT:
                raise ClaimRefused(f"number {text[:20]}... has a decimal exponent beyond ±{MAX_EXPONENT}")
        # Decimals are exact rationals: 0.1 means 1/10 (the homework's slope), not a binary float.
        frac = fractions.Fraction(text)
        return sp.Rational(frac.numerator, frac.denominator)
    return sp.Integer(int(text))


def _check_number_size(value: Any) -> None:
    if isinstance(value, sp.Rational):
        for part in (value.p, value.q):
            if part != 0 and abs(part).bit_length() * 0.30103 > MAX_DIGITS + 1:
                raise ClaimRefused(f"numbers larger than {MAX_DIGITS} digits are refused")


def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
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


def _relation(op: str, a: sp.Expr, b: sp.Expr) -> Any:
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


def _prepare(text: str, latex: bool | None, what: str) -> tuple[str, bool]:
    if not isinstance(text, str):
        raise ClaimSyntaxError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ClaimRefused(f"{what} is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ClaimSyntaxError(f"{what} is empty")
    use_latex = is_latex(text) if latex is None else bool(latex)
    text = _normalise(text, use_latex)
    if len(text) > 2 * MAX_LENGTH:
        raise ClaimRefused(f"{what} is too long")
    # Display-math wrappers and a leading "f(z) =" are not part of the formula.
    stripped = text.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if stripped.startswith(a) and stripped.endswith(b) and len(stripped) >= len(a) + len(b):
            stripped = stripped[len(a):len(stripped) - len(b)]
            break
    return stripped, use_latex


def _guard(fn, *args):
    try:
        return fn(*args)
    except ClaimError:
        raise
    except RecursionError:
        raise ClaimRefused(f"formula nested too deeply (limit {MAX_DEPTH})") from None
    except (TypeError, AttributeError, ValueError, ZeroDivisionError, IndexError, KeyError,
            NotImplementedError, sp.SympifyError) as exc:
        # SymPy rejects some well-formed but meaningless trees (a condition used as a number...).
        raise ClaimSyntaxError(f"not a valid formula: {exc}") from None


def parse_claim(text: str, symbols: Mapping[str, Any], latex: bool | None = None) -> sp.Expr:
    """Parse a claimed formula into a SymPy expression over ``symbols`` (name -> Symbol/IndexedBase).

    ``latex=None`` detects the notation; ``True``/``False`` forces it. Raises
    :class:`ClaimSyntaxError`, :class:`UnknownSymbolError` or :class:`ClaimRefused`
    (all ``ValueError``) with a message naming the problem.
    """
    text, use_latex = _prepare(text, latex, "EXPR")
    # A leading "f(z) =" / "F_Z(z) =" is the student's left-hand side, not the formula.
    m = re.match(r"^\s*[A-Za-z\\{}_^()\s,|]{0,40}?=(?![=<>])", text)
    if m and not re.search(r"[<>]", m.group(0)):
        rest = text[m.end():]
        if rest.strip():
            try:
                return _guard(lambda: _Parser(rest, symbols, use_latex).parse_expression_top())
            except ClaimError:
                pass
    return _guard(lambda: _Parser(text, symbols, use_latex).parse_expression_top())


def parse_condition(text: str, symbols: Mapping[str, Any], latex: bool | None = None) -> Any:
    """Parse a condition such as ``1 < z < sqrt(2)`` or ``z \\ge 0, mu > 1`` into a SymPy boolean."""
    text, use_latex = _prepare(text, latex, "--where")
    cond = _guard(lambda: _Parser(text, symbols, use_latex).parse_condition_top())
    if cond is sp.true or cond is True:
        return sp.true
    if not _is_condition(cond):
        raise ClaimSyntaxError("--where must be a condition such as 1 < z < sqrt(2)")
    return cond
