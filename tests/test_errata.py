"""`genverify errata`: every transcribed answer is checked; verdicts follow the claims, not a list."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sympy as sp
import yaml
from report_support import homework_audit

from genverify import registry
from genverify.claims.errata import audit, audit_entry
from genverify.claims.verdict import Verdict
from genverify.claims.writeups import ClaimEntry, load_claims
from genverify.cli import main
from genverify.core import ParameterError

REQUIRED_QUESTIONS = {"1a", "2a-i", "2a-ii", "2a-iii", "2b-i", "2b-ii", "2b-iii", "2c-i", "2c-ii", "5a", "5b", "5c", "6"}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """The audit of the packaged write-up, shared with the report's full build (computed once)."""
    return homework_audit(tmp_path_factory).rows


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
    assert main(["errata", "--question", "2b-i", "--strict"]) == 1  # two wrong answers, quick to check


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


def test_packaged_claims_file_is_valid_yaml_with_latex_strings():
    text = (Path(__file__).parents[1] / "genverify" / "claims" / "homework2.yaml").read_text()
    data = yaml.safe_load(text)
    assert all(isinstance(e["claim"], (str, type(None))) for e in data["entries"])


# ------------------------------------------------------------------ step-by-step audits (issue 16)


def _row_with_steps(rows, question, part=""):
    row = _row(rows, question, part)
    assert row.steps, (question, part)
    return row


def test_5b_chain_marks_the_simplify_line_where_the_one_over_z_moves_under_the_root(rows):
    from genverify.claims.verdict import StepStatus

    row = _row_with_steps(rows, "5b")
    assert row.first_error == 6 and row.steps[5].label == "Simplify"
    assert row.steps[5].status is StepStatus.FAILS and "sqrt(z)" in row.steps[5].diagnosis
    assert row.steps[4].versus_result == "equals the verified result"
    assert "line 5 equals the verified result" in row.diagnosis and "sqrt(z)" in row.diagnosis


def test_5c_case_2_chain_finds_the_missing_z_squared_in_the_cdf(rows):
    row = _row_with_steps(rows, "5c", "cdf, case 2")
    assert row.first_error == 4
    assert "z**2" in row.steps[3].diagnosis and "acos(1/z)" in row.steps[3].diagnosis
    assert row.steps[2].versus_result == "equals the verified result"  # the segment area is right


def test_2c_i_chain_finds_the_sign_slip_and_that_the_solution_follows_the_corrected_line(rows):
    from genverify.claims.verdict import StepStatus

    row = _row_with_steps(rows, "2c-i")
    assert row.verdict == Verdict.CORRECT  # the final update is right ...
    assert row.first_error == 3 and "wrong sign" in row.steps[2].diagnosis  # ... the cleared line is not
    assert row.steps[1].status is StepStatus.FOLLOWS  # the derivative is right
    assert row.steps[3].status is StepStatus.FOLLOWS_CORRECTED
    assert row.steps[0].versus_result.startswith("equals the result em-expected-complete-log-likelihood")


def test_2c_ii_chain_the_written_derivative_is_wrong_yet_the_next_line_is_what_the_right_one_gives(rows):
    from genverify.claims.verdict import StepStatus

    row = _row_with_steps(rows, "2c-ii")
    assert row.first_error == 2 and "1/pi[k]**2" in row.steps[1].diagnosis
    assert row.steps[2].status is StepStatus.FOLLOWS_CORRECTED
    assert row.steps[3].status is StepStatus.FOLLOWS  # L(lambda) is line 1 with line 3 put in
    assert row.steps[6].versus_result == "equals the verified result"
    assert "Line 3 follows from line 2 as it should be" in row.diagnosis


def test_errata_rows_round_trip_through_json_with_steps_and_diagnosis(rows):
    from genverify.claims.verdict import Audit, ErrataRow

    audit = Audit(title="t", source="s", rows=rows)
    back = Audit.from_json(json.loads(json.dumps(audit.to_json())))
    assert back == audit
    old = {k: v for k, v in rows[0].to_json().items() if k not in ("diagnosis", "steps", "first_error")}
    assert ErrataRow.from_json(old).steps == []  # rows written before issue 16 still read


# ------------------------------------------------------------------ many write-ups, bad entries


GOOD = """homework: "{name}"
entries:
  - {{question: "5a", id: cauchy-reciprocal-pdf, claim: '{a}'}}
  - {{question: "1a", id: kl-uniform-forward, claim: '{b}'}}
"""


def test_a_bad_entry_is_reported_and_the_rest_is_audited(tmp_path, capsys):
    from genverify.claims.errata import audit_file

    path = tmp_path / "alice.yaml"
    path.write_text('homework: "Alice"\nentries:\n'
                    "  - {question: '5a', id: cauchy-reciprocal-pdf, claim: '1/(pi*(1+y^2))'}\n"
                    "  - {question: '5b', id: lognormal-pdf, claim: 'z', where: [1, 2]}\n"
                    "  - {question: '1a', id: kl-uniform-forward, claim: '1.3863'}\n")
    audit = audit_file(path)
    bad = [r for r in audit.rows if r.claim == "(bad entry)"]
    assert len(bad) == 1 and "entry 2 (question 5b): field 'where'" in bad[0].evidence
    assert str(path) in bad[0].evidence
    assert [r.verdict for r in audit.rows if r.claim != "(bad entry)"] == [Verdict.CORRECT, Verdict.CORRECT]
    assert main(["errata", "--file", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "correct" in out and "entry 2 (question 5b): field 'where'" in err and "--file" in err


def test_a_folder_of_write_ups_gives_one_grading_table_as_csv_and_json(tmp_path, capsys):
    import csv

    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.yaml").write_text(GOOD.format(name="Alice", a="1/(pi*(1+y^2))", b=r"\log 4"))
    (folder / "bob.yaml").write_text(GOOD.format(name="Bob", a="1/(pi*(1+y))", b="log(2)"))
    (folder / "notes.txt").write_text("not a claims file")
    assert main(["errata", "--file", str(folder), "--csv", str(tmp_path / "g.csv"),
                 "--json", str(tmp_path / "g.json")]) == 0
    out = capsys.readouterr().out
    assert "Alice" in out and "Bob" in out
    table = list(csv.DictReader((tmp_path / "g.csv").open()))
    assert [(r["write_up"], r["question"], r["verdict"]) for r in table] == [
        ("Alice", "5a", "correct"), ("Alice", "1a", "correct"), ("Bob", "5a", "incorrect"), ("Bob", "1a", "incorrect")]
    assert "times 1/2" in table[3]["diagnosis"]  # log 2 is half of log 4
    data = json.loads((tmp_path / "g.json").read_text())
    assert [r["write_up"] for r in data] == ["Alice", "Alice", "Bob", "Bob"] and "diagnosis" in data[0]


def test_several_files_and_the_library_api_agree(tmp_path):
    from genverify.claims.errata import audit_files, grading_rows

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(GOOD.format(name="A", a="1/(pi*(1+y^2))", b="2 log 2"))
    b.write_text("entries: [unclosed")
    audits = audit_files([a, b])
    rows = grading_rows(audits)
    assert rows[0]["verdict"] == "correct" and rows[-1]["verdict"] == "not checkable"
    assert "YAML" in rows[-1]["evidence"]


def test_a_claim_that_runs_out_of_time_is_undecided_never_incorrect():
    row = audit_entry(ClaimEntry("5c", "square-distance-pdf", "pi*z/2"), timeout=0.001)
    assert row.verdict == Verdict.UNDECIDED and "time limit" in row.evidence


def test_a_parse_error_in_a_write_up_marks_the_place():
    row = audit_entry(ClaimEntry("5a", "cauchy-reciprocal-pdf", r"\frac{1}{\pi (1 + y^2}"))
    assert row.verdict == Verdict.NOT_CHECKABLE and ">>" in row.evidence


def test_a_parallel_audit_gives_the_same_rows_in_the_same_order(rows):
    _, entries = load_claims()
    # The cheap single-formula entries of questions 5 and 6 and one with steps (5b), checked two at a time.
    picked = [n for n, e in enumerate(entries) if e.question[0] in "56"]
    seen = []
    parallel = audit([entries[n] for n in picked], timeout=60, jobs=2, progress=seen.append)
    assert [r.to_json() for r in parallel] == [rows[n].to_json() for n in picked]
    assert sorted(map(id, seen)) == sorted(id(entries[n]) for n in picked)  # once per entry


@pytest.mark.parametrize("jobs", [0, -1, 1.5, True])
def test_jobs_must_be_a_positive_whole_number(jobs):
    with pytest.raises(ParameterError, match="^jobs must be a positive whole number"):
        audit([], jobs=jobs)


def test_an_answer_whose_worker_dies_is_not_checkable_and_says_why(monkeypatch):
    import os

    from genverify.claims import errata

    _, entries = load_claims()
    picked = [e for e in entries if e.question[0] in "56"][:3]
    real = errata.audit_entry

    def dies_on_the_second(entry, timeout, seed):
        if entry is picked[1] or (entry.question, entry.part) == (picked[1].question, picked[1].part):
            os._exit(3)  # a worker killed (out of memory, a crash)
        return real(entry, timeout=timeout, seed=seed)

    monkeypatch.setattr(errata, "audit_entry", dies_on_the_second)
    rows = audit(picked, timeout=60, jobs=2)
    assert len(rows) == 3 and rows[1].verdict is Verdict.NOT_CHECKABLE
    assert rows[1].evidence.startswith("the check could not run:") and "died" in rows[1].evidence
