"""Calling a user's function: arguments matched by name, NumPy or torch inputs, outputs as float64 arrays.

Shared by :mod:`~genverify.testing.implements` and :mod:`~genverify.testing.em`.
torch is never imported here: a function that needs tensors is one whose
module already imported torch (``sys.modules``), unless ``backend="torch"``
asks for it.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genverify.core import ParameterError
from genverify.testing import _session

#: The environment variable with the default seed.
SEED_ENV = "GENVERIFY_SEED"

BACKENDS = ("auto", "numpy", "torch")


def default_seed(seed: int | None = None) -> int:
    """``seed`` if given, else the pytest plugin's, else ``$GENVERIFY_SEED``, else 0."""
    if seed is not None:
        return int(seed)
    if _session.SEED is not None:
        return _session.SEED
    env = os.environ.get(SEED_ENV, "").strip()
    if env:
        try:
            return int(env)
        except ValueError:
            raise ParameterError("seed", f"{{param}} from {SEED_ENV}={env!r} must be an integer") from None
    return 0


def describe(fn: Callable) -> str:
    """``fn``'s name as a user would recognise it (``lognormal`` or ``LeakyReLUFlow``)."""
    if inspect.ismethod(fn):
        return str(getattr(fn, "__qualname__", fn.__name__))
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def _signature(fn: Callable) -> inspect.Signature | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        sig = None
    kinds = {p.kind for p in sig.parameters.values()} if sig is not None else set()
    if sig is None or (kinds and kinds <= {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}):
        # An nn.Module's __call__ takes (*args, **kwargs); its forward has the names.
        forward = getattr(fn, "forward", None)
        if callable(forward):
            try:
                return inspect.signature(forward)
            except (TypeError, ValueError):
                return sig
    return sig


@dataclass
class Binding:
    """How to call ``fn`` with values keyed by symbol: ``binding(values)``."""

    fn: Callable
    positional: list[str] = field(default_factory=list)  # symbols passed positionally, in order
    keywords: dict[str, str] = field(default_factory=dict)  # fn parameter -> symbol
    unused: list[str] = field(default_factory=list)  # symbols fn does not take (fixed at their defaults)

    def __call__(self, values: Mapping[str, Any]) -> Any:
        return self.fn(*[values[s] for s in self.positional], **{p: values[s] for p, s in self.keywords.items()})

    def arguments(self) -> list[tuple[str, str]]:
        """(fn's name for it, symbol) for every argument passed."""
        return [(s, s) for s in self.positional] + list(self.keywords.items())


def bind(fn: Callable, symbols: Sequence[str], optional: set[str], names, what: str) -> Binding:
    """Match ``fn``'s parameters to ``symbols`` (those in ``optional`` may be left out).

    ``names`` maps fn's parameter names to symbols (``{"s": "sigma"}``), or is
    a sequence of symbols in the order ``fn`` takes them positionally.
    Raises :class:`~genverify.core.ParameterError` naming ``fn`` (or ``names``)
    and the parameters that do not match.
    """
    if not callable(fn):
        raise ParameterError("fn", f"{{param}} must be callable, got {type(fn).__name__}")
    listing = ", ".join(symbols) or "none"
    if names is not None and not isinstance(names, Mapping):
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ParameterError("names", "{param} must be a mapping {your_name: symbol} or a list of symbols, "
                                          f"got {type(names).__name__}")
        unknown = [n for n in names if n not in symbols]
        if unknown:
            raise ParameterError("names", f"{{param}} lists {', '.join(map(repr, unknown))}, not a symbol of "
                                          f"{what} (symbols: {listing})")
        missing = [s for s in symbols if s not in names and s not in optional]
        if missing:
            raise ParameterError("names", f"{{param}} must list every symbol of {what} in the order fn takes "
                                          f"them; missing: {', '.join(missing)}")
        return Binding(fn, positional=list(names), unused=[s for s in symbols if s not in names])
    mapping = dict(names or {})
    bad = {k: v for k, v in mapping.items() if v not in symbols}
    if bad:
        k, v = next(iter(bad.items()))
        close = difflib.get_close_matches(str(v), list(symbols), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParameterError("names", f"{{param}} maps {k!r} to {v!r}, which is not a symbol of {what}{hint}; "
                                      f"symbols: {listing}")
    sig = _signature(fn)
    if sig is None:
        # No signature (a builtin): positional, in the symbols' order.
        return Binding(fn, positional=[s for s in symbols if s not in optional], unused=sorted(optional))
    binding = Binding(fn)
    taken: set[str] = set()
    extra_required: list[str] = []
    fn_params: list[str] = []
    var_keyword = False
    for prm in sig.parameters.values():
        if prm.kind is inspect.Parameter.VAR_KEYWORD:
            var_keyword = True
            continue
        if prm.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        fn_params.append(prm.name)
        symbol = mapping.get(prm.name, prm.name)
        if symbol in symbols and symbol not in taken:
            taken.add(symbol)
            if prm.kind is inspect.Parameter.POSITIONAL_ONLY:
                binding.positional.append(symbol)
            else:
                binding.keywords[prm.name] = symbol
        elif prm.default is inspect.Parameter.empty:
            extra_required.append(prm.name)
    unknown_keys = [k for k in mapping if k not in fn_params]
    if unknown_keys and not var_keyword:
        raise ParameterError("names", f"{{param}} maps {', '.join(map(repr, unknown_keys))}, not a parameter of "
                                      f"{describe(fn)} (its parameters: {', '.join(fn_params) or 'none'})")
    missing = [s for s in symbols if s not in taken and s not in optional]
    if var_keyword:  # **kwargs takes every symbol left, those with defaults too
        rest = [s for s in symbols if s not in taken]
        binding.keywords.update({s: s for s in rest})
        taken.update(rest)
        missing = []
    if missing or extra_required:
        raise ParameterError("fn", _mismatch_message(fn, fn_params, symbols, missing, extra_required, what))
    binding.unused = [s for s in symbols if s not in taken]
    return binding


def _mismatch_message(fn, fn_params, symbols, missing, extra, what) -> str:
    parts = [f"{{param}} {describe(fn)}({', '.join(fn_params)}) cannot be called with the symbols of {what} "
             f"({', '.join(symbols)}):"]
    if missing:
        parts.append(f"no parameter for {', '.join(missing)}" + (";" if extra else "."))
    if extra:
        parts.append(f"{'its parameter' if len(extra) == 1 else 'its parameters'} {', '.join(extra)} "
                     f"{'is not a symbol' if len(extra) == 1 else 'are not symbols'} (and {'has' if len(extra) == 1 else 'have'} no default).")
    # Pair the leftovers, closest names first, then in order: a suggestion, not a guess we act on.
    suggestion: dict[str, str] = {}
    free = list(missing)
    for name in extra:
        close = difflib.get_close_matches(name, free, n=1, cutoff=0.3)
        if close:
            suggestion[name] = close[0]
            free.remove(close[0])
    for name in extra:
        if name not in suggestion and free:
            suggestion[name] = free.pop(0)
    if suggestion:
        parts.append(f"Map your names to the symbols with names={suggestion!r}.")
    elif missing:
        parts.append(f"It must take an argument for each symbol without a default ({', '.join(missing)}), "
                     "under that name or mapped by names={your_parameter: symbol}.")
    else:
        parts.append("Give them defaults, or map them with names={your_parameter: symbol}.")
    return " ".join(parts)


# ----------------------------------------------------------------- values in and out


def _torch(required: bool):
    if required:
        import torch  # only for a user's function that asked for tensors

        return torch
    return sys.modules.get("torch")


def to_backend(value: Any, backend: str, integer: bool = False) -> Any:
    """A float (or integer) scalar or array as the backend's type: NumPy float64, or a float64 torch tensor."""
    if backend == "torch":
        torch = _torch(True)
        if integer and np.ndim(value) == 0:
            return int(value)
        return torch.as_tensor(np.asarray(value, dtype=np.int64 if integer else np.float64))
    if np.ndim(value) == 0:
        return int(value) if integer else np.float64(value)
    return np.asarray(value, dtype=np.int64 if integer else np.float64)


class NotNumeric(TypeError):
    """What the user's function returned is not a number or an array of numbers."""


def to_numpy(out: Any) -> np.ndarray:
    """The user's output (NumPy, torch, a list or tuple of them, a Python number) as a float64 array."""
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # a torch tensor
        return out.detach().cpu().double().numpy()
    if out is None or isinstance(out, (str, bytes, dict)):
        raise NotNumeric(f"{type(out).__name__} {_short(out)}")
    if isinstance(out, (list, tuple)):
        parts = [to_numpy(o) for o in out]
        try:
            return np.array(parts, dtype=float)
        except ValueError:
            raise NotNumeric(f"a {type(out).__name__} of arrays of different shapes "
                             f"{[p.shape for p in parts]}") from None
    try:
        return np.asarray(out, dtype=float)
    except (TypeError, ValueError):
        raise NotNumeric(f"{type(out).__name__} {_short(out)}") from None


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Caller:
    """Calls ``binding`` with values converted for the user's library, which it detects on the first call.

    ``backend="auto"`` tries NumPy floats first and torch tensors when that
    raises and torch is loaded; ``"numpy"`` / ``"torch"`` fix it.
    """

    def __init__(self, binding: Binding, integers: set[str], backend: str = "auto"):
        if backend not in BACKENDS:
            raise ParameterError("backend", f"{{param}} must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.binding = binding
        self.integers = integers
        self.backend = backend

    def _args(self, values: Mapping[str, Any], backend: str) -> dict[str, Any]:
        return {k: to_backend(v, backend, k in self.integers) for k, v in values.items()}

    def __call__(self, values: Mapping[str, Any]) -> Any:
        """fn's output; the user's exception propagates (the caller reports it with the point)."""
        if self.backend != "auto":
            return self.binding(self._args(values, self.backend))
        try:
            out = self.binding(self._args(values, "numpy"))
        except Exception as numpy_error:
            if _torch(False) is None:
                raise
            try:
                out = self.binding(self._args(values, "torch"))
            except Exception:
                if "tensor" in str(numpy_error).lower():
                    raise  # torch's own error: the function wants tensors and fails with them too
                raise numpy_error from None
            self.backend = "torch"
            return out
        if hasattr(out, "detach") and hasattr(out, "cpu"):
            self.backend = "torch"  # it took NumPy and gave a tensor: keep giving it tensors
        elif self.backend == "auto":
            self.backend = "numpy"
        return out


# ----------------------------------------------------------------- comparing


def agreement(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    """Elementwise: finite and within ``atol + rtol * |want|``, or the same infinity as ``want``.

    NaN and infinities never agree, except an infinity the reference has too;
    where the reference is NaN (not a point of the result) anything agrees.
    """
    with np.errstate(all="ignore"):
        close = np.abs(got - want) <= atol + rtol * np.abs(want)
    finite = np.isfinite(got) & np.isfinite(want) & close
    return finite | (np.isinf(want) & (got == want)) | np.isnan(want)


def fmt(value: Any) -> str:
    """A number or an array on one line, full precision for scalars."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        return repr(float(arr))
    text = np.array2string(arr, precision=6, separator=", ", max_line_width=10_000, threshold=40)
    return re.sub(r",?\s*\n\s*", ", ", text)  # rows on one line


def fmt_point(point: Mapping[str, Any], unused: Mapping[str, Any] | None = None) -> str:
    unused = unused or {}
    text = ", ".join(f"{k} = {fmt(v) if not isinstance(v, (int, np.integer)) else int(v)}"
                     for k, v in point.items() if k not in unused)
    if unused:
        text += " (fixed: " + ", ".join(f"{k} = {fmt(v)}" for k, v in unused.items()) + ")"
    return text


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        err = np.abs(got - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
    err = np.where(np.isnan(err), np.inf, err)
    return float(np.max(err)) if err.size else 0.0
