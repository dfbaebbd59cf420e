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
from typing import Any, Callable, Mapping

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
from genverify.claims.lexer import MAX_DEPTH, MAX_DIGITS, MAX_EXPONENT, MAX_LENGTH, is_latex, normalise
from genverify.claims.python_grammar import PythonParser

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

# A leading "f(z) =" / "F_Z(z) =" is the student's left-hand side, not the formula.
_LEFT_HAND_SIDE = re.compile(r"^\s*[A-Za-z\\{}_^()\s,|]{0,40}?=(?![=<>])")


def parse_claim(text: str, symbols: Mapping[str, Any], latex: bool | None = None, *,
                param: str = "text") -> sp.Expr:
    """Parse a claimed formula into a SymPy expression over ``symbols`` (name -> Symbol/IndexedBase).

    ``latex=None`` detects the notation; ``True``/``False`` forces it. Raises
    :class:`ClaimSyntaxError`, :class:`UnknownSymbolError` or :class:`ClaimRefused`
    (all ``ValueError``) with a message naming the problem; ``param`` is what
    those messages call ``text``.
    """
    text, parser = _prepare(text, latex, param)
    m = _LEFT_HAND_SIDE.match(text)
    if m and not re.search(r"[<>]", m.group(0)):
        rest = text[m.end():]
        if rest.strip():
            try:
                return _guard(lambda: parser(rest, symbols).parse_expression_top())
            except ClaimError:
                pass
    return _guard(lambda: parser(text, symbols).parse_expression_top())


def parse_condition(text: str, symbols: Mapping[str, Any], latex: bool | None = None, *,
                    param: str = "text") -> Any:
    """Parse a condition such as ``1 < z < sqrt(2)`` or ``z \\ge 0, mu > 1`` into a SymPy boolean."""
    text, parser = _prepare(text, latex, param)
    cond = _guard(lambda: parser(text, symbols).parse_condition_top())
    if cond is sp.true or cond is True:
        return sp.true
    if not is_condition(cond):
        raise ClaimArgumentError(param, "{param} must be a condition such as 1 < z < sqrt(2)")
    return cond


def _prepare(text: str, latex: bool | None, param: str) -> tuple[str, type[Parser]]:
    """The text without display-math wrappers, in ASCII, and the parser of its notation."""
    if not isinstance(text, str):
        raise ClaimArgumentError(param, f"{{param}} must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ClaimArgumentRefused(param, f"{{param}} is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ClaimArgumentError(param, "{param} is empty")
    use_latex = is_latex(text) if latex is None else bool(latex)
    text = normalise(text, use_latex)
    if len(text) > 2 * MAX_LENGTH:
        raise ClaimArgumentRefused(param, "{param} is too long")
    stripped = text.strip()
    for a, b in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
        if stripped.startswith(a) and stripped.endswith(b) and len(stripped) >= len(a) + len(b):
            stripped = stripped[len(a):len(stripped) - len(b)]
            break
    return stripped, LatexParser if use_latex else PythonParser


def _guard(fn: Callable[[], Any]) -> Any:
    """Run a parse; any failure other than a :class:`ClaimError` becomes one (never a traceback)."""
    try:
        return fn()
    except ClaimError:
        raise
    except RecursionError:
        raise ClaimRefused(f"formula nested too deeply (limit {MAX_DEPTH})") from None
    except (TypeError, AttributeError, ValueError, ZeroDivisionError, IndexError, KeyError,
            NotImplementedError, sp.SympifyError) as exc:
        # SymPy rejects some well-formed but meaningless trees (a condition used as a number...).
        raise ClaimSyntaxError(f"not a valid formula: {exc}") from None
