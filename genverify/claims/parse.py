"""A safe parser for claimed formulas: SymPy/Python-style math or LaTeX -> a SymPy tree.

``genverify check`` and ``genverify errata`` (issue 5) read formulas a student
wrote, such as the 5b answer

.. math:: f_{e^Y}(z) = \\frac{1}{\\sigma\\sqrt{2\\pi z}}\\, e^{-\\frac{(\\ln z-\\mu)^2}{2\\sigma^2}},

and compare them with the registry's derived result. Nothing the user types
reaches ``eval``/``exec``: SymPy's ``parse_expr``/``sympify`` evaluate Python,
so they are never called. Instead a whitelist tokenizer
(:mod:`genverify.claims.lexer`) turns the text into tokens (a character
outside the whitelist is refused), and a recursive-descent parser
(:mod:`genverify.claims.grammar`) builds the SymPy tree itself from a fixed
table of functions and constants and the result's own symbols. An unknown
name is an input error.

Both notations are accepted and detected automatically (a backslash or a brace
means LaTeX: :func:`is_latex`), or forced with ``latex=True``/``False``:

* Python style (:mod:`genverify.claims.python_grammar`):
  ``exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))``, ``^`` for
  powers, implicit multiplication (``2 pi z``), ``oo``/``inf``,
  ``Piecewise((pi*z/2, z <= 1), (0, True))``, ``Sum(x[i], (i, 1, n))``,
  ``p[k, d]`` for indexed symbols.
* LaTeX (:mod:`genverify.claims.latex_grammar`): ``\\frac``, ``\\sqrt[n]{}``,
  ``\\ln``, ``\\log``, ``\\exp``, ``e^{...}``, ``\\cdot``, ``\\times``,
  ``\\left( \\right)``, Greek letters, ``\\pi``, ``\\infty``, ``\\cos^{-1}``,
  ``\\begin{cases} ... \\end{cases}`` with ``\\text{for}``/``\\text{otherwise}``
  and ``z \\in [0, 1]`` conditions, ``\\sum_{i=1}^{n}``/``\\prod_{d=1}^{D}``,
  and indexed symbols written ``p_d^{(k)}`` (superscript indices first:
  ``p[k, d]``).

Limits (each refusal is a :class:`ClaimRefused`, a ``ValueError``):
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of nesting, numeric
exponents up to :data:`MAX_EXPONENT` and numbers of at most
:data:`MAX_DIGITS` digits, so that no input can make SymPy build a huge
integer (``9**9**9**9`` is refused, not computed).

Errors about an argument as a whole (not a string, empty, too long, not a
condition) name it by ``param`` (``text`` by default; the checker passes
``expr`` and ``where``), as :class:`~genverify.core.ParameterError` does.

>>> import sympy as sp
>>> z = sp.Symbol("z", positive=True)
>>> parse_claim("\\\\frac{\\\\pi z}{2}", {"z": z})
pi*z/2
>>> parse_claim("2 pi z^2", {"z": z})
2*pi*z**2
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import sympy as sp

from genverify.claims.errors import (
    ClaimArgumentError,
    ClaimArgumentRefused,
    ClaimError,
    ClaimRefused,
    ClaimSyntaxError,
    UnknownSymbolError,
)
from genverify.claims.grammar import Parser, is_condition
from genverify.claims.latex_grammar import LatexParser
from genverify.claims.lexer import MAX_DEPTH, MAX_DIGITS, MAX_EXPONENT, MAX_LENGTH, is_latex, normalise_with_offsets
from genverify.claims.python_grammar import PythonParser

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "ClaimError",
    "ClaimRefused",
    "ClaimSyntaxError",
    "UnknownSymbolError",
    "is_latex",
    "parse_claim",
    "parse_condition",
]

# A leading "f(z) =" / "F_Z(z) =" is the student's left-hand side, not the formula.
_LEFT_HAND_SIDE = re.compile(r"^\s*[A-Za-z\\{}_^()\s,|]{0,40}?=(?![=<>])")


def parse_claim(text: str, symbols: Mapping[str, Any], latex: bool | None = None, *,
                param: str = "text", new_symbols: dict | None = None) -> sp.Expr:
    """Parse a claimed formula into a SymPy expression over ``symbols`` (name -> Symbol/IndexedBase/Lambda).

    ``latex=None`` detects the notation; ``True``/``False`` forces it. Raises
    :class:`ClaimSyntaxError`, :class:`UnknownSymbolError` or :class:`ClaimRefused`
    (all ``ValueError``) with a message naming the problem; ``param`` is what
    those messages call ``text``. The error's ``pos`` is the offending
    character's index in ``text`` and ``caret()`` draws it.

    With ``new_symbols`` (a dict), an unknown plain name is no error: it
    becomes a new real symbol, added to the dict (the checker then looks for
    the renaming that makes the claim right, as STACK's SubstEquiv does).
    """

    def parser(body: str) -> Parser:
        p = notation(body, symbols)
        p.new_symbols = new_symbols
        return p

    prepared, notation, offsets = _prepare(text, latex, param)
    m = _LEFT_HAND_SIDE.match(prepared)
    rest_error = None
    if m and not re.search(r"[<>]", m.group(0)):
        rest = prepared[m.end():]
        if rest.strip():
            try:
                return _guard(lambda: parser(rest).parse_expression_top(), text, offsets[m.end():])
            except ClaimError as exc:
                rest_error = exc
    try:
        return _guard(lambda: parser(prepared).parse_expression_top(), text, offsets)
    except ClaimError as exc:
        # "f(z) = z +": the fault is after the left-hand side, not in it.
        if rest_error is not None and exc.pos is not None and exc.pos < offsets[m.end()]:
            raise rest_error from None
        raise


def parse_condition(text: str, symbols: Mapping[str, Any], latex: bool | None = None, *,
                    param: str = "text") -> Any:
    """Parse a condition such as ``1 < z < sqrt(2)`` or ``z \\ge 0, mu > 1`` into a SymPy boolean."""
    prepared, parser, offsets = _prepare(text, latex, param)
    cond = _guard(lambda: parser(prepared, symbols).parse_condition_top(), text, offsets)
    if cond is sp.true or cond is True:
        return sp.true
    if not is_condition(cond):
        raise ClaimArgumentError(param, "{param} must be a condition such as 1 < z < sqrt(2)")
    return cond


def _prepare(text: str, latex: bool | None, param: str) -> tuple[str, type[Parser], list[int]]:
    """The text without display-math wrappers, in ASCII, the parser of its notation, and the offsets.

    ``offsets[i]`` is the index in ``text`` of the prepared text's character ``i``.
    """
    if not isinstance(text, str):
        raise ClaimArgumentError(param, f"{{param}} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ClaimArgumentRefused(param, f"{{param}} is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ClaimArgumentError(param, "{param} is empty")
    use_latex = is_latex(text) if latex is None else bool(latex)
    normal, offsets = normalise_with_offsets(text, use_latex)
    if len(normal) > 2 * MAX_LENGTH:
        raise ClaimArgumentRefused(param, "{param} is too long")
    lead = len(normal) - len(normal.lstrip())
    stripped = normal.strip()
    offsets = offsets[lead:lead + len(stripped)] + [offsets[lead + len(stripped)]]
    for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if stripped.startswith(a) and stripped.endswith(b) and len(stripped) >= len(a) + len(b):
            stripped = stripped[len(a):len(stripped) - len(b)]
            offsets = offsets[len(a):len(a) + len(stripped)] + [offsets[len(a) + len(stripped)]]
            break
    return stripped, LatexParser if use_latex else PythonParser, offsets


def _guard(fn: Callable[[], Any], source: str | None = None, offsets: list[int] | None = None) -> Any:
    """Run a parse; any failure other than a :class:`ClaimError` becomes one (never a traceback).

    A :class:`ClaimError` with a position in the parsed text gets the position in ``source`` instead.
    """
    try:
        return fn()
    except ClaimError as exc:
        if source is not None and exc.source is None:
            exc.source = source
            if exc.pos is not None and offsets:
                exc.pos = offsets[min(max(exc.pos, 0), len(offsets) - 1)]
        raise
    except RecursionError:
        raise ClaimRefused(f"formula nested too deeply (limit {MAX_DEPTH})") from None
    except (TypeError, AttributeError, ValueError, ZeroDivisionError, IndexError, KeyError,
            NotImplementedError, sp.SympifyError) as exc:
        # SymPy rejects some well-formed but meaningless trees (a condition used as a number...).
        raise ClaimSyntaxError(f"not a valid formula: {exc}") from None
