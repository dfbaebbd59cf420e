"""Experiment ``kl-fits`` (questions 1b and 1c): forward and reverse KL fits of a Gaussian, and the ELBO.

1b: a Gaussian q = N(m, s^2) fitted to a bimodal target p by forward KL
(moment matching: mass-covering) and by reverse KL (mode-seeking: one local
optimum per mode), and how both fits move as the modes separate. 1c: on a
latent-variable model with a bimodal posterior, the Gaussian q that
maximises the ELBO is the reverse-KL fit of the posterior.

:func:`kl_fit_report` is the body of the experiment and of ``genverify kl-demo``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import scipy  # scipy.stats loads on first use: the registry imports this module for its constants
from tqdm import tqdm

from genverify import presets
from genverify.core import ExperimentConfig, ExperimentOutput, Table
from genverify.experiments.plotting import blank_figure, new_figure, save
from genverify.numerics.kl_fit import (
    GaussianMixture1D,
    SquaredLatentModel,
    bimodal,
    distinct_optima,
    fit_forward_kl,
    fit_reverse_kl,
    maximize_elbo,
    reverse_kl,
)

#: The homework-style target of 1b: 0.4 N(-3, 0.8^2) + 0.6 N(3, 1.2^2).
DEFAULT_TARGET = bimodal()
#: 1c's model with a bimodal posterior: z ~ N(0, 1), x | z ~ N(z^2, 0.5^2), observed x = 3.
BIMODAL_MODEL = SquaredLatentModel(x=3.0, sigma_x=0.5)


FORWARD_LABEL = "forward KL (mass-covering)"
REVERSE_LABEL = "reverse KL (mode-seeking)"
FORWARD_COLOR = "tab:blue"
REVERSE_COLOR = "tab:red"
COMPONENTS_LABEL = "components: μₖ in (b), σₖ in (c)"


def scaled_target(target: GaussianMixture1D, separation: float) -> GaussianMixture1D:
    """The target with its means spread about their midpoint so that max - min = ``separation``."""
    mu = target.means
    spread = float(mu.max() - mu.min())
    mid = 0.5 * float(mu.max() + mu.min())
    if spread == 0:
        # One location: spread the components evenly (K = 1 stays put).
        offsets = np.linspace(-0.5, 0.5, target.n_components) if target.n_components > 1 else np.zeros(1)
        return GaussianMixture1D(target.weights, mid + separation * offsets, target.sds)
    return GaussianMixture1D(target.weights, mid + (mu - mid) * (separation / spread), target.sds)


def separation_sweep(target: GaussianMixture1D, separations, n_init: int = 6,
                     progress: Callable[[], None] | None = None) -> dict[str, np.ndarray]:
    """Forward and reverse fits as the modes separate (the means scaled about their midpoint).

    Returns arrays per separation (``forward_m``, ``forward_s``, ``reverse_m``,
    ``reverse_s`` of the best reverse optimum, ``n_optima``) and ``optima``:
    one row (separation, m, s, reverse KL) per distinct local optimum.
    """
    rows, optima = [], []
    for sep in separations:
        t = scaled_target(target, float(sep))
        rev = fit_reverse_kl(t, n_init=n_init)
        rows.append((float(sep), t.mean(), t.sd(), rev.m_, rev.s_, len(rev.optima_)))
        optima.extend((float(sep), o.m, o.s, o.reverse_kl) for o in rev.optima_)
        if progress is not None:
            progress()
    arr = np.array(rows, dtype=float)
    keys = ("separation", "forward_m", "forward_s", "reverse_m", "reverse_s", "n_optima")
    out = {k: arr[:, i] for i, k in enumerate(keys)}
    out["optima"] = np.array(optima, dtype=float).reshape(-1, 4)
    return out


def plot_kl_fits(target: GaussianMixture1D, fwd, rev, sweep: dict[str, np.ndarray], path_stem: Path) -> list[Path]:
    """The 1b figure: (a) target, forward and reverse fits; (b, c) how each fit moves as the modes separate."""
    fig = blank_figure(figsize=(12, 8.6))
    grid = fig.add_gridspec(2, 2, height_ratios=[1.25, 1], hspace=0.62, wspace=0.22)
    ax = fig.add_subplot(grid[0, :])
    bx, cx = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])

    lo = min(float(np.min(target.means - 4 * target.sds)), fwd.m_ - 3 * fwd.s_)
    hi = max(float(np.max(target.means + 4 * target.sds)), fwd.m_ + 3 * fwd.s_)
    xs = np.linspace(lo, hi, 1500)
    ax.fill_between(xs, target.pdf(xs), color="0.78", label="target p (Gaussian mixture)", zorder=1)
    ax.plot(xs, target.pdf(xs), color="0.45", lw=1.0, zorder=2)
    ax.plot(xs, scipy.stats.norm.pdf(xs, fwd.m_, fwd.s_), color=FORWARD_COLOR, lw=2.6, zorder=4,
            label=f"{FORWARD_LABEL}: argmin KL(p‖q), m = {fwd.m_:.2f}, s = {fwd.s_:.2f}")
    ax.plot(xs, scipy.stats.norm.pdf(xs, rev.m_, rev.s_), color=REVERSE_COLOR, lw=2.6, zorder=5,
            label=f"{REVERSE_LABEL}: argmin KL(q‖p), m = {rev.m_:.2f}, s = {rev.s_:.2f}")
    for o in rev.optima_[1:]:
        ax.plot(xs, scipy.stats.norm.pdf(xs, o.m, o.s), color=REVERSE_COLOR, lw=1.1, ls="--", alpha=0.55, zorder=3,
                label=f"reverse KL, other local optimum (worse KL(q‖p)), m = {o.m:.2f}, s = {o.s:.2f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, None)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.set_title("(a) Which KL gives which fit?  q = N(m, s²), only m and s free, fitted to p")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8.8, frameon=False)

    sep = sweep["separation"]
    opt = sweep["optima"]
    scaled = [scaled_target(target, d) for d in sep]
    for k in range(target.n_components):
        bx.plot(sep, [t.means[k] for t in scaled], color="0.45", lw=1.0, ls=":",
                label=COMPONENTS_LABEL if k == 0 else None)
        cx.axhline(target.sds[k], color="0.45", lw=1.0, ls=":", label=COMPONENTS_LABEL if k == 0 else None)
    cx.plot(sep, sweep["forward_s"], color=FORWARD_COLOR, lw=2.4, label=FORWARD_LABEL)
    bx.plot(sep, sweep["forward_m"], color=FORWARD_COLOR, lw=2.4, label=FORWARD_LABEL)
    bx.plot(sep, sweep["reverse_m"], color=REVERSE_COLOR, lw=2.4, label=f"{REVERSE_LABEL}, best")
    cx.plot(sep, sweep["reverse_s"], color=REVERSE_COLOR, lw=2.4, label=f"{REVERSE_LABEL}, best")
    for axis, col in ((bx, 1), (cx, 2)):
        axis.scatter(opt[:, 0], opt[:, col], s=16, facecolors="none", edgecolors=REVERSE_COLOR, lw=0.9,
                     label="reverse KL, every local optimum", zorder=3)
    current = float(target.means.max() - target.means.min())
    for axis in (bx, cx):
        if sep.min() <= current <= sep.max():
            axis.axvline(current, color="k", lw=0.8, ls="-.", alpha=0.5)
        axis.set_xlabel("separation of the modes (max μₖ − min μₖ); dash-dot: panel (a)")
    bx.set_ylabel("fitted mean m")
    cx.set_ylabel("fitted standard deviation s")
    cx.set_ylim(0, None)
    bx.set_title("(b) means as the modes separate")
    cx.set_title("(c) widths: forward widens, reverse stays at one mode's width")
    handles, labels = [], []
    for axis in (bx, cx):
        for h, lab in zip(*axis.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.035), ncol=3, fontsize=8.8, frameon=False)
    return save(fig, path_stem)


def plot_elbo_bimodal(model: SquaredLatentModel, best, others, path_stem: Path) -> list[Path]:
    """The 1c figure: a bimodal posterior, the ELBO-maximising Gaussian (= reverse-KL fit) and moment matching."""
    sd = math.sqrt(model.var())
    mean = model.mean()
    r = max(2.0 * sd, float(np.max(np.abs(model.modes()))) + 1.6)
    zs = np.linspace(-r, r, 1600)
    fig, ax = new_figure(figsize=(8, 5.6))
    ax.fill_between(zs, model.pdf(zs), color="0.78",
                    label=f"posterior p(z | x = {model.x:g}): bimodal, z and −z explain x equally")
    ax.plot(zs, model.pdf(zs), color="0.45", lw=1.0)
    best_elbo = float(model.elbo(best.m, best.s))
    gap = model.log_evidence() - best_elbo
    ax.plot(zs, scipy.stats.norm.pdf(zs, best.m, best.s), color=REVERSE_COLOR, lw=2.6,
            label=f"argmax ELBO over Gaussian q = {REVERSE_LABEL} fit: m = {best.m:.2f}, s = {best.s:.2f};\n"
                  f"log p(x) − ELBO(q) = KL(q‖p(z|x)) = {gap:.3f}")
    for o in others:
        ax.plot(zs, scipy.stats.norm.pdf(zs, o.m, o.s), color=REVERSE_COLOR, lw=1.1, ls="--", alpha=0.55,
                label=f"the ELBO's other local maximum, m = {o.m:.2f} (mirror image, same ELBO)")
    mm_elbo = float(model.elbo(mean, sd))
    ax.plot(zs, scipy.stats.norm.pdf(zs, mean, sd), color=FORWARD_COLOR, lw=2.4,
            label=f"{FORWARD_LABEL} fit (moment matching): m = {mean:.2f}, s = {sd:.2f}; "
                  f"ELBO lower by {best_elbo - mm_elbo:.1f} nats")
    ax.set_xlim(-r, r)
    ax.set_ylim(0, None)
    ax.set_xlabel("z")
    ax.set_ylabel("density")
    ax.set_title(f"1c: z ~ N(0, 1), x | z ~ N(z², {model.sigma_x:g}²): maximising the ELBO locks q onto one mode")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8.8, frameon=False)
    fig.tight_layout()
    return save(fig, path_stem)


def kl_fit_report(target: GaussianMixture1D, out_dir: Path, separations=None, n_init: int = 8,
                  model: SquaredLatentModel | None = None, show_progress: bool = True,
                  stem_prefix: str = "", sweep_points: int = 31) -> ExperimentOutput:
    """Fit, plot and tabulate: the body of experiment ``kl-fits`` and of ``genverify kl-demo``.

    Without ``separations`` the sweep takes ``sweep_points`` separations from 0 to
    max(10, 1.5 x the target's own).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fwd = fit_forward_kl(target)
    rev = fit_reverse_kl(target, n_init=n_init)
    if separations is None:
        current = float(target.means.max() - target.means.min())
        separations = np.linspace(0.0, max(10.0, 1.5 * current), sweep_points)
    bar = None
    if show_progress:
        bar = tqdm(total=len(separations), desc="kl-fits: separation sweep", leave=False)
    sweep = separation_sweep(target, separations, n_init=6, progress=(bar.update if bar else None))
    if bar is not None:
        bar.close()
    stem_1b = f"{stem_prefix}kl_fits_1b"
    plot_kl_fits(target, fwd, rev, sweep, out_dir / stem_1b)
    figures = {stem_1b: ("Question 1b. (a) A Gaussian q = N(m, s²) fitted to the bimodal target p (grey): the "
                         "forward-KL fit (blue, moment matching) spreads over both modes; the reverse-KL fit (red) "
                         "sits on one mode, and the other mode gives a second, worse local optimum (dashed). (b, c) "
                         "Fitted mean and standard deviation as the modes separate (means scaled about their "
                         "midpoint); circles mark every local optimum of reverse KL.")}
    rows = [["forward KL(p||q): moment matching", fwd.m_, fwd.s_, fwd.forward_kl_, fwd.reverse_kl_]]
    for i, o in enumerate(rev.optima_):
        name = "reverse KL(q||p): best local optimum" if i == 0 else f"reverse KL(q||p): local optimum {i + 1}"
        rows.append([name, o.m, o.s, o.forward_kl, o.reverse_kl])
    table = Table(columns=["fit", "m", "s", "KL(p||q) forward", "KL(q||p) reverse"],
                  rows=[[r[0]] + [round(float(v), 6) for v in r[1:]] for r in rows],
                  caption=f"Fits of q = N(m, s^2) to {target!r}: fitted parameters and both divergences.")
    numbers: dict[str, Any] = {
        "target_mean": target.mean(), "target_sd": target.sd(),
        "forward_m": fwd.m_, "forward_s": fwd.s_, "forward_kl_of_forward_fit": fwd.forward_kl_,
        "reverse_kl_of_forward_fit": fwd.reverse_kl_,
        "reverse_m": rev.m_, "reverse_s": rev.s_, "forward_kl_of_reverse_fit": rev.forward_kl_,
        "reverse_kl_of_reverse_fit": rev.reverse_kl_, "reverse_local_optima": len(rev.optima_),
    }
    k = int(np.argmin(np.abs(target.means - rev.m_)))
    on_mode = abs(rev.m_ - target.means[k]) <= 0.5 * target.sds[k] and abs(rev.s_ / target.sds[k] - 1) <= 0.25
    n_opt = len(rev.optima_)
    where = (f"sits on one mode (the component N({target.means[k]:g}, {target.sds[k]:g}^2))" if on_mode else
             "does not sit on a single mode here (the modes are not separated enough)")
    summary = (f"Forward KL(p||q) is minimised by moment matching: q = N({fwd.m_:.3f}, {fwd.s_:.3f}^2) spreads over "
               f"every mode of p and puts mass between them (mass-covering). Reverse KL(q||p) has {n_opt} local "
               f"optim{'um' if n_opt == 1 else 'a'} from {n_init} starts; the best, q = N({rev.m_:.3f}, "
               f"{rev.s_:.3f}^2), {where}, and it is {'narrower' if rev.s_ < target.sd() else 'not narrower'} than "
               f"p (sd {target.sd():.3f}). In question 1b, the broad fit spanning the modes is the forward-KL fit "
               f"and the narrow fit on one mode is the reverse-KL fit (mode-seeking).")
    tables = {"kl_fits": table}
    if model is not None:
        elbo_fits = maximize_elbo(model)
        best, *others = distinct_optima(sorted(elbo_fits, key=lambda f: -float(model.elbo(f.m, f.s))), m_tol=1e-3)
        best_elbo = float(model.elbo(best.m, best.s))
        mm_mean, mm_sd = model.mean(), math.sqrt(model.var())
        stem_1c = f"{stem_prefix}elbo_bimodal_1c"
        plot_elbo_bimodal(model, best, others, out_dir / stem_1c)
        figures[stem_1c] = ("Question 1c. For a latent-variable model with a bimodal posterior (grey), the "
                            "Gaussian q that maximises the ELBO (red) is the reverse-KL fit: log p(x) − ELBO(q) = "
                            "KL(q‖p(z|x)), so q locks onto one mode; the moment-matched (forward-KL) Gaussian (blue) "
                            "has a lower ELBO.")
        elbo_rows = [["argmax ELBO (= reverse-KL fit)", best.m, best.s, best_elbo, best.reverse_kl],
                     ["moment matching (forward-KL fit)", mm_mean, mm_sd, float(model.elbo(mm_mean, mm_sd)),
                      float(reverse_kl(model, mm_mean, mm_sd))]]
        tables["elbo_bimodal"] = Table(columns=["q", "m", "s", "ELBO", "KL(q||p(z|x))"],
                                       rows=[[r[0]] + [round(float(v), 6) for v in r[1:]] for r in elbo_rows],
                                       caption=f"{model!r}: log p(x) = {model.log_evidence():.6f} "
                                               "= ELBO + KL for each q.")
        numbers.update({"elbo_log_evidence": model.log_evidence(), "elbo_best_m": best.m, "elbo_best_s": best.s,
                        "elbo_best": best_elbo, "elbo_gap_best": best.reverse_kl})
        summary += (f" For 1c: maximising the ELBO over Gaussian q is minimising KL(q || p(z|x)), reverse KL; on a "
                    f"bimodal posterior the optimum q = N({best.m:.3f}, {best.s:.3f}^2) locks onto one mode.")
    return ExperimentOutput(figures=figures, tables=tables, numbers={k: float(v) for k, v in numbers.items()},
                            summary=summary)


def run(config: ExperimentConfig) -> ExperimentOutput:
    """The experiment: the default target and 1c's model, at the preset's sweep resolution."""
    # Deterministic (quadrature, fixed starts): the seed is not used.
    settings = presets.KL_FITS[presets.check_name(config.preset)]
    separations = np.linspace(0.0, 10.0, settings["sweep_points"])
    return kl_fit_report(DEFAULT_TARGET, config.out_dir, separations=separations, model=BIMODAL_MODEL,
                         show_progress=config.show_progress, n_init=settings["n_init"])
