"""Argument checks shared by the public numeric functions.

Every failure is a ``ValueError`` that names the offending argument, so the CLI
can turn it into a clear message and exit code 2.
"""

from __future__ import annotations

import numpy as np


def as_float(name: str, value, *, allow_inf: bool = False) -> np.ndarray:
    """``value`` as a float64 array; NaN (and inf unless allowed) is an error."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a real number or array of real numbers, got {value!r}") from exc
    bad = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if np.any(bad):
        raise ValueError(f"{name} must be finite{'' if allow_inf else ' (no NaN or inf)'}, got {value!r}")
    return arr


def positive(name: str, value) -> np.ndarray:
    """A finite, strictly positive float64 array."""
    arr = as_float(name, value)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return arr


def open_unit(name: str, value) -> np.ndarray:
    """A float64 array (often a scalar) with every entry in the open interval (0, 1)."""
    arr = as_float(name, value)
    if np.any((arr <= 0.0) | (arr >= 1.0)):
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return arr
