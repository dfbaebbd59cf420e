"""Experiment ``nice-vae`` (question 4): NICE and VAE samples, and the NICE / VAE / EM comparison.

* 4a: NICE trained on dequantised grey levels, y = (255 x + u) / 256; sample
  grids at temperature 1 and 0.7, and the held-out negative log-likelihood
  bound in nats per image and bits per pixel.
* 4b: the VAE trained on dynamically binarised images; Bernoulli samples and
  the decoder's pixel probabilities.
* 4c: ``genverify compare``: NICE (trained on dequantised *binary* images),
  the VAE and the EM mixture of Bernoullis scored on the same held-out
  binarised images, with training time, sampling time and parameter count.

``config.preset`` picks the training settings (:data:`genverify.presets.TRAIN`:
``quick`` for the report, the embedded MNIST-5k with 1,000 images held out, a
narrower NICE and the MLP VAE; ``homework``, the reference defaults, 50
epochs at batch 256). Models are trained in ``out_dir/runs``; whether their
checkpoints are kept afterwards is the preset's ``keep_runs``
(:data:`genverify.presets.NICE_VAE`: quick runs are cheap to recompute,
homework runs are kept for reuse with ``genverify compare --nice/--vae``).
"""

from __future__ import annotations

import math
import shutil
import sys
from typing import Callable

import torch

from genverify import presets
from genverify.core import ExperimentConfig, ExperimentOutput, Table
from genverify.data import default_source
from genverify.experiments.compare import COLUMNS, CompareSettings, run_comparison, table_caption, training_configs
from genverify.experiments.training_runs import load_split, save_sample_grids
from genverify.models.devices import resolve_device
from genverify.models.evaluation import held_out_input, mean_se, nice_nll_bound, sample_panels
from genverify.models.training import preset, train

EM_COMPONENTS = 20  # the largest K of question 2d
IW_SAMPLES = 64     # k for the VAE's IWAE estimate and NICE's importance-weighted dequantisation bound
TEMPERATURES = (1.0, 0.7)


def _settings(config: ExperimentConfig):
    """(the device, 4a's NICE training settings, the comparison's settings) of ``config``."""
    source = default_source(None, config.data_dir)
    device = resolve_device(config.device)
    cfg_grey = preset(config.preset, "nice", nice_input="grey", seed=config.seed, device=str(device),
                      source=source, data_dir=config.data_dir)
    cmp = CompareSettings(out_dir=config.out_dir, preset=config.preset, runs_dir=config.out_dir / "runs",
                          em_components=EM_COMPONENTS, k=IW_SAMPLES, device=str(device), seed=config.seed,
                          source=source, data_dir=config.data_dir, show_progress=config.show_progress)
    return device, cfg_grey, cmp


def stages(config: ExperimentConfig) -> list[tuple[str, Callable[[], object]]]:
    """The three trainings of :func:`run`, each on its own: ``(name, train)``, in any order or side by side.

    Each trains (or resumes) one model in ``config.out_dir / "runs"`` exactly as :func:`run`
    does; :func:`run` then finds it trained (``resume="auto"``) and goes on from there. The
    report runs them in separate processes before :func:`run` (``run.stages``); alone,
    :func:`run` trains what is not trained yet itself.
    """
    device, cfg_grey, cmp = _settings(config)
    cfg_nice, cfg_vae = training_configs(cmp, device)
    runs = config.out_dir / "runs"

    def trainer(cfg, folder):
        return lambda: train(cfg, folder, resume="auto", data=load_split(cfg)[0], show_progress=False)

    return [("nice-grey", trainer(cfg_grey, runs / "nice-grey")),
            ("nice-binary", trainer(cfg_nice, runs / "nice-binary")),
            ("vae", trainer(cfg_vae, runs / "vae"))]


def run(config: ExperimentConfig) -> ExperimentOutput:
    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    keep_runs = presets.NICE_VAE[presets.check_name(config.preset)]["keep_runs"]
    device, cfg_grey, cmp_settings = _settings(config)
    runs = out / "runs"

    def log(msg):
        if config.show_progress:
            print(f"nice-vae: {msg}", file=sys.stderr, flush=True)

    # 4a: NICE on grey levels, as in the homework.
    train_x, held_x = load_split(cfg_grey)
    log(f"4a: {cfg_grey.describe()}")
    grey = train(cfg_grey, runs / "nice-grey", resume="auto", data=train_x,
                 show_progress=config.show_progress, log=log)
    held_grey, levels = held_out_input(cfg_grey, held_x)
    gen = torch.Generator(device=device).manual_seed(config.seed + 3)
    grey_nll = nice_nll_bound(grey.model, held_grey, levels=levels, k=1, generator=gen)["bound"]
    grey_mean, grey_se = mean_se(grey_nll)
    grey_bpd = grey_mean / (784 * math.log(2))
    save_sample_grids(sample_panels(grey.model, cfg_grey, gen, temperatures=TEMPERATURES), out / "q4a_nice_samples")

    # 4c (trains the VAE that 4b shows).
    log("4c: comparison")
    cmp = run_comparison(cmp_settings, log=log, split=(train_x, held_x))
    # 4b: the VAE's samples.
    save_sample_grids(sample_panels(cmp.models["vae"], cmp.configs["vae"], gen), out / "q4b_vae_samples")

    if not keep_runs:
        shutil.rmtree(runs, ignore_errors=True)

    n = cmp.numbers
    cfg_vae, cfg_nice = cmp.configs["vae"], cmp.configs["nice"]
    figures = {
        "q4a_nice_samples": (
            f"Question 4a: NICE samples x = f^-1(T z), z from the logistic prior, at temperature 1 and 0.7 "
            f"(values clipped to [0, 1]). {cfg_grey.describe()}. Held-out NLL <= {grey_mean:.0f} nats per image "
            f"({grey_bpd:.2f} bits per pixel) on the 256-level images."),
        "q4b_vae_samples": (
            f"Question 4b: VAE samples, z ~ N(0, I): Bernoulli draws of every pixel (left) and the decoder's pixel "
            f"probabilities (right). {cfg_vae.describe()}."),
        "comparison_samples": (
            "Question 4c: binary samples from the three models of binary images, side by side: the EM mixture "
            f"(K={EM_COMPONENTS}), the VAE (Bernoulli draws) and NICE trained on dequantised binary images "
            "(a continuous sample y shown as its bin, y >= 1/2). Titles give the held-out NLL in nats per image."),
    }
    table = Table(columns=COLUMNS, rows=cmp.rows, caption=table_caption(n))

    summary = summarise(n, config.preset, grey_mean, grey_se, grey_bpd, cfg_nice.describe(), cfg_vae.describe())
    numbers = {
        "nice_grey_nll_bound": grey_mean, "nice_grey_nll_bound_se": grey_se, "nice_grey_bits_per_pixel": grey_bpd,
        "nice_grey_train_seconds": grey.train_seconds, "nice_grey_epochs": grey.epochs_done,
        **{k: v for k, v in n.items() if not isinstance(v, dict)},
        **{f"{k}_{m}": v for k, d in n.items() if isinstance(d, dict) for m, v in d.items()},
    }
    return ExperimentOutput(figures=figures, tables={"q4c_comparison": table}, numbers=numbers, summary=summary)


def summarise(n: dict, preset: str, grey_mean: float, grey_se: float, grey_bpd: float, nice_settings: str,
              vae_settings: str) -> str:
    """The answer to 4c in words, every claim read off the numbers (which may differ between presets)."""
    ranked = []
    d, se = n["vae_minus_em"], n["vae_minus_em_se"]
    if d < -5 * se:
        # The IWAE estimate overstates the VAE's NLL (in expectation), so "VAE better" is safe to say.
        ranked.append(f"the VAE fits them better than the EM mixture by {-d:.1f} +/- {se:.1f} nats per image "
                      f"(paired over images; the VAE's number is itself an upper bound in expectation)")
    elif d > 5 * se:
        ranked.append(f"the EM mixture's exact NLL is {d:.1f} +/- {se:.1f} nats per image below the VAE's "
                      f"estimate (an upper bound in expectation, so the VAE may be closer than that)")
    else:
        ranked.append(f"the VAE and the EM mixture are within {abs(d):.1f} +/- {se:.1f} nats per image")
    dn, sen = n["nice_minus_em"], n["nice_minus_em_se"]
    if dn < -5 * sen:
        ranked.append(f"NICE's upper bound alone is {-dn:.1f} nats per image below EM, so NICE fits better still")
    else:
        ranked.append(f"NICE's upper bound is {dn:.1f} nats per image above EM, which does not by itself place "
                      f"NICE below EM: k={n['k']} importance samples instead of one (Jensen) already tighten the "
                      f"bound by {n['nice_nll_bound_jensen'] - n['nice_nll_bound_iw']:.1f} nats, so it is loose")
    t, smp, par = n["train_seconds"], n["sample_1000_seconds"], n["parameters"]
    traits = ["NICE models continuous images with a 784-dimensional latent, so on binary digits its likelihood "
              "is only bounded."]
    if all(t["em"] < t[m] and smp["em"] < smp[m] and par["em"] < par[m] for m in ("vae", "nice")):
        traits.append("The EM mixture is the cheapest to train, to sample and to store.")
    if n["vae_nll_iw"] < min(n["em_nll"], n["nice_nll_bound_iw"]) and d < -5 * se:
        traits.append("The VAE has the best held-out likelihood, and so suits these data best when fit matters; "
                      "EM is the cheap baseline.")
    return (
        f"Question 4c, on {n['n_held_out']} held-out binarised MNIST images no model was trained on "
        f"({n['n_train']} training images, {preset} preset). Negative log-likelihood in nats per image: "
        f"EM mixture {n['em_nll']:.1f} (exact, K={n['em_components']}), VAE {n['vae_nll_iw']:.1f} "
        f"(importance-weighted, k={n['k']}; -ELBO {n['vae_neg_elbo']:.1f}), NICE at most "
        f"{n['nice_nll_bound_iw']:.1f} (an upper bound from uniform dequantisation, not an estimate). "
        f"By likelihood, {ranked[0]}; {ranked[1]}. Cost: training took {t['em']:.1f} s (EM), {t['vae']:.0f} s (VAE) "
        f"and {t['nice']:.0f} s (NICE); sampling 1,000 images {smp['em'] * 1e3:.0f} ms, {smp['vae'] * 1e3:.0f} ms "
        f"and {smp['nice'] * 1e3:.0f} ms; parameters {par['em']:,}, {par['vae']:,} and {par['nice']:,}. "
        f"{' '.join(traits)} "
        f"Settings: {nice_settings}; {vae_settings}. 4a, NICE on 256 grey levels: held-out NLL at most "
        f"{grey_mean:.1f} +/- {grey_se:.1f} nats per image ({grey_bpd:.2f} bits per pixel). "
        f"Timings on {n['device']}; they vary with machine load.")


#: The report trains the three models side by side before running the experiment (see :func:`stages`).
run.stages = stages
