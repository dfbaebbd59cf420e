"""Where computations run: one device resolver for every model, and the bfloat16 decision.

:func:`resolve_device` turns a user's device name into a ``torch.device``;
the kinds a caller accepts, and whether names are case-sensitive, are its
parameters:

* training (NICE and the VAEs, :mod:`genverify.models.training`): ``cpu``,
  ``cuda``, ``cuda:N`` and ``mps``, any case (``"CPU"`` works);
* the EM mixture (:class:`genverify.models.BernoulliMixture`): ``cpu``,
  ``cuda`` and ``cuda:N`` only, since EM accumulates in float64, which MPS
  lacks; names are exact, as scikit-learn parameters are.

``auto`` picks CUDA, else MPS (where allowed), else the CPU. Errors are
:class:`~genverify.core.ParameterError` naming the Python parameter
(``device`` unless the caller says otherwise); the CLI renders it as the flag.
"""

from __future__ import annotations

import torch

from genverify.core import ParameterError

__all__ = ["KINDS", "available_devices", "resolve_device", "use_bf16"]

#: Every device kind genverify knows, in the order ``auto`` prefers them last to first.
KINDS = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def available_devices(allowed: tuple[str, ...] = KINDS) -> list[str]:
    """Device names of the ``allowed`` kinds this machine can run on (besides ``auto``)."""
    names = ["cpu"] if "cpu" in allowed else []
    if "cuda" in allowed and torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if "mps" in allowed and _mps_available():
        names.append("mps")
    return names


def _spelling(allowed: tuple[str, ...]) -> str:
    """``'cpu', 'cuda', 'cuda:N' or 'auto'``: the names a caller accepts, for messages."""
    names = [repr(k) for k in KINDS if k in allowed]
    if "cuda" in allowed:
        names.insert(names.index("'cuda'") + 1, "'cuda:N'")
    return ", ".join(names) + " or 'auto'"


def resolve_device(name: str | torch.device = "auto", *, allowed: tuple[str, ...] = KINDS,
                   case_sensitive: bool = False, param: str = "device") -> torch.device:
    """The ``torch.device`` that ``name`` means here.

    ``name`` is ``auto`` (CUDA, else MPS, else CPU, among the ``allowed``
    kinds), a kind (``cpu``, ``cuda``, ``mps``) or ``cuda:N`` with N below
    this machine's CUDA device count. ``case_sensitive=False`` also accepts
    ``"CPU"`` and surrounding spaces. Anything else, or a device this machine
    lacks, raises :class:`~genverify.core.ParameterError` naming ``param``,
    with the devices that are available.

    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("tpu", allowed=("cpu", "cuda"), case_sensitive=True)
    Traceback (most recent call last):
    ...
    genverify.core.ParameterError: device must be 'cpu', 'cuda', 'cuda:N' or 'auto'; 'tpu' is not a known device; ...
    """
    text = str(name) if case_sensitive else str(name).strip().lower()
    available = available_devices(allowed)
    listing = f"available devices: auto, {', '.join(available)}"
    if text == "auto":
        return torch.device(next((k for k in ("cuda", "mps") if k in available), "cpu"))
    if text in available:
        return torch.device(text)
    kind, sep, index = text.partition(":")
    if kind not in KINDS or (sep and not (kind == "cuda" and index.isdigit())):
        raise ParameterError(param, f"{{param}} must be {_spelling(allowed)}; {str(name)!r} is not a known device; "
                                    f"{listing}")
    if kind not in allowed:
        raise ParameterError(param, f"{{param}} must be {_spelling(allowed)}; {str(name)!r} is not supported here; "
                                    f"{listing}")
    if kind == "cuda" and not torch.cuda.is_available():
        detail = " (CUDA is not available: torch.cuda.is_available() is False)"
    elif kind == "cuda":
        count = torch.cuda.device_count()
        detail = f" (this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1})"
    else:
        detail = ""
    raise ParameterError(param, f"{{param}} {str(name)!r} is not available on this machine; {listing}{detail}")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: ``auto`` means only where bf16 is native (fast).

    Native: CUDA with bf16 support, or a CPU with AVX512-BF16 / AMX.
    """
    if precision == "fp32":
        return False
    native = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or (
        device.type == "cpu" and torch.cpu._is_avx512_bf16_supported())
    if precision == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise ParameterError("precision", f"{{param}} 'bf16' is not supported on device {device.type!r}; "
                                              "use 'fp32'")
        return True
    return native
