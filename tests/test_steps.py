"""Step-by-step audits of derivations (issue 16, item 3; STACK's Equiv for a whole chain of lines)."""

from __future__ import annotations

import json

import pytest
import sympy as sp

from genverify.claims.steps import audit_steps, parse_relation, rename_bound, split_equation
from genverify.claims.verdict import StepStatus
from genverify.cli import main
from genverify.core import ParameterError

KL_VAE_CHAIN = [
    {"label": "the KL of two normals", "relation": "define",
     "claim": "KL(m, s) = log(1/s) + (s**2 + m**2)/2 - 1/2"},
    {"label": "at the encoder's q", "relation": "start", "claim": "KL(mu, sigma)"},
    {"label": "expand", "claim": "-log(sigma) + sigma**2/2 + mu**2/2 - 1/2"},
    {"label": "log of a square", "claim": "(mu**2 + sigma**2 - 1 - log(sigma**2))/2"},
]


def test_a_correct_chain_follows_line_by_line_and_equals_the_result():
    audit = audit_steps("kl-vae", KL_VAE_CHAIN)
    assert audit.first_error == 0 and audit.summary == "every line follows from the one it names"
    assert [r.status for r in audit.rows] == [StepStatus.START, StepStatus.START, StepStatus.FOLLOWS,
                                               StepStatus.FOLLOWS]
    assert all(r.versus_result == "equals the verified result" for r in audit.rows[1:])


def test_the_first_line_that_does_not_follow_is_marked_with_how():
    chain = [*KL_VAE_CHAIN[:3], {"label": "log of a square", "claim": "(mu**2 + sigma**2 - 1 - log(sigma))/2"}]
    audit = audit_steps("kl-vae", chain)
    assert audit.first_error == 4
    row = audit.rows[3]
    assert row.status is StepStatus.FAILS and "lacks a factor 2" in row.diagnosis and row.evidence.startswith("at ")
    assert row.corrected and audit.rows[2].versus_result == "equals the verified result"
    assert audit.summary.startswith("the error enters at line 4 (log of a square): line 3 equals the verified result")


def test_derivative_solve_and_multiply_relations():
    # A small Lagrangian in the result's own symbols: minimise (x - 1)^2 + lambda x over x (leaky-relu's x).
    lines = [
        {"relation": "start", "claim": "(x - 1)**2 + lam*x"},
        {"relation": {"derivative": "x"}, "claim": "2*(x - 1) + lam = 0"},
        {"relation": {"multiply": "1/2"}, "claim": "x - 1 + lam/2 = 0"},
        {"relation": {"solve": "x"}, "claim": "x = 1 - lam/2"},
    ]
    audit = audit_steps("leaky-relu-inverse", lines, symbols={"lam": "positive"})
    assert [r.status for r in audit.rows] == [StepStatus.START] + [StepStatus.FOLLOWS] * 3, audit.report()
    wrong = [*lines[:3], {"relation": {"solve": "x"}, "claim": "x = 1 + lam/2"}]
    audit = audit_steps("leaky-relu-inverse", wrong, symbols={"lam": "positive"})
    assert audit.first_error == 4


def test_a_line_that_follows_from_the_corrected_line_before_says_so():
    lines = [
        {"relation": "start", "claim": "(x - 1)**2 + lam*x"},
        {"relation": {"derivative": "x"}, "claim": "2*(x - 1) - lam = 0"},   # sign slip
        {"relation": {"solve": "x"}, "claim": "x = 1 - lam/2"},            # what the right derivative gives
    ]
    audit = audit_steps("leaky-relu-inverse", lines, symbols={"lam": "positive"})
    assert audit.first_error == 2 and audit.rows[2].status is StepStatus.FOLLOWS_CORRECTED
    assert "as it should be" in audit.summary


def test_substitute_a_solution_into_an_earlier_line():
    lines = [
        {"relation": "start", "claim": "L = x**2 + lam*(x - 2)"},
        {"relation": {"solve": "x"}, "claim": "x = -lam/2", "label": "stationary point"},
        {"relation": {"substitute": 2, "into": 1}, "claim": "L = -lam**2/4 - 2*lam"},
    ]
    audit = audit_steps("leaky-relu-inverse", lines, symbols={"lam": "real"})
    assert audit.rows[2].status is StepStatus.FOLLOWS and audit.rows[2].relation == "line 1 with line 2 substituted"


def test_identity_lines_are_side_computations_checked_on_their_own():
    lines = [
        {"relation": "start", "claim": r"f = \frac{1}{z} \cdot 2"},
        {"relation": "identity", "claim": r"\frac{d}{dz} \ln(z) = \frac{1}{z}"},
        {"relation": "identity", "claim": r"\frac{d}{dz} z^2 = z"},
        {"claim": r"f = \frac{2}{z}"},
    ]
    audit = audit_steps("lognormal-pdf", lines)
    assert [r.status for r in audit.rows] == [StepStatus.START, StepStatus.FOLLOWS, StepStatus.FAILS,
                                               StepStatus.FOLLOWS]
    assert audit.rows[3].relation == "equal to line 1"  # identities are not "the line before"


def test_relations_are_read_from_words_or_mappings():
    assert parse_relation("equal").kind == "equal"
    assert parse_relation({"equal": 2}).ref == 2
    r = parse_relation("derivative \\pi_k")
    assert (r.kind, r.arg) == ("derivative", "\\pi_k")
    r = parse_relation({"substitute": 3, "into": 1})
    assert (r.kind, r.ref, r.into) == ("substitute", 3, 1)
    with pytest.raises(ParameterError, match="unknown relation"):
        parse_relation("integrate")


def test_equations_split_at_top_level_equals_signs_only():
    assert split_equation(r"f(z) = \frac{a}{b} = 0") == ["f(z)", r"\frac{a}{b}", "0"]
    assert split_equation("x <= 1") == ["x <= 1"]
    assert split_equation(r"\sum_{i=1}^N x_i = 1") == [r"\sum_{i=1}^N x_i", "1"]


def test_summation_indices_are_renamed_apart_from_free_symbols():
    k, i = sp.Symbol("k", integer=True), sp.Symbol("i", integer=True)
    x = sp.IndexedBase("x")
    e = sp.Sum(x[k] * sp.Sum(x[i], (i, 1, 3)), (k, 1, 2)) + x[k]
    out = rename_bound(e, {"k"})

    def plain(expr):
        return {s for s in expr.free_symbols if not isinstance(s, sp.Indexed)}

    assert plain(out) == plain(e) and k in plain(out) and "k'" in str(out)
    assert out.doit() == e.doit()


def test_check_steps_from_the_command_line_marks_the_failing_line(tmp_path, capsys):
    chain = tmp_path / "chain.yaml"
    chain.write_text("""
- {label: "the transformation formula", relation: start, claim: 'f_Y = \\frac{1}{z \\sigma \\sqrt{2\\pi}} e^{-\\frac{(\\ln z - \\mu)^2}{2\\sigma^2}}'}
- {label: Simplify, claim: '\\frac{1}{\\sigma\\sqrt{2\\pi z}} e^{-\\frac{(\\ln z-\\mu)^2}{2\\sigma^2}}'}
""")
    target = tmp_path / "out.json"
    assert main(["check", "lognormal-pdf", "--steps", str(chain), "--json", str(target)]) == 1
    out = capsys.readouterr().out
    assert ">> 2. Simplify" in out and "times sqrt(z)" in out
    data = json.loads(target.read_text())
    assert data["steps"]["first_error"] == 2 and data["steps"]["rows"][1]["status"] == "fails"


def test_a_bad_steps_file_names_the_flag(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {claim: 'z', relation: {derivative: z, of: 5}}\n")
    assert main(["check", "lognormal-pdf", "--steps", str(bad)]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["check", "lognormal-pdf"]) == 2
    assert "EXPR is needed (or --steps FILE)" in capsys.readouterr().err


def test_an_unreadable_line_is_not_checkable_and_the_rest_is_audited():
    lines = [{"relation": "start", "claim": "KL = (mu**2 + sigma**2 - 1)/2"}, {"claim": "KL = ((mu"},
             {"claim": "(mu**2 + sigma**2 - 1)/2", "relation": {"equal": 1}}]
    audit = audit_steps("kl-vae", lines)
    assert audit.rows[1].status is StepStatus.NOT_CHECKABLE and "cannot be read" in audit.rows[1].evidence
    assert audit.rows[2].status is StepStatus.FOLLOWS
