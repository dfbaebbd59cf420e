"""`genverify errata`: every transcribed answer is checked; verdicts follow the claims, not a list."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sympy as sp
import yaml

from genverify import registry
from genverify.claims.errata import audit, audit_entry
from genverify.claims.verdict import Verdict
from genverify.claims.writeups import ClaimEntry, load_claims
from genverify.cli import main
from genverify.core import ParameterError

REQUIRED_QUESTIONS = {"1a", "2a-i", "2a-ii", "2a-iii", "2b-i", "2b-ii", "2b-iii", "2c-i", "2c-ii", "5a", "5b", "5c", "6"}


@pytest.fixture(scope="module")
def rows():
    _, entries = load_claims()
    return audit(entries, timeout=60)


def _row(rows, question, part=""):
    return next(r for r in rows if r.question == question and r.part == part)


def test_claims_file_transcribes_every_checkable_answer():
    title, entries = load_claims()
    assert "Homework 2" in title
    assert REQUIRED_QUESTIONS <= {e.question for e in entries}
    assert sum(e.question == "1a" for e in entries) == 2  # both KL values
    assert all(e.id for e in entries)


def test_known_errors_of_the_write_up_are_found(rows):
    five_b = _row(rows, "5b")
    assert five_b.verdict == Verdict.INCORRECT
    # ∫ claim = E[Z^{1/2}] = exp(mu/2 + sigma^2/8) = exp(1/8) at mu = 0, sigma = 1.
    assert f"{math.exp(1 / 8):.5g}" in five_b.evidence
    assert _row(rows, "5c", "cdf, case 2").verdict == Verdict.INCORRECT


def test_correct_answers_are_confirmed(rows):
    for question, part in [("1a", "forward KL"), ("1a", "reverse KL"), ("5a", ""), ("5c", "cdf, case 1"),
                           ("5c", "cdf, case III"), ("6", "inverse absolute determinant")]:
        assert _row(rows, question, part).verdict == Verdict.CORRECT, (question, part)


def test_missing_results_and_missing_formulas_are_not_checkable_with_a_reason(rows):
    for r in rows:
        if r.claim == "(none)":
            assert r.verdict == Verdict.NOT_CHECKABLE and "no formula" in r.evidence
        elif r.id not in registry.ids():
            assert r.verdict == Verdict.NOT_CHECKABLE and "not registered" in r.evidence
    assert {r.verdict for r in rows} <= set(Verdict)


def test_verdict_follows_the_claim_not_the_question():
    # The same question with the correct 5b formula is correct, and a broken 5a is incorrect.
    good = ClaimEntry("5b", "lognormal-pdf", r"\frac{1}{z\sigma\sqrt{2\pi}} e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}}")
    bad = ClaimEntry("5a", "cauchy-reciprocal-pdf", r"\frac{1}{\pi y^2 (y^{2} + 1)}")
    assert audit_entry(good).verdict == Verdict.CORRECT
    assert audit_entry(bad).verdict == Verdict.INCORRECT
    assert audit_entry(ClaimEntry("5a", "cauchy-reciprocal-pdf", r"\frac{1}{\pi q}")).verdict == Verdict.NOT_CHECKABLE


def test_rename_translates_the_students_notation():
    entry = ClaimEntry("6", "leaky-relu-inverse-abs-det", "10^{N_{<0}}", rename={"N_{<0}": "n_{neg}"})
    assert entry.text_to_check() == "10^{n_{neg}}"
    assert audit_entry(entry).verdict == Verdict.CORRECT


def test_em_answers_join_once_their_result_is_registered(swap_result):
    d = sp.Symbol("d", integer=True)
    D = sp.Symbol("D", integer=True, positive=True)
    p, x = sp.IndexedBase("p", real=True), sp.IndexedBase("x", integer=True)
    hand = sp.Product(p[d] ** x[d] * (1 - p[d]) ** (1 - x[d]), (d, 1, D))
    fake = registry.Result(id="bernoulli-likelihood", statement="", question="2a-i",
                           params=(registry.Param("D", D, sp.Range(1, 6)),
                                   registry.Param("p", p, sp.Interval.open(0, 1)),
                                   registry.Param("x", x, sp.FiniteSet(0, 1))),
                           derive=lambda: registry.Derivation(hand, ()))
    swap_result(fake)
    _, entries = load_claims()
    entry = next(e for e in entries if e.question == "2a-i")
    assert audit_entry(entry).verdict == Verdict.CORRECT


def test_cli_prints_the_table_and_strict_exits_1(tmp_path, capsys):
    target = tmp_path / "errata.json"
    assert main(["errata", "--question", "5", "--json", str(target)]) == 0
    out = capsys.readouterr().out
    assert "incorrect" in out and "5b" in out
    data = json.loads(target.read_text())
    assert {r["question"] for r in data} == {"5a", "5b", "5c"}
    assert main(["errata", "--question", "5b", "--strict"]) == 1


@pytest.mark.parametrize("content,message", [
    ("entries: [{question: 5a, id: cauchy-reciprocal-pdf}]", "lacks"),
    ("entries: [{question: 5a, id: x, claim: '1', verdict: correct}]", "unknown field"),
    ("entries: {a: 1}", "list"),
    ("entries: [unclosed", "YAML"),
])
def test_bad_claims_file_exits_2_naming_the_problem(tmp_path, capsys, content, message):
    path = tmp_path / "claims.yaml"
    path.write_text(content)
    assert main(["errata", "--file", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "--file" in err
    assert main(["errata", "--file", str(tmp_path / "missing.yaml")]) == 2
    # The library names its parameter, not the flag.
    with pytest.raises(ParameterError, match=f"^path .*{message}") as exc:
        load_claims(path)
    assert "--file" not in str(exc.value)


def test_experiment_returns_the_errata_table(tmp_path):
    from genverify.claims.errata import ERRATA_EXPERIMENT
    from genverify.core import ExperimentConfig

    out = ERRATA_EXPERIMENT.runner()(ExperimentConfig(out_dir=tmp_path, show_progress=False))
    table = out.tables["errata"]
    assert table.columns[:4] == ["question", "part", "id", "claim"] and len(table.rows) == len(load_claims()[1])
    assert sum(out.numbers.values()) == len(table.rows)
    assert out.numbers["incorrect"] >= 2 and "5b" in out.summary
    assert json.loads((tmp_path / "errata.json").read_text())


def test_packaged_claims_file_is_valid_yaml_with_latex_strings():
    text = (Path(__file__).parents[1] / "genverify" / "claims" / "homework2.yaml").read_text()
    data = yaml.safe_load(text)
    assert all(isinstance(e["claim"], (str, type(None))) for e in data["entries"])
