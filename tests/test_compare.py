"""Question 4c's comparison (``genverify compare``): NICE's bound, EM's exact score, the table and figure."""

from __future__ import annotations

import csv
import functools
import math

import numpy as np
import pytest
import torch

from genverify.commands.compare import to_latex, write_latex_table
from genverify.experiments.compare import COLUMNS, CompareSettings, run_comparison
from genverify.experiments.training_runs import load_split
from genverify.models import training as T
from genverify.models.evaluation import held_out_binary, nice_nll_bound
from genverify.models.nice import NICE

BINARY_2D = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)


@functools.lru_cache(maxsize=None)
def _flow_2d() -> NICE:
    torch.manual_seed(7)
    flow = NICE(2, n_coupling_blocks=3, n_hidden_layers=2, hidden_features=16).double()
    with torch.no_grad():
        # Put the density's mass around [0, 1]^2 and make it vary inside the bins, so
        # the Jensen gap is large enough to see.
        flow.log_scale.copy_(torch.tensor([1.2, 0.9], dtype=torch.float64))
        for c in flow.couplings:
            c.net[-1].bias.add_(-1.0)
    return flow.eval()


def _exact_bin_probabilities(flow: NICE) -> torch.Tensor:
    """P(x) = integral of the flow's density over the bin [x/2, (x+1)/2)^2 of each binary x (trapezoid rule).

    The integrand is smooth inside a bin except for ReLU kinks; with 201 points per
    side (h = 2.5e-3) the error is O(h^2), 2e-6 relative against 801 points, far below the
    tolerances below (0.02 nats, and the Monte Carlo standard errors).
    """
    t = torch.linspace(0.0, 0.5, 201, dtype=torch.float64)
    out = []
    for x in BINARY_2D:
        a, b = torch.meshgrid(x[0] / 2 + t, x[1] / 2 + t, indexing="ij")
        with torch.no_grad():
            dens = flow.log_prob(torch.stack([a.reshape(-1), b.reshape(-1)], 1)).exp().reshape(a.shape)
        out.append(torch.trapezoid(torch.trapezoid(dens, t, dim=1), t))
    return torch.stack(out)


def test_nice_dequantisation_bound_is_above_the_exact_discrete_nll_and_iw_tightens_it():
    flow = _flow_2d()
    prob = _exact_bin_probabilities(flow)
    exact = -torch.log(prob)
    assert float(prob.sum()) <= 1.0  # a sub-probability: mass outside [0, 1]^2 is lost
    gen = torch.Generator().manual_seed(8)
    reps = 2000
    x = BINARY_2D.repeat(reps, 1)
    jensen = nice_nll_bound(flow, x, levels=2, k=1, generator=gen)["bound"].reshape(reps, 4)
    iw = nice_nll_bound(flow, BINARY_2D.repeat(200, 1), levels=2, k=200, generator=gen)["iw"].reshape(200, 4)
    m_j, se_j = jensen.mean(0), jensen.std(0) / math.sqrt(reps)
    m_iw, se_iw = iw.mean(0), iw.std(0) / math.sqrt(200)
    # Every comparison allows 5 SE (one-sided false alarm ~3e-7 each).
    gap = m_j - exact
    assert bool((gap > 5 * se_j).all()), (gap, se_j)                  # Jensen: a strict upper bound here
    assert bool((m_iw < m_j - 5 * torch.hypot(se_iw, se_j)).all())     # IW with k = 200 is tighter
    # ... and close to exact: its bias is about Var[p(y)/P] / (2k P^2) ~ 1e-3 nats here.
    assert bool(((m_iw - exact).abs() < 5 * se_iw + 0.02).all()), (m_iw, exact, se_iw)


def test_nice_bound_rejects_a_nonpositive_sample_count():
    with pytest.raises(ValueError, match="k must be"):
        nice_nll_bound(_flow_2d(), BINARY_2D, levels=2, k=0)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Tiny NICE (binary input) and MLP VAE runs, one epoch on 64 training images of the quick split."""
    root = tmp_path_factory.mktemp("runs")
    common = dict(preset="test", epochs=1, batch_size=32, precision="fp32", device="cpu", seed=1)
    nice = T.TrainConfig(model="nice", nice_input="binary", n_coupling_blocks=2, n_hidden_layers=1,
                         hidden_features=8, nice_scale_init="data", **common)
    vae = T.TrainConfig(model="vae", vae_arch="mlp", mlp_hidden=(16,), latent_dim=2, **common)
    train_x, _ = load_split(nice)
    T.train(nice, root / "nice", data=train_x[:64], show_progress=False)
    T.train(vae, root / "vae", data=train_x[:64], show_progress=False)
    return root


@pytest.fixture(scope="module")
def comparison(tiny_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    settings = CompareSettings(out_dir=out, nice_dir=tiny_runs / "nice", vae_dir=tiny_runs / "vae",
                               em_components=3, em_max_iter=5, k=4, device="cpu", seed=0, show_progress=False)
    result = run_comparison(settings)
    write_latex_table(result, out)  # what `genverify compare` does after the comparison
    return result, out


def test_comparison_writes_one_table_as_csv_and_latex_and_a_side_by_side_figure(comparison):
    result, out = comparison
    for name in ("comparison.csv", "comparison.tex", "comparison.json", "comparison_samples.pdf",
                 "comparison_samples.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows = list(csv.reader((out / "comparison.csv").open()))
    assert rows[0] == COLUMNS
    assert [r[0] for r in rows[1:]] == ["EM mixture", "VAE", "NICE"]
    tex = (out / "comparison.tex").read_text()
    assert tex.count(r"\\") == 4 and r"\begin{tabular}" in tex
    assert "upper bound" in rows[3][3] and rows[1][3] == "exact" and "IWAE" in rows[2][3]
    assert not list(out.glob(".*"))  # atomic writes leave no temporary files
    assert set(result.samples) == {"EM mixture", "VAE", "NICE"}
    for images in result.samples.values():
        assert images.shape == (64, 1, 28, 28) and set(images.unique().tolist()) <= {0.0, 1.0}


def test_em_row_is_the_exact_mixture_log_likelihood_of_the_held_out_binary_images(comparison):
    result, _ = comparison
    em = result.models["em"]
    _, held = load_split(result.configs["nice"])
    x = held_out_binary(held, 0).reshape(len(held), -1).double().numpy()
    # Independent form: log sum_k pi_k prod_d p^x (1-p)^(1-x), with NumPy's logaddexp.
    logp = x @ np.log(em.means_).T + (1 - x) @ np.log1p(-em.means_).T + np.log(em.weights_)
    want = -np.logaddexp.reduce(logp, axis=1).mean()
    # The mixture's CPU kernel multiplies fixed-point int8 limbs of log p (exact to ~1e-9 relative).
    assert math.isclose(result.numbers["em_nll"], want, rel_tol=1e-7)
    assert result.numbers["n_held_out"] == 1000 and result.numbers["n_train"] == 4000


def test_table_numbers_are_consistent_and_parameters_counted(comparison):
    result, _ = comparison
    n = result.numbers
    em_row, vae_row, nice_row = result.rows
    assert em_row[1] == round(n["em_nll"], 2) and vae_row[1] == round(n["vae_nll_iw"], 2)
    assert nice_row[1] == round(n["nice_nll_bound_iw"], 2)
    assert em_row[7] == 3 * 784 + 2  # K x D Bernoulli means + K - 1 free weights
    assert vae_row[7] == sum(p.numel() for p in result.models["vae"].parameters())
    assert n["nice_nll_bound_iw"] <= n["nice_nll_bound_jensen"]  # log-mean-exp >= mean-log, per image
    assert all(math.isfinite(v) and v > 0 for v in n["sample_1000_seconds"].values())


def test_compare_refuses_a_nice_trained_on_grey_levels(tmp_path):
    cfg = T.TrainConfig(model="nice", n_coupling_blocks=1, n_hidden_layers=1, hidden_features=4, epochs=1,
                        batch_size=16, precision="fp32", device="cpu")
    T.train(cfg, tmp_path / "grey", data=torch.rand(16, 784), show_progress=False)
    with pytest.raises(ValueError, match="nice_dir .*trained with nice_input='binary'"):
        run_comparison(CompareSettings(out_dir=tmp_path / "out", nice_dir=tmp_path / "grey", device="cpu",
                                       show_progress=False))


def test_compare_refuses_a_run_trained_on_another_split(tmp_path, tiny_runs):
    import shutil

    other = tmp_path / "nice"
    shutil.copytree(tiny_runs / "nice", other)
    ckpt = torch.load(other / T.CHECKPOINT, weights_only=True)
    ckpt["config"]["split_seed"] = 1
    torch.save(ckpt, other / T.CHECKPOINT)
    with pytest.raises(ValueError, match="trained on another split"):
        run_comparison(CompareSettings(out_dir=tmp_path / "out", nice_dir=other, vae_dir=tiny_runs / "vae",
                                       device="cpu", show_progress=False))


def test_latex_table_escapes_special_characters():
    tex = to_latex(["a_b", "50%"], [["x & y", 1.5]], caption="k=64 #1")
    assert r"a\_b & 50\% \\" in tex and r"x \& y & 1.5 \\" in tex and r"k=64 \#1" in tex


def test_the_report_experiment_is_registered_for_question_4():
    from genverify.registry import get_experiment
    from genverify.report.cache import module_closure

    exp = get_experiment("nice-vae")
    assert exp.question == "4" and callable(exp.runner())
    assert "genverify.models.training" in module_closure([exp.module])
