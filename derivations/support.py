"""SymPy work that supports a step without entering the result, and assertions SymPy decides.

A derivation computes its result from SymPy operations (``integrate``,
``diff``, ``solve``, ``limit``, ``det``, ``doit``, ...). Some of its SymPy
work does not produce the result but *checks* a step: a second-order
condition (the Hessian at a stationary point is positive definite), an
identity (the ELBO's gap equals a KL divergence computed independently), a
limit stated in the text. Such work runs inside :func:`supporting` and ends in
:func:`require`, which raises :class:`DerivationError` unless SymPy decides the
fact is true: "SymPy could not decide" fails like "false".

The test suite (``tests/test_derivations_derive.py``) relies on the
distinction: every SymPy operation outside a :func:`supporting` block must
feed the result (perturbing its output changes the result), and every block
must be able to fail (perturbing the operations inside it trips its
:func:`require`).

>>> import sympy as sp
>>> t = sp.Symbol("t", positive=True)
>>> with supporting("t^2 + 1 is positive"):
...     require(lambda: (t**2 + 1).is_positive, "t^2 + 1 > 0")
>>> require(sp.Symbol("u").is_positive, "u > 0")
Traceback (most recent call last):
...
genverify.derivations.support.DerivationError: SymPy could not show u > 0
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import sympy as sp

__all__ = ["DerivationError", "supporting", "active", "current", "require"]

_BLOCKS: list[str] = []


class DerivationError(AssertionError):
    """A step's supporting fact is false, or SymPy could not decide it."""


@contextlib.contextmanager
def supporting(what: str) -> Iterator[None]:
    """Mark the SymPy work inside as checking a step (not producing the result)."""
    _BLOCKS.append(what)
    try:
        yield
    finally:
        _BLOCKS.pop()


def active() -> bool:
    """True inside a :func:`supporting` block."""
    return bool(_BLOCKS)


def current() -> str | None:
    """The innermost supporting block's description (None outside every block)."""
    return _BLOCKS[-1] if _BLOCKS else None


def require(fact, message: str) -> None:
    """Raise :class:`DerivationError` unless ``fact`` is SymPy's (or Python's) True.

    ``fact`` may be a function of no arguments that returns the fact: the
    test suite's probe, which watches the result alone, then skips it.
    """
    if callable(fact):
        fact = fact()
    if fact is True or fact is sp.true:
        return
    if fact is False or fact is sp.false:
        raise DerivationError(f"false: {message}")
    raise DerivationError(f"SymPy could not show {message}")
