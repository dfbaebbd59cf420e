"""Why a claim cannot be checked: the error classes of the claims layer.

Every class is a ``ValueError`` (the CLI's exit code 2). :class:`ClaimError`
and its subclasses carry only a message. The ``Claim*Argument*`` classes are
also :class:`~genverify.core.ParameterError`: they name the Python parameter
at fault (``where must be a string``), which the CLI renders as its flag
(``--where must be a string``).

The check runs in a forked child process (:mod:`genverify.claims.isolation`),
so these errors travel back to the caller by pickling: a plain
:class:`ClaimError` pickles as any exception with one argument, and the
parameter errors through :meth:`ParameterError.__reduce__`.
"""

from __future__ import annotations

from genverify.core import ParameterError

__all__ = [
    "POS",
    "CheckTimeout",
    "ClaimArgumentError",
    "ClaimArgumentRefused",
    "ClaimError",
    "ClaimRefused",
    "ClaimSyntaxError",
    "EmptyRegionError",
    "UnknownSymbolError",
    "UnsupportedConstructError",
]


#: Where a message says "at position N", before the position is known in the text the user typed.
POS = "\x00pos\x00"


class ClaimError(ValueError):
    """A claim that cannot be checked (bad syntax, unknown symbol, refused input).

    ``pos`` is the offending character's index in ``source`` (the text as the
    user typed it; the parser maps positions in its normalised text back);
    the message names it wherever it holds :data:`POS`. :meth:`caret` shows
    the place::

        unexpected input after the formula (found ')' at position 10)
          z*(mu + 1))
                    ^
    """

    def __init__(self, message: str = "", *, pos: int | None = None, source: str | None = None):
        super().__init__(message)
        self._message = message
        self.pos = pos
        self.source = source

    def __str__(self) -> str:
        text = getattr(self, "_message", None)
        if text is None:  # an instance built without __init__ (unpickling): its arguments
            return super().__str__()
        return text.replace(POS, "?" if self.pos is None else str(self.pos))

    def caret(self, indent: str = "  ", width: int = 72) -> str:
        """The claim on one line and a caret under the offending character ("" when unknown)."""
        if self.source is None or self.pos is None:
            return ""
        line = self.source.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        pos = min(max(self.pos, 0), len(line))
        start = max(0, pos - width // 2) if len(line) > width else 0
        shown = line[start:start + width]
        lead = "..." if start > 0 else ""
        tail = "..." if start + width < len(line) else ""
        return f"{indent}{lead}{shown}{tail}\n{indent}{' ' * (len(lead) + pos - start)}^"

    def marked(self) -> str:
        """The claim on one line with the offending character marked ``>>c<<`` (for tables), or ""."""
        if self.source is None or self.pos is None:
            return ""
        line = " ".join(self.source.split("\n"))
        pos = min(max(self.pos, 0), len(line))
        lo = max(0, pos - 30)
        return (("..." if lo else "") + line[lo:pos] + ">>" + line[pos:pos + 1] + "<<"
                + line[pos + 1:pos + 30] + ("..." if pos + 30 < len(line) else ""))

    def __reduce__(self):  # the position and the text survive the checker's process boundary
        return (type(self), (self._message,), {"pos": self.pos, "source": self.source})


class ClaimSyntaxError(ClaimError):
    """The text is not a formula in either accepted notation."""


class UnknownSymbolError(ClaimError):
    """The formula uses a name that is neither a known function nor one of the result's symbols."""


class ClaimRefused(ClaimError):
    """The input exceeds a safety limit (length, nesting, exponent or number size)."""


class CheckTimeout(ClaimError):
    """The check did not finish within its time limit."""


class UnsupportedConstructError(ClaimSyntaxError):
    """A well-formed construct the checker does not handle (an integral, a limit), with what to write instead."""


class ClaimArgumentError(ParameterError, ClaimSyntaxError):
    """An argument that is no formula or condition at all (not a string, empty), named by its parameter."""


class ClaimArgumentRefused(ParameterError, ClaimRefused):
    """An argument longer than the parser accepts, named by its parameter."""


class EmptyRegionError(ParameterError, ClaimError):
    """A ``where`` condition that leaves no point of the result's domain, named by its parameter."""
