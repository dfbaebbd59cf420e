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
import unicodedata
from dataclasses import dataclass

import sympy as sp

from genverify.claims.errors import POS, ClaimRefused, ClaimSyntaxError

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "Token",
    "is_latex",
    "normalise",
    "normalise_with_offsets",
    "number",
    "tokenize",
]

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
    "θ": "theta", "ι": "iota", "κ": "kappa", "λ": "lambda", "μ": "mu", "µ": "mu", "ν": "nu", "ξ": "xi",
    "ο": "omicron", "π": "pi", "ρ": "rho", "σ": "sigma", "ς": "sigma", "τ": "tau", "υ": "upsilon",
    "φ": "phi", "ϕ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega", "ϵ": "epsilon", "ϑ": "theta", "ϱ": "rho",
    "Α": "Alpha", "Β": "Beta", "Γ": "Gamma", "Δ": "Delta", "Ε": "Epsilon", "Ζ": "Zeta", "Η": "Eta",
    "Θ": "Theta", "Ι": "Iota", "Κ": "Kappa", "Λ": "Lambda", "Μ": "Mu", "Ν": "Nu", "Ξ": "Xi", "Ο": "Omicron",
    "Π": "Pi", "Ρ": "Rho", "Σ": "Sigma", "Τ": "Tau", "Υ": "Upsilon", "Φ": "Phi", "Χ": "Chi", "Ψ": "Psi",
    "Ω": "Omega",
}
# Unicode operators a student may paste (several minus and times signs); mapped to ASCII before tokenizing.
_UNICODE_OPS = {"·": "*", "×": "*", "⋅": "*", "∗": "*", "✕": "*", "÷": "/", "∕": "/", "⁄": "/",
                "−": "-", "‒": "-", "–": "-", "—": "-", "﹣": "-", "－": "-", "‐": "-", "‑": "-",
                "≤": "<=", "≥": ">=", "⩽": "<=", "⩾": ">=", "≦": "<=", "≧": ">=", "≠": "!=", "∣": "|"}
_SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8",
                 "⁹": "9", "⁻": "-", "⁺": "+"}

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
    """Spell pasted Unicode (``σ``, ``≤``, ``∞``, ``√``, ``−``, ``x²``, full-width ``（）``) in the notation's ASCII."""
    return normalise_with_offsets(text, latex)[0]


def normalise_with_offsets(text: str, latex: bool) -> tuple[str, list[int]]:
    """:func:`normalise`, and for each character of the result (and its end) the index it came from in ``text``.

    Parse errors point at the text as typed (``σ`` became `` sigma ``, but the
    caret goes under the ``σ``).

    >>> normalise_with_offsets("2σ²", latex=False)
    ('2 sigma ^2', [0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3])
    """
    out: list[str] = []
    origin: list[int] = []

    def emit(piece: str, at: int) -> None:
        out.extend(piece)
        origin.extend([at] * len(piece))

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SUPERSCRIPTS:
            j = i
            while j < n and text[j] in _SUPERSCRIPTS:
                j += 1
            power = "".join(_SUPERSCRIPTS[c] for c in text[i:j])
            emit("^" + (power if len(power) == 1 else ("{%s}" if latex else "(%s)") % power), i)
            i = j
            continue
        mapped = _map_char(ch, latex, text[i + 1] if i + 1 < n else "", out[-1] if out else "")
        emit(mapped, i)
        i += 1
    origin.append(n)
    return "".join(out), origin


def _map_char(ch: str, latex: bool, after: str, before: str) -> str:
    if ch.isascii():
        return ch
    if ch in _UNICODE_OPS:
        return _UNICODE_OPS[ch]
    if ch in _UNICODE_GREEK:
        name = _UNICODE_GREEK[ch]
        if latex:
            return f"\\{name} "
        # "2μz" is 2*mu*z, but "μ0" and "σ_1" are names (mu0, sigma_1).
        lead = " " if before.isalnum() else ""
        trail = "" if (after in "0123456789_" and after) else " "
        return lead + name + trail
    if ch == "∞":
        return "\\infty " if latex else " oo "
    if ch == "√":
        return "\\sqrt" if latex else "sqrt"
    if ch.isspace():
        return " "
    # Full-width brackets, operators, digits and letters (（x＋1）), ℯ, non-breaking spaces: their ASCII forms.
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and all(c.isascii() or c in _UNICODE_OPS for c in folded):
        return "".join(_UNICODE_OPS.get(c, c) for c in folded)
    return ch  # refused by the tokenizer, which names it and its position


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
            raise ClaimSyntaxError(f"character {shown!r} at position {POS} is not allowed in a formula", pos=i)
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
                raise ClaimSyntaxError(f"unclosed \\{name}{{ at position {POS}", pos=i)
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
