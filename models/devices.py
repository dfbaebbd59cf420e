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

:class:`Capability` is what a device offers training (native bfloat16, CUDA
graph capture), probed once by :func:`capability`; the decisions made from it
(:func:`bf16_from`, and :func:`genverify.models.steps.plan_step`) take the
capability as an argument, so they are tested with made-up devices on a
machine without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genverify.core import ParameterError

__all__ = ["KINDS", "Capability", "available_devices", "bf16_from", "capability", "resolve_device", "use_bf16"]

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


@dataclass(frozen=True)
class Capability:
    """What a device offers training, as facts (see :func:`capability`); tests build made-up ones."""

    kind: str                  # "cpu", "cuda" or "mps"
    native_bf16: bool = False  # bfloat16 matrix products at full speed (CUDA compute capability >= 8, AVX512-BF16)
    cuda_graphs: bool = False  # a whole training step can be captured and replayed as one CUDA graph
    name: str = ""             # for messages, e.g. "NVIDIA H100 80GB HBM3"


def _cuda_native_bf16(index: int) -> bool:
    with torch.cuda.device(index):
        try:  # torch.cuda.is_bf16_supported() alone also says True where bf16 is only emulated (slowly)
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # a torch without the argument: native means compute capability 8.0 (Ampere) or later
            return torch.cuda.get_device_capability(index)[0] >= 8


def capability(device: torch.device) -> Capability:
    """Probe ``device`` (a resolved ``torch.device``): native bfloat16, CUDA graphs, its name."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return Capability("cuda", native_bf16=_cuda_native_bf16(index), cuda_graphs=True,
                          name=torch.cuda.get_device_name(index))
    if device.type == "cpu":
        return Capability("cpu", native_bf16=bool(torch.cpu._is_avx512_bf16_supported()), name="cpu")
    return Capability(device.type, name=device.type)


def bf16_from(precision: str, cap: Capability) -> bool:
    """Whether to train under bfloat16 autocast on a device with capability ``cap`` (see :func:`use_bf16`)."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        if cap.kind not in ("cpu", "cuda"):
            raise ParameterError("precision", f"{{param}} 'bf16' is not supported on device {cap.kind!r}; "
                                              "use 'fp32'")
        return True
    return cap.native_bf16


def use_bf16(precision: str, device: torch.device, cap: Capability | None = None) -> bool:
    """Whether to train under bfloat16 autocast: ``auto`` means only where bf16 is native (fast).

    Native: a CUDA GPU of compute capability 8.0 or later (``torch.cuda.is_bf16_supported``
    without emulation), or a CPU with AVX512-BF16 / AMX. ``cap`` defaults to
    :func:`capability` of ``device``.
    """
    if precision == "fp32":  # no probe needed
        return False
    return bf16_from(precision, cap if cap is not None else capability(device))
