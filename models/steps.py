r"""How a training step runs: which speed techniques apply on a device, the step itself, and what a run costs.

Read top to bottom:

* :class:`StepPlan` and :func:`plan_step`: from a run's settings and the
  device's :class:`~genverify.models.devices.Capability`, which techniques
  apply. Everywhere: the images held as one tensor on the device and batched
  by index, fused Adam, ``channels_last`` for the conv VAE. Where bfloat16 is
  native (CUDA compute capability >= 8.0, AVX512-BF16 CPUs): the forward pass
  under ``torch.autocast(bfloat16)``. On CUDA, by default: the whole step
  (forward, backward, Adam) captured once as a CUDA graph and replayed, which
  removes the per-kernel launch cost that dominates these small models on a
  large GPU, and cuDNN's autotuner for the convolutions. ``torch.compile`` is
  opt-in (``compile="on"``): it compiles for tens of seconds, a large share of
  a run that takes about a minute on an H100, and after CUDA graphs there is
  little left for its fusion to win (the ReLUs and additions are memory-bound
  and small).
* :func:`adam_step`: one Adam step, the same operations whoever calls it.
* :class:`StepRunner`: runs steps compiled and/or replayed from a CUDA graph,
  with the warm-up torch requires before a capture. Whatever fails to compile
  or capture falls back, with a warning, to the eager step: a run never stops
  because of a speed technique. Batches of another shape than the first (the
  last, smaller batch of an epoch) run eagerly, so nothing is captured or
  compiled twice.
* :class:`Projection` / :func:`project_training_time`: a run's wall time from
  measured step times (``benchmarks/bench_train.py``).

On the CPU the plan is the eager step of :func:`genverify.models.training.train_step`,
unchanged: neither graphs nor compilation are on unless asked for.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from genverify.core import ParameterError

from .devices import Capability, bf16_from

__all__ = ["CudaGraphs", "Projection", "StepPlan", "StepRunner", "adam_step", "apply_process_settings", "plan_step",
           "project_training_time"]

CUDA_GRAPHS = ("auto", "on", "off")
COMPILE = ("off", "on")
WARMUP_STEPS = 3  # eager steps on a side stream before a capture (torch's CUDA graph notes use 3)


# ---------------------------------------------------------------- which techniques apply


@dataclass(frozen=True)
class StepPlan:
    """The speed techniques a training run uses (see the module docstring)."""

    device_kind: str
    amp: bool                     # forward pass under bfloat16 autocast
    cuda_graphs: bool             # the step captured once and replayed
    compile: bool                 # the loss compiled by torch.compile
    channels_last: bool           # the conv VAE's activations in NHWC
    fused_adam: bool = True       # one kernel for all parameters (make_optimizer falls back where there is none)
    data_on_device: bool = True   # images held as one tensor on the device, batched and transformed by index
    cudnn_benchmark: bool = False  # cuDNN picks the fastest convolution algorithm for each shape, once

    @property
    def capturable_adam(self) -> bool:
        """Adam's step count kept on the device: what capturing ``optimizer.step()`` needs."""
        return self.cuda_graphs

    def describe(self) -> str:
        """The techniques, for logs and benchmark headers."""
        parts = ["data on device", "fused Adam" if self.fused_adam else "Adam",
                 "bf16 autocast" if self.amp else "fp32"]
        parts += [name for name, on in (("channels_last", self.channels_last), ("cuDNN autotune", self.cudnn_benchmark),
                                        ("torch.compile", self.compile), ("CUDA graph", self.cuda_graphs)) if on]
        return ", ".join(parts)


def plan_step(cfg, cap: Capability) -> StepPlan:
    """The :class:`StepPlan` for settings ``cfg`` (a ``TrainConfig``) on a device with capability ``cap``.

    ``cfg.cuda_graphs``: ``"auto"`` captures wherever the device can (CUDA),
    ``"on"`` requires it (a :class:`~genverify.core.ParameterError` naming
    ``cuda_graphs`` elsewhere), ``"off"`` never. ``cfg.compile``: ``"on"``
    compiles the loss on any device; ``"off"`` (the default) does not.
    ``cfg.precision`` as :func:`~genverify.models.devices.use_bf16`.
    """
    if cfg.cuda_graphs not in CUDA_GRAPHS:
        raise ParameterError("cuda_graphs", f"{{param}} must be one of {', '.join(CUDA_GRAPHS)}; "
                                            f"got {cfg.cuda_graphs!r}")
    if cfg.compile not in COMPILE:
        raise ParameterError("compile", f"{{param}} must be one of {', '.join(COMPILE)}; got {cfg.compile!r}")
    if cfg.cuda_graphs == "on" and not cap.cuda_graphs:
        raise ParameterError("cuda_graphs", f"{{param}} 'on' needs a CUDA device; this run is on {cap.kind}; "
                                            "use 'auto' or 'off'")
    conv = cfg.model == "vae" and cfg.vae_arch == "conv"
    return StepPlan(device_kind=cap.kind, amp=bf16_from(cfg.precision, cap),
                    cuda_graphs=cap.cuda_graphs and cfg.cuda_graphs != "off", compile=cfg.compile == "on",
                    channels_last=conv, cudnn_benchmark=conv and cap.kind == "cuda")


def apply_process_settings(plan: StepPlan) -> None:
    """Process-wide settings the plan asks for (cuDNN's autotuner); nothing on the CPU."""
    if plan.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True


# ---------------------------------------------------------------- one step


def adam_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn, x: torch.Tensor,
              generator: torch.Generator | None = None, amp: bool = False,
              autocast_cache: bool | None = None) -> torch.Tensor:
    """One Adam step on batch ``x``: ``loss_fn(model, x, generator)`` (under bfloat16 autocast if ``amp``),
    backward, ``optimizer.step()``; returns the detached loss.

    ``autocast_cache=False`` casts each weight where it is used instead of
    caching the cast (what a CUDA graph capture needs; each weight of these
    models is used once per step, so it costs nothing).
    """
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp, cache_enabled=autocast_cache):
        loss = loss_fn(model, x, generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# ---------------------------------------------------------------- compiled and graphed steps


class CudaGraphs:
    """torch's CUDA graph API as :class:`StepRunner` uses it (tests substitute a stand-in with the same methods)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        with torch.cuda.device(self.device):
            self.side_stream = torch.cuda.Stream()

    def warmup(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run ``fn`` on a side stream, as torch requires of the iterations before a capture."""
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            self.side_stream.wait_stream(current)
            with torch.cuda.stream(self.side_stream):
                out = fn()
            current.wait_stream(self.side_stream)
        return out

    def capture(self, fn: Callable[[], torch.Tensor], generators=()) -> tuple[Callable[[], None], torch.Tensor]:
        """Capture ``fn`` (not running it) as a CUDA graph; returns (replay, the output tensor replays overwrite).

        ``generators`` draw random numbers inside ``fn``; they are registered
        with the graph so that every replay draws fresh numbers and advances
        them as the eager step would.
        """
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device):
            for gen in generators:
                if gen is not None and hasattr(graph, "register_generator_state"):
                    graph.register_generator_state(gen)
            before = torch.cuda.current_stream()
            try:
                with torch.cuda.graph(graph):
                    out = fn()
            except BaseException:
                # If ending the capture fails, torch.cuda.graph leaves its capture stream current: eager
                # steps after the fallback must run on the stream the batches were made on.
                torch.cuda.set_stream(before)
                torch.cuda.synchronize(self.device)
                raise

        def replay() -> None:
            with torch.cuda.device(self.device):
                graph.replay()

        return replay, out


def _torch_compile(fn):
    return torch.compile(fn, dynamic=False)


_CAPTURABLE_UNCAPTURED = "This instance was constructed with capturable=True"


@dataclass
class StepRunner:
    """Training steps as the plan says: compiled, replayed from a CUDA graph, or eager as a fallback.

    Call it with a batch; it returns the detached loss. The first batch's
    shape is the one compiled and captured; batches of another shape (the
    last of an epoch) run the eager step. With CUDA graphs, the first
    ``warmup_steps`` batches of that shape run eagerly on a side stream, the
    next is captured and every later one copied into the captured input and
    replayed. A failed compile or capture warns (``RuntimeWarning``) and the
    run continues with the eager step; ``mode`` says what runs now.

    ``graphs`` and ``compiler`` default to :class:`CudaGraphs` and
    ``torch.compile``; tests pass stand-ins.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable
    plan: StepPlan
    generator: torch.Generator | None = None
    warmup_steps: int = WARMUP_STEPS
    graphs: object | None = None
    compiler: Callable | None = None
    events: list[str] = field(default_factory=list)  # what happened: "compiled", "captured", "... failed: ..."

    def __post_init__(self):
        self._compiled = (self.compiler or _torch_compile)(self.loss_fn) if self.plan.compile else None
        self._compile_checked = False
        if self.plan.cuda_graphs and self.graphs is None:
            self.graphs = CudaGraphs(next(self.model.parameters()).device)
        if not self.plan.cuda_graphs:
            self.graphs = None
        self._shape = None
        self._warm = 0
        self._replay = self._static_x = self._static_loss = None

    @property
    def mode(self) -> str:
        """What runs the batches of the first shape now: "eager", "compiled", "graph" or "compiled graph"."""
        compiled = self._compiled is not None
        if self._replay is not None:
            return "compiled graph" if compiled else "graph"
        return "compiled" if compiled else "eager"

    def _step(self, x, loss_fn):
        # Autocast without its cache: the same autocast state in warm-up, capture and eager steps (torch.compile
        # guards on it), and what a capture needs.
        if not self.plan.capturable_adam:
            return adam_step(self.model, self.optimizer, loss_fn, x, self.generator, self.plan.amp, False)
        with warnings.catch_warnings():  # the capturable Adam's eager steps are intended (warm-up, odd batches)
            warnings.filterwarnings("ignore", message=_CAPTURABLE_UNCAPTURED)
            return adam_step(self.model, self.optimizer, loss_fn, x, self.generator, self.plan.amp, False)

    def _fall_back(self, what: str, exc: Exception) -> None:
        self.events.append(f"{what} failed: {type(exc).__name__}: {exc}")
        warnings.warn(f"{what} failed ({type(exc).__name__}: {str(exc).strip()[:300]}); training continues "
                      "with the eager step", RuntimeWarning, stacklevel=3)

    def _fast_or_eager(self, x):
        """The compiled step if compilation works (checked on its first call), else the eager one."""
        if self._compiled is None:
            return self._step(x, self.loss_fn)
        if self._compile_checked:
            return self._step(x, self._compiled)
        try:  # the first call compiles the forward pass, its backward pass compiles the gradient
            loss = self._step(x, self._compiled)
        except Exception as exc:  # whatever the compiler raises: the eager step still works
            self._compiled = None
            self._fall_back("torch.compile", exc)
            return self._step(x, self.loss_fn)
        self._compile_checked = True
        self.events.append("compiled")
        return loss

    def _capture(self, x) -> bool:
        self._static_x = x.clone()  # the graph's input: later batches are copied into it
        fn = self._compiled if self._compiled is not None else self.loss_fn
        try:
            self._replay, self._static_loss = self.graphs.capture(lambda: self._step(self._static_x, fn),
                                                                  generators=(self.generator,))
        except Exception as exc:  # a capture that fails leaves the parameters untouched: it ran nothing
            self._replay = self._static_x = self._static_loss = None
            self.graphs = None
            self._fall_back("CUDA graph capture", exc)
            return False
        self.events.append("captured")
        return True

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self._shape is None:
            self._shape = x.shape
        if x.shape != self._shape:  # e.g. the last batch of an epoch: not worth a second compile or graph
            return self._step(x, self.loss_fn)
        if self.graphs is None:
            return self._fast_or_eager(x)
        if self._replay is None:
            if self._warm < self.warmup_steps:
                self._warm += 1
                return self.graphs.warmup(lambda: self._fast_or_eager(x))
            if not self._capture(x):
                return self._fast_or_eager(x)
        self._static_x.copy_(x)
        self._replay()
        return self._static_loss.clone()  # the next replay overwrites the static loss


# ---------------------------------------------------------------- what a run costs


@dataclass(frozen=True)
class Projection:
    """Wall time of a training run from measured times: set-up + epochs x (steps + checkpoint).

    An epoch is ``n_train // batch_size`` full steps and, if ``batch_size``
    does not divide ``n_train``, one partial step of ``n_train % batch_size``
    images (as :func:`genverify.models.training.train` batches).
    """

    n_train: int
    batch_size: int
    epochs: int
    step_seconds: float
    partial_step_seconds: float
    checkpoint_seconds: float = 0.0
    setup_seconds: float = 0.0

    @property
    def full_steps(self) -> int:
        return self.n_train // self.batch_size

    @property
    def partial_batch(self) -> int:
        """Images in the epoch's last, smaller batch (0: every batch is full)."""
        return self.n_train % self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.full_steps + (self.partial_batch > 0)

    @property
    def epoch_seconds(self) -> float:
        partial = self.partial_step_seconds if self.partial_batch else 0.0
        return self.full_steps * self.step_seconds + partial + self.checkpoint_seconds

    @property
    def total_seconds(self) -> float:
        return self.setup_seconds + self.epochs * self.epoch_seconds


def project_training_time(n_train: int, batch_size: int, epochs: int, step_seconds: float,
                          partial_step_seconds: float | None = None, checkpoint_seconds: float = 0.0,
                          setup_seconds: float = 0.0) -> Projection:
    """A :class:`Projection`; ``partial_step_seconds`` defaults to a full step's time.

    >>> p = project_training_time(60_000, 256, 50, step_seconds=0.002, partial_step_seconds=0.003)
    >>> p.full_steps, p.partial_batch, round(p.total_seconds, 2)
    (234, 96, 23.55)
    """
    for name, value in (("n_train", n_train), ("batch_size", batch_size), ("epochs", epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ParameterError(name, f"{{param}} must be a positive integer, got {value!r}")
    if partial_step_seconds is None:
        partial_step_seconds = step_seconds
    for name, value in (("step_seconds", step_seconds), ("partial_step_seconds", partial_step_seconds),
                        ("checkpoint_seconds", checkpoint_seconds), ("setup_seconds", setup_seconds)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ParameterError(name, f"{{param}} must be a finite number >= 0, got {value!r}")
    return Projection(n_train, batch_size, epochs, float(step_seconds), float(partial_step_seconds),
                      float(checkpoint_seconds), float(setup_seconds))
