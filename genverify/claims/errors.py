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
    "ClaimError",
    "ClaimSyntaxError",
    "UnknownSymbolError",
    "ClaimRefused",
    "CheckTimeout",
    "ClaimArgumentError",
    "ClaimArgumentRefused",
    "EmptyRegionError",
]


class ClaimError(ValueError):
    """A claim that cannot be checked (bad syntax, unknown symbol, refused input)."""


class ClaimSyntaxError(ClaimError):
    """The text is not a formula in either accepted notation."""


class UnknownSymbolError(ClaimError):
    """The formula uses a name that is neither a known function nor one of the result's symbols."""


class ClaimRefused(ClaimError):
    """The input exceeds a safety limit (length, nesting, exponent or number size)."""


class CheckTimeout(ClaimError):
    """The check did not finish within its time limit."""


class ClaimArgumentError(ParameterError, ClaimSyntaxError):
    """An argument that is no formula or condition at all (not a string, empty), named by its parameter."""


class ClaimArgumentRefused(ParameterError, ClaimRefused):
    """An argument longer than the parser accepts, named by its parameter."""


class EmptyRegionError(ParameterError, ClaimError):
    """A ``where`` condition that leaves no point of the result's domain, named by its parameter."""
