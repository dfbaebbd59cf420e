"""The claim parser's first stage: safety limits, Unicode normalisation, and a whitelist tokenizer.

A claimed formula is text a student wrote; nothing of it reaches ``eval``.
This module turns the text into :class:`Token` values, refusing any
character outside a fixed whitelist, before a grammar
(:mod:`genverify.claims.latex_grammar`, :mod:`genverify.claims.python_grammar`)
builds the SymPy tree.

Token kinds: ``num`` (digits), ``name`` (a run of letters), ``cmd`` (a LaTeX
command such as ``\\frac``, without its backslash), ``text`` (the words of
``\\text{...}``), ``op`` (one of :data:`OPS`) and ``end``. The two notations
lex differently:

* Python style: names may contain ``_`` and digits (``sigma_1``, ``n_neg``),
  numbers may have an exponent (``1e-3``); there are no commands.
* LaTeX: a name is a run of letters (the grammar splits ``xy`` into x*y),
  ``\\cmd`` is a command, ``\\,`` and friends are spacing.

Limits (each refusal is a :class:`~genverify.claims.errors.ClaimRefused`):
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of nesting, numeric
exponents up to :data:`MAX_EXPONENT` and numbers of at most
:data:`MAX_DIGITS` digits, so that no input can make SymPy build a huge
integer (``9**9**9**9`` is refused, not computed).

>>> [t.value for t in tokenize("2*pi_1^2", latex=False)]
['2', '*', 'pi_1', '^', '2', '']
>>> [(t.kind, t.value) for t in tokenize("\\\\frac12", latex=True)][:2]
[('cmd', 'frac'), ('num', '12')]
"""

from __future__ import annotations

import fractions
import re
from dataclasses import dataclass

import sympy as sp

from genverify.claims.errors import ClaimRefused, ClaimSyntaxError

__all__ = ["Token", "tokenize", "normalise", "is_latex", "number",
           "MAX_LENGTH", "MAX_DEPTH", "MAX_EXPONENT", "MAX_DIGITS"]

#: Longest accepted input, in characters.
MAX_LENGTH = 2000
#: Deepest accepted nesting (parentheses, braces, function arguments, unary signs, powers).
MAX_DEPTH = 50
#: Largest accepted |numeric exponent| (numerator and denominator of a rational one).
MAX_EXPONENT = 1000
#: Most digits in one number (a literal, or the result of a numeric power).
MAX_DIGITS = 1000

_UNICODE_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "ζ": "zeta", "η": "eta",
    "θ": "theta", "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "ξ": "xi", "π": "pi", "ρ": "rho",
    "σ": "sigma", "τ": "tau", "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega",
}
# Unicode operators a student may paste; mapped to ASCII before tokenizing.
_UNICODE_OPS = {"·": "*", "×": "*", "−": "-", "–": "-", "≤": "<=", "≥": ">=", "≠": "!=", "²": "^2", "³": "^3"}

#: Operators and delimiters, longest first where one is a prefix of another.
OPS = ["**", "<=", ">=", "==", "!=", "&&", "||", "\\\\", "\\{", "\\}", "\\|", "\\&",
       "+", "-", "*", "/", "^", "(", ")", "[", "]", "{", "}", ",", "<", ">", "=", "&", "|", "_", "!", "'", "."]

_NUM_RE = re.compile(r"\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
_NUM_LATEX_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*'*")
_LETTERS_RE = re.compile(r"[A-Za-z]+'*")
_COMMAND_RE = re.compile(r"[A-Za-z]+")
_TEXT_COMMANDS = ("text", "textrm", "textnormal", "mbox")


@dataclass
class Token:
    """One token; a grammar may shorten a ``num`` or ``name`` token in place (LaTeX's ``x^23`` = x^2 * 3)."""

    kind: str  # "num", "name", "cmd", "text", "op", "end"
    value: str
    pos: int


def is_latex(text: str) -> bool:
    """Whether ``text`` is LaTeX: it has a backslash or a brace (Python-style math has neither)."""
    return any(c in text for c in "\\{}")


def normalise(text: str, latex: bool) -> str:
    """Spell pasted Unicode (``σ``, ``≤``, ``∞``, ``√``) in the notation's ASCII."""
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


def tokenize(text: str, latex: bool) -> list[Token]:
    """The tokens of ``text`` in the given notation, ending with an ``end`` token.

    Raises :class:`~genverify.claims.errors.ClaimSyntaxError` for a character
    outside the whitelist or an unclosed ``\\text{``.
    """
    number_re, name_re = (_NUM_LATEX_RE, _LETTERS_RE) if latex else (_NUM_RE, _NAME_RE)
    toks: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if latex and ch == "\\" and i + 1 < n and text[i + 1].isalpha():
            i = _command(text, i, toks)
            continue
        if latex and ch == "\\" and i + 1 < n and text[i + 1] in ",;:! ":
            i += 2  # spacing
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = number_re.match(text, i)
            toks.append(Token("num", m.group(0), i))
            i = m.end()
            continue
        if ch.isascii() and (ch.isalpha() or (ch == "_" and not latex)):
            m = name_re.match(text, i)
            toks.append(Token("name", m.group(0), i))
            i = m.end()
            continue
        for op in OPS:
            if text.startswith(op, i):
                toks.append(Token("op", op, i))
                i += len(op)
                break
        else:
            shown = ch if ch.isprintable() else repr(ch)
            raise ClaimSyntaxError(f"character {shown!r} at position {i} is not allowed in a formula")
    toks.append(Token("end", "", n))
    return toks


def _command(text: str, i: int, toks: list[Token]) -> int:
    """Lex the LaTeX command at ``text[i] == '\\\\'``; return the position after it."""
    m = _COMMAND_RE.match(text, i + 1)
    name = m.group(0)
    j = m.end()
    if name in _TEXT_COMMANDS:
        # \text{...}: keep the words verbatim; they are interpreted (for/if/otherwise) or refused.
        k = j
        while k < len(text) and text[k] == " ":
            k += 1
        if k < len(text) and text[k] == "{":
            close = text.find("}", k + 1)
            if close < 0:
                raise ClaimSyntaxError(f"unclosed \\{name}{{ at position {i}")
            toks.append(Token("text", text[k + 1:close], i))
            return close + 1
    toks.append(Token("cmd", name, i))
    return j


def number(text: str) -> sp.Expr:
    """The exact value of a ``num`` token: an Integer, or a Rational for a decimal (0.1 is 1/10).

    Refuses more than :data:`MAX_DIGITS` digits and a decimal exponent beyond
    :data:`MAX_EXPONENT`.
    """
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
