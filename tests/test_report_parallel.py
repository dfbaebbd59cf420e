"""The report's parts side by side (issue 18): a build in worker processes writes the report a build in one
process writes; an experiment's stages run in other processes before its run, which finds them done; a part
that fails or a worker that dies is reported, never a hang; progress names the parts; `report --claims FILE`
audits that write-up. Stubs as in test_report.py (report_support.py)."""

from __future__ import annotations

import json
import os
import re
from functools import partial

import pytest
from report_support import CRASH, STUB, _build, _stub_audit, _tiny_results

from genverify import registry
from genverify.claims import errata as claims_errata
from genverify.cli import main
from genverify.core import Experiment, ExperimentOutput
from genverify.report.build import ReportError

STAGES = ("first", "second")


def _mark(folder, name):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.done").write_text(str(os.getpid()))


def _staged_run(config):
    """Does what its stages did not: the output says which were done already, and in which process."""
    found = {}
    for name in STAGES:
        marker = config.out_dir / f"{name}.done"
        found[name] = marker.is_file()
        if not marker.is_file():
            _mark(config.out_dir, name)
    pids = {name: int((config.out_dir / f"{name}.done").read_text()) for name in STAGES}
    return ExperimentOutput(numbers={"found": found, "pids": pids}, summary="A staged stub.")


_staged_run.stages = lambda config: [(name, partial(_mark, config.out_dir, name)) for name in STAGES]
STAGED = Experiment(id="staged", title="Staged stub", question="4", run=_staged_run)


def _dies(config):
    os._exit(3)  # as a crash in native code would


DIES = Experiment(id="dies", title="Dying stub", question="3", run=_dies)


def _before_appendix(out) -> str:
    """The report up to its appendix, run times left out (they differ from build to build)."""
    text = (out / "report.tex").read_text()
    return re.sub(r"\d+(\.\d+)?(\\,| )?m?s\b", "<time>", text[:text.index(r"\label{sec:appendix}")])


def _numbers(out, exp_id):
    cache = out.parent / ".genverify-cache" / "experiments" / exp_id
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(("partial-", "."))]
    return json.loads((entry / "output.json").read_text())["output"]["numbers"]


def test_a_build_in_worker_processes_writes_what_one_process_writes(tmp_path):
    one = _build(tmp_path / "one" / "build", experiments=[STUB], jobs=1)
    two = _build(tmp_path / "two" / "build", experiments=[STUB], jobs=2)
    assert _before_appendix(tmp_path / "one" / "build") == _before_appendix(tmp_path / "two" / "build")
    assert (one.checks_total, one.checks_failed) == (two.checks_total, two.checks_failed) and one.checks_total
    assert [p.name for p in one.parts] == [p.name for p in two.parts]
    again = _build(tmp_path / "two" / "build", experiments=[STUB], jobs=2)  # a second build reads every part back
    assert all(p.cached for p in again.parts if p.name.startswith(("result", "experiment", "errata")))


def test_an_experiments_stages_run_in_other_processes_and_its_run_finds_them_done(tmp_path):
    _build(tmp_path / "two" / "build", results=[], experiments=[STAGED], jobs=2)
    numbers = _numbers(tmp_path / "two" / "build", "staged")
    assert numbers["found"] == {"first": True, "second": True}
    assert os.getpid() not in numbers["pids"].values()  # each in a worker process
    # in one process, its run does them itself
    _build(tmp_path / "one" / "build", results=[], experiments=[STAGED], jobs=1)
    numbers = _numbers(tmp_path / "one" / "build", "staged")
    assert numbers["found"] == {"first": False, "second": False} and set(numbers["pids"].values()) == {os.getpid()}


def test_a_failing_experiment_in_a_worker_stops_the_build_and_keep_going_shows_it(tmp_path):
    out = tmp_path / "build"
    with pytest.raises(ReportError, match="crash.*failed.*previous report.*unchanged"):
        _build(out, experiments=[STUB, CRASH], jobs=2)
    summary = _build(out, experiments=[STUB, CRASH], jobs=2, keep_going=True)
    assert summary.experiments_failed == ["crash"]
    assert "crashed on purpose" in (out / "report.tex").read_text()


def test_a_worker_that_dies_is_a_failed_part_not_a_hang(tmp_path):
    with pytest.raises(ReportError, match=r"dies.*failed[\s\S]*worker process"):
        _build(tmp_path / "build", results=[], experiments=[DIES, STUB], jobs=2)


def test_progress_names_each_part_as_it_starts_and_ends(tmp_path, capsys):
    _build(tmp_path / "build", experiments=[STUB], jobs=2, show_progress=True)
    err = re.sub(r"\s+", " ", capsys.readouterr().err)
    assert "experiment stub-comparison (question 4): running, preset quick" in err
    assert "experiment stub-comparison: done in" in err
    assert "errata: 3 answers audited" in err and "by 2 processes" in err


def test_the_worker_count_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="jobs must be a positive number"):
        _build(tmp_path / "build", jobs=0)


CLAIMS = """\
homework: "Alice's homework 2"
entries:
  - question: "1c"
    id: kl-vae
    claim: '\\frac{1}{2}(\\mu^2 + \\sigma^2 - 1 - \\log \\sigma^2)'
  - question: "5b"
    id: lognormal-pdf
    claim: '\\frac{1}{\\sigma\\sqrt{2\\pi z}} e^{-\\frac{(\\ln z-\\mu)^2}{2\\sigma^2}}'
"""


def test_report_claims_audits_that_write_up(tmp_path, monkeypatch, capsys):
    claims = tmp_path / "alice.yaml"
    claims.write_text(CLAIMS)
    monkeypatch.setattr(registry, "all_results", _tiny_results)
    monkeypatch.setattr(registry, "all_experiments", lambda: [STUB])
    out = tmp_path / "alice"
    assert main(["report", "--out", str(out), "--tex-only", "--claims", str(claims), "--jobs", "2"]) == 0
    data = json.loads((out / "report.json").read_text())
    assert data["errata"]["correct"] == 1 and data["errata"]["incorrect"] == 1
    assert "Alice" in (out / "report.tex").read_text() and "homework 2" in (out / "report.html").read_text()
    assert main(["report", "--out", str(out), "--claims", str(tmp_path / "missing.yaml")]) == 2
    assert "--claims" in capsys.readouterr().err


def test_the_packaged_write_up_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_errata, "audit_file", _stub_audit)
    summary = _build(tmp_path / "build", experiments=[STUB], jobs=2)
    assert not summary.errata_failed
