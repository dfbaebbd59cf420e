r"""LaTeX claims: the rules of the notation a write-up uses, on top of the shared grammar.

The 5b answer of the homework,

.. math:: f_{e^Y}(z) = \frac{1}{\sigma\sqrt{2\pi z}}\, e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}},

reads as ``exp(-(log(z) - mu)**2/(2*sigma**2))/(sigma*sqrt(2*pi*z))``. What this
grammar adds to :class:`~genverify.claims.grammar.Parser`:

* ``\frac{a}{b}`` (and ``\frac12``: an unbraced argument is one digit, letter
  or command), ``\sqrt[n]{x}``, ``{...}`` groups, ``\left( \right)``,
  ``|x|``/``\lvert x \rvert``, ``\cdot``/``\times``, spacing commands;
* functions ``\ln z``, ``\log_2 x``, ``\exp``, ``e^{...}``, ``\cos^{-1}`` (the
  inverse), ``\ln(z)^2`` = (ln z)^2 but ``\log x^2`` = log(x^2);
* names: single letters (``xy`` is x*y), Greek commands, accents and fonts
  (``\hat\mu``, ``\mathbf{x}``), subscripts that join the name (``\sigma_1``),
  ``\pi``, ``\infty``, ``\ell``;
* indexed symbols ``p_d^{(k)}`` = ``p[k, d]`` (superscript indices first, as
  in the homework's K x D matrix ``p``) and ``x_{ik}`` (a letter per index);
* ``\sum_{i=1}^{n}``/``\prod_{d=1}^{D}`` over the following product;
* ``\begin{cases} ... \end{cases}`` with ``\text{for}``/``\text{otherwise}``,
  and conditions ``\le``, ``\geq``, ``\land``, ``\lor``, ``z \in [0, 1]``.

(Somewhat over 500 lines: this is one notation's grammar, whose rules call
one another (an exponent is a group or a one-token argument, ``\frac`` reads
two of them, a name may carry indices, ...); split further it would scatter
one grammar over several files.)
"""

from __future__ import annotations

import re
from typing import Any

import sympy as sp

from genverify.claims.errors import POS, ClaimSyntaxError, UnsupportedConstructError
from genverify.claims.grammar import FUNCS1, FUNCS_N, Parser, check_number_size, power
from genverify.claims.lexer import Token, number

__all__ = ["LatexParser"]

_GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "mu", "nu", "xi", "omicron", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Sigma", "Upsilon", "Phi", "Psi", "Omega",
}
_GREEK_ALIASES = {"varepsilon": "epsilon", "varphi": "phi", "vartheta": "theta", "varrho": "rho",
                  "varsigma": "sigma", "varpi": "pi"}
_INVERSE_TRIG = {"sin": sp.asin, "cos": sp.acos, "tan": sp.atan, "sinh": sp.asinh, "cosh": sp.acosh, "tanh": sp.atanh}
# LaTeX commands that are functions (\ln z, \cos^{-1}(1/z), \log_2 x).
_FUNCS = {"exp", "ln", "log", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan",
          "sinh", "cosh", "tanh", "erf", "lg"}
# Commands of several arguments: \min(a, b), \max(a, b, c).
_FUNCS_N = {"min", "max"}
# Commands the checker does not evaluate, with what to write instead.
_UNSUPPORTED = {
    "int": "integrals are not evaluated: write the integrated formula",
    "iint": "integrals are not evaluated: write the integrated formula",
    "oint": "integrals are not evaluated: write the integrated formula",
    "lim": "limits are not evaluated: write the limit's value",
    "partial": "a partial derivative is written \\frac{\\partial}{\\partial x} f",
    "nabla": "gradients are not evaluated: write the components",
    "to": "arrows are not formulas: write the formula", "rightarrow": "arrows are not formulas: write the formula",
    "Rightarrow": "implications are not formulas: write one line per step",
    "approx": "an approximation is not checkable: write the exact formula, or a number and use a numeric test",
    "pm": "\\pm stands for two formulas: check each",
}
# Letter runs that, in LaTeX written without a backslash, still mean a function (``ln z``).
_PLAIN_FUNCS = {"exp", "ln", "log", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "acos", "asin", "atan"}
_SKIP = {",", ";", ":", "!", " ", "quad", "qquad", "displaystyle", "textstyle", "big", "Big", "bigg", "Bigg",
         "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "limits", "nolimits"}
_REL = {"le": "<=", "leq": "<=", "leqslant": "<=", "ge": ">=", "geq": ">=", "geqslant": ">=",
        "lt": "<", "gt": ">", "ne": "!=", "neq": "!="}
_MUL = {"cdot", "times", "ast"}
_ACCENTS = {"hat", "bar", "tilde", "widehat", "widetilde", "overline", "vec"}
_FONTS = {"mathbf", "boldsymbol", "bm", "mathrm", "mathit", "operatorname", "mathsf", "mathcal", "mathbb"}
_TEXT_SKIP = {"", "for", "if", "when", "where", "with", "on", ","}
_TEXT_TRUE = {"otherwise", "elsewhere", "else", "true", "otherwise,"}
# Commands that name a symbol (read by read_name), and those that start a factor of an implicit product.
_NAME_CMDS = _GREEK | set(_GREEK_ALIASES) | _ACCENTS | _FONTS | {"pi"}
_ATOM_CMDS = _FUNCS | _FUNCS_N | _NAME_CMDS | {"infty", "frac", "dfrac", "tfrac", "sqrt", "sum", "prod", "lvert",
                                               "vert", "exp", "ell", "begin", "left"}
# Commands that end a term (relations, connectives, closing delimiters, environment ends).
_STOP_CMDS = set(_REL) | {"right", "end", "in", "land", "lor", "wedge", "vee", "rvert", "mid", "notin", "text",
                          "over"}
# Numerators of a derivative operator \frac{d}{dx}: d, \mathrm{d}, \partial.
_D_OPERATORS = ("d", "partial")


class LatexParser(Parser):
    """The LaTeX notation."""

    latex = True

    def __init__(self, text: str, symbols):
        super().__init__(text, symbols)
        self.row_mode = False  # inside \begin{cases}: & and \\ end an expression

    # -- hooks of the shared grammar ----------------------------------------
    def at_noise(self) -> bool:
        t = self.tok
        return (t.kind == "cmd" and t.value in _SKIP) or (t.kind == "text" and t.value.strip() == "")

    def at_or(self) -> bool:
        return self.is_cmd("lor", "vee") or super().at_or()

    def at_and(self, allow_comma: bool) -> bool:
        if self.row_mode and self.is_op("&"):
            return False  # the column separator of \begin{cases}
        return super().at_and(allow_comma) or self.is_cmd("land", "wedge")

    def at_times(self) -> bool:
        return super().at_times() or self.is_cmd(*_MUL)

    def relation_op(self) -> str | None:
        if self.tok.kind == "cmd" and self.tok.value in _REL:
            return _REL[self.advance().value]
        return super().relation_op()

    def is_relation_token(self, t: Token) -> bool:
        return super().is_relation_token(t) or (t.kind == "cmd" and t.value in _REL)

    def truth_value(self) -> Any | None:
        t = self.tok
        if t.kind == "text" and t.value.strip().lower() in _TEXT_TRUE:
            self.advance()
            return sp.true
        return super().truth_value()

    def membership(self, x: sp.Expr) -> Any | None:
        if not self.is_cmd("in"):
            return None
        self.advance()
        return self.parse_interval(x)

    def starts_atom(self) -> bool:
        if super().starts_atom():
            return True
        t = self.tok
        if t.kind == "op":
            return t.value == "{" or (t.value == "|" and self.abs_depth == 0)
        # Any other command but those that end a term starts a factor: an unknown one is then named as unsupported.
        return t.kind == "cmd" and (t.value in _ATOM_CMDS or (t.value not in _STOP_CMDS and t.value not in _SKIP
                                                             and t.value not in _MUL))

    def parse_exponent(self) -> Any:
        if self.is_op("{"):
            return self.parse_group()
        return self.parse_single_token_arg(allow_sign=True)

    def parse_inner(self) -> Any:
        saved, self.row_mode = self.row_mode, False
        try:
            return self.parse_additive()
        finally:
            self.row_mode = saved

    def starts_name(self) -> bool:
        return super().starts_name() or (self.tok.kind == "cmd" and self.tok.value in _NAME_CMDS)

    def read_name(self) -> tuple[str, int, str | None]:
        """A name: letters, a Greek command, or an accent or font around a name."""
        t = self.tok
        if t.kind == "cmd" and (t.value in _ACCENTS or t.value in _FONTS):
            self.advance()
            accent = t.value if t.value in _ACCENTS else None
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
        if t.kind == "name" and len(t.value.rstrip("'")) > 1 and self.lookup(t.value) is None \
                and not self._plain_function(t.value):
            # LaTeX letters are single-letter symbols: ``xy`` is x*y. Split off the first letter.
            return self._split_letter(t), t.pos - 1, None
        return super().read_name()

    def is_builtin(self, name: str) -> bool:
        return self._plain_function(name) and self.lookup(name) is None

    def parse_builtin(self, name: str, pos: int) -> Any:
        if name == "e":
            return sp.E
        return self.apply_function(name, pos)

    def name_candidates(self, name: str, accent: str | None) -> list[str]:
        return [name] + ([f"{name}_{accent}", f"{name}{accent}"] if accent else [])

    def resolve_subscript(self, base: Any, name: str, pos: int) -> tuple[Any, str]:
        # Subscripts join the name (sigma_1 -> sigma1 / sigma_1) unless the base is indexed.
        if not self.is_op("_") or isinstance(base, sp.IndexedBase):
            return base, name
        sub, _, _ = self.read_subscript_text()
        for cand in (f"{name}_{sub}", f"{name}{sub}", f"{name}_{{{sub}}}"):
            found = self.lookup(cand)
            if found is not None:
                return found, cand
        if self.new_symbols is not None and sub.isalnum():
            return self.fallback(f"{name}_{sub}", pos), f"{name}_{sub}"
        raise self.unknown(f"{name}_{{{sub}}}", pos)

    def read_index_group(self, upper: list, lower: list) -> bool:
        """``_d``, ``_{k,d}``, ``_{ik}``, ``^{(k)}``, ``^(k)``, or the shared ``[k, d]``."""
        if self.is_op("_"):
            self.advance()
            lower.extend(self.parse_index_list(closing="}" if self.is_op("{") else None))
            return True
        if self.is_op("^") and self._peek_op(1, "{") and self._peek_op(2, "("):
            self.advance()
            self.advance()
            self.advance()
            upper.extend(self.index_items(")"))
            self.expect_op("}")
            return True
        if self.is_op("^") and self._peek_op(1, "("):
            self.advance()
            self.advance()
            upper.extend(self.index_items(")"))
            return True
        return super().read_index_group(upper, lower)

    def close_abs(self, closer: str) -> None:
        if self.is_cmd("right"):
            self.advance()
        if closer == "rvert" and self.is_cmd("rvert", "vert"):
            self.advance()
            return
        super().close_abs(closer)

    def parse_atom(self) -> Any:
        self.skip_noise()
        t = self.tok
        if t.kind == "op" and t.value == "[":
            with self.nest():
                self.advance()
                e = self.parse_additive()
                self.expect_op("]")
            return e
        if t.kind == "op" and t.value == "{":
            return self.parse_group()
        if t.kind == "cmd":
            return self.parse_command()
        if t.kind == "text":
            raise self.error(f"unsupported text \\text{{{t.value}}}")
        return super().parse_atom()

    def apply_function(self, name: str, pos: int) -> Any:
        """``\\ln z``, ``\\log_2 x``, ``\\cos^{-1}(t)``, ``\\sin^2 x``: base, power, then the argument."""
        log_base = None
        exponent = None
        if name == "log" and self.is_op("_"):
            self.advance()
            log_base = self.as_expr(self.parse_single_token_arg())
        if self.is_op("^"):
            self.advance()
            exponent = self.as_expr(self.parse_exponent())
        self.skip_noise()
        with self.nest():
            if self.is_op("(", "{") or self.is_cmd("left"):
                # A delimited argument: a following ^ raises the function's value (\ln(z)^2 = (ln z)^2).
                arg = self.as_expr(self.parse_atom())
            else:
                # ``\ln z``: the argument is one factor with its power (``\log x^2`` = log(x^2)),
                # and the numbers and letters multiplied onto it (``\sin 2x`` = sin(2x)).
                arg = self.as_expr(self.parse_power())
                while self.starts_bare_factor():
                    arg = arg * self.as_expr(self.parse_power())
        if exponent is not None and exponent == -1 and name in _INVERSE_TRIG:
            return _INVERSE_TRIG[name](arg)
        if name == "log":
            value = sp.log(arg) if log_base is None else sp.log(arg) / sp.log(log_base)
        elif name == "lg":
            value = sp.log(arg) / sp.log(10)
        else:
            value = FUNCS1[name](arg)
        return value if exponent is None else power(value, exponent)

    def starts_bare_factor(self) -> bool:
        """Whether a number or a plain symbol follows, continuing an unbracketed function argument."""
        self.skip_noise()
        t = self.tok
        if t.kind == "num":
            return True
        if t.kind == "name":
            if self._plain_function(t.value) and self.lookup(t.value) is None:
                return False
            return not (t.value == "e" and self._peek_op(1, "^") and self.lookup("e") is None)
        return t.kind == "cmd" and (t.value in _GREEK or t.value in _GREEK_ALIASES) and t.value != "pi"

    # -- LaTeX's own constructs -------------------------------------------
    def _peek_op(self, k: int, op: str) -> bool:
        t = self.peek(k)
        return t.kind == "op" and t.value == op

    def _plain_function(self, name: str) -> bool:
        return name in _PLAIN_FUNCS or name in ("e",)

    def _split_letter(self, t: Token) -> str:
        """Take the first letter off the name token ``t`` (at the cursor), which stays for the rest."""
        letter = t.value[0]
        t.value = t.value[1:]
        t.pos += 1
        return letter

    def parse_group(self) -> Any:
        """``{ ... }``."""
        with self.nest():
            self.expect_op("{")
            e = self.parse_inner()
            self.skip_noise()
            self.expect_op("}")
            return e

    def parse_single_token_arg(self, allow_sign: bool = False) -> Any:
        """An argument without braces: one digit, one letter or one command (``\\frac12``, ``x^2``)."""
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
            return number(t.value)
        if t.kind == "name":
            if len(t.value) > 1 and self.lookup(t.value) is None:
                # \frac ab = a/b: the argument is the first letter.
                return self._letter(self._split_letter(t), t.pos - 1)
            return self.parse_postfix()
        if t.kind == "cmd":
            return self.parse_atom()
        raise self.error("expected an argument")

    def _letter(self, letter: str, pos: int) -> Any:
        found = self.lookup(letter)
        if found is not None:
            return found
        if letter == "e":
            return sp.E
        return self.fallback(letter, pos)

    def read_subscript_text(self) -> tuple[str, int, int]:
        """Read ``_x`` or ``_{...}``; return its raw text and the token span (start, end)."""
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
            if len(t.value.rstrip("'")) > 1:
                return self._split_letter(t), start, start  # (a split token cannot be re-parsed by span)
            self.advance()
            return t.value, start, self.i
        if t.kind == "cmd":
            self.advance()
            return _GREEK_ALIASES.get(t.value, t.value), start, self.i
        raise self.error("expected a subscript")

    def parse_index_list(self, closing: str | None) -> list[sp.Expr]:
        if closing is None:
            name, pos, _ = self.read_name() if self.tok.kind != "num" else (self.advance().value, 0, None)
            return [self.index_value(name, pos)]
        self.advance()  # {
        # ``_{ik}``: a run of index letters is one index per letter.
        t = self.tok
        if t.kind == "name" and self._peek_op(1, "}") and self.lookup(t.value) is None \
                and len(t.value.rstrip("'")) > 1:
            self.advance()
            self.advance()
            letters = re.findall(r"[A-Za-z]'*", t.value)
            return [self.index_value(ch, t.pos) for ch in letters]
        return self.index_items("}")

    def index_value(self, name: str, pos: int) -> sp.Expr:
        if re.fullmatch(r"\d+", name):
            return sp.Integer(int(name))
        found = self.lookup(name)
        if found is None:
            raise self.unknown(name, pos)
        return found

    def parse_interval(self, x: sp.Expr) -> Any:
        """``x \\in [a, b)``, ``x \\in \\left(a, b\\right]``: the condition a <= x < b."""
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

    def parse_command(self) -> Any:
        t = self.tok
        v = t.value
        if v == "left":
            return self.parse_left()
        if v in ("lvert", "vert"):
            return self.parse_abs("rvert")
        if v in ("frac", "dfrac", "tfrac") and self._at_derivative_operator():
            return self.parse_derivative()
        if v in ("frac", "dfrac", "tfrac"):
            self.advance()
            with self.nest():
                num = self.as_expr(self.parse_single_token_arg())
                den = self.as_expr(self.parse_single_token_arg())
            out = num / den
            check_number_size(out)
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
            return power(arg, 1 / index)
        if v == "infty":
            self.advance()
            return sp.oo
        if v == "pi" and self.lookup("pi") is None:
            self.advance()
            return sp.pi
        if v in _FUNCS:
            self.advance()
            return self.apply_function(v, t.pos)
        if v in ("sum", "prod"):
            self.advance()
            return self.parse_big_operator(v)
        if v == "begin":
            return self.parse_cases()
        if v in _NAME_CMDS:
            return self.parse_name_atom()
        if v == "ell":
            self.advance()
            found = self.lookup("ell") or self.lookup("l")
            if found is None:
                raise self.unknown("ell", t.pos)
            return found
        if v in _FUNCS_N:
            self.advance()
            return self.parse_min_max(v, t.pos)
        if v in _UNSUPPORTED:
            raise UnsupportedConstructError(f"unsupported LaTeX command \\{v} at position {POS}: {_UNSUPPORTED[v]}",
                                            pos=t.pos)
        raise UnsupportedConstructError(f"unsupported LaTeX command \\{v} at position {POS}", pos=t.pos)

    def parse_min_max(self, name: str, pos: int) -> Any:
        """``\\min(a, b)``, ``\\max\\left(a, b, c\\right)``."""
        self.skip_noise()
        right = self.is_cmd("left")
        if right:
            self.advance()
        if not self.is_op("("):
            raise self.error(f"\\{name} needs its arguments in parentheses: \\{name}(a, b)")
        args = []
        with self.nest():
            self.advance()
            while True:
                args.append(self.as_expr(self.parse_inner()))
                self.skip_noise()
                if self.is_op(","):
                    self.advance()
                    continue
                break
            if self.is_cmd("right"):
                self.advance()
            self.expect_op(")")
        return FUNCS_N[name][0](*args)

    def _at_derivative_operator(self) -> bool:
        """``\\frac{d}{dx}``, ``\\frac{\\partial}{\\partial x}``, ``\\frac{\\mathrm{d}}{\\mathrm{d}x}`` at the cursor."""
        k = 1
        if not self._peek_op(k, "{"):
            return False
        k += 1
        if self.peek(k).kind == "cmd" and self.peek(k).value == "mathrm":
            if not (self._peek_op(k + 1, "{") and self.peek(k + 2).value == "d" and self._peek_op(k + 3, "}")):
                return False
            k += 4
        elif (self.peek(k).kind == "name" and self.peek(k).value == "d") or \
                (self.peek(k).kind == "cmd" and self.peek(k).value == "partial"):
            k += 1
        else:
            return False
        if not (self._peek_op(k, "}") and self._peek_op(k + 1, "{")):
            return False
        t = self.peek(k + 2)
        return (t.kind == "name" and t.value.startswith("d")) or (t.kind == "cmd" and t.value in ("partial",
                                                                                              "mathrm"))

    def parse_derivative(self) -> Any:
        """``\\frac{d}{dx} f``: the derivative of the factor that follows with respect to the symbol x."""
        start = self.tok.pos
        self.advance()  # \frac
        self.expect_op("{")
        if self.is_cmd("mathrm"):
            self.advance()
            self.expect_op("{")
            self.advance()
            self.expect_op("}")
        else:
            self.advance()  # d or \partial
        self.expect_op("}")
        self.expect_op("{")
        t = self.tok
        if t.kind == "cmd" and t.value == "mathrm":
            self.advance()
            self.expect_op("{")
            self.advance()
            self.expect_op("}")
        elif t.kind == "cmd":
            self.advance()  # \partial
        elif t.value == "d":
            self.advance()
        else:
            self._split_letter(t)  # "dz": the d, then z
        self.skip_noise()
        with self.nest():
            var = self.as_expr(self.parse_postfix())
            self.skip_noise()
            self.expect_op("}")
            if not isinstance(var, (sp.Symbol, sp.Indexed)):
                raise ClaimSyntaxError(f"the derivative at position {POS} must be with respect to a symbol, "
                                       f"not {var}", pos=start)
            self.skip_noise()
            if self.tok.kind == "end" or self.is_op("+", "-", ")", "=", "}", "&") or self.is_cmd("right"):
                raise self.error("a derivative \\frac{d}{dx} needs the formula it applies to")
            operand = self.as_expr(self.parse_power())
        return sp.Derivative(operand, var)

    def parse_left(self) -> Any:
        """``\\left( ... \\right)``, ``\\left[ ... \\right]``, ``\\left| ... \\right|``, ``\\left\\{ ... \\right\\}``."""
        self.advance()
        if self.is_op("("):
            with self.nest():
                self.advance()
                e = self.parse_inner()
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
        """``\\begin{cases} expr & cond \\\\ expr & \\text{otherwise} \\end{cases}`` -> Piecewise."""
        self.advance()  # \begin
        env = self.parse_env_name()
        if env != "cases":
            raise ClaimSyntaxError(f"unsupported environment {env!r} (only cases)")
        pieces = []
        saved, self.row_mode = self.row_mode, True
        try:
            with self.nest():
                while True:
                    pieces.append(self._case_row())
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

    def _case_row(self) -> tuple[sp.Expr, Any]:
        """One row ``expr & [\\text{for}] cond`` (no condition: True)."""
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
        return expr, cond

    def parse_env_name(self) -> str:
        self.expect_op("{")
        t = self.advance()
        self.expect_op("}")
        return t.value
