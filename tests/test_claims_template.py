"""`genverify claims-template`: a claims file to fill in for any write-up (issue 16, item 4)."""

from __future__ import annotations

import pytest

from genverify import registry
from genverify.claims.checker import symbol_table
from genverify.claims.parse import parse_claim
from genverify.claims.template import claims_template, example_claim
from genverify.claims.writeups import load_claims
from genverify.cli import main


def test_template_is_a_valid_claims_file_with_an_entry_per_scalar_result(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(claims_template())
    _, entries = load_claims(path)
    scalar = [r.id for r in registry.all_results() if not hasattr(r.expr, "shape")]
    assert [e.id for e in entries] == scalar and all(e.claim is None for e in entries)


# Parametrised over every result without deriving at collection time (each xdist worker collects);
# a matrix-valued result has no scalar claim and must be absent from the template.
@pytest.mark.parametrize("result", registry.all_results(), ids=lambda r: r.id)
def test_each_example_claim_is_in_the_results_notation_and_not_the_answer(result):
    import genverify

    if hasattr(result.expr, "shape"):
        assert f"id: {result.id}" not in claims_template()
        return
    claim = example_claim(result)
    parse_claim(claim, symbol_table(result))  # the notation is the checker's
    if result.expr not in (__import__("sympy").oo,):
        assert not genverify.check(result.id, claim, diagnose=False).equivalent


def test_template_names_symbols_notation_and_no_statement_unless_asked():
    text = claims_template("5b")
    assert "lognormal-pdf" in text and "z in (0, oo); mu in (-oo, oo); sigma in (0, oo)" in text
    assert r"LaTeX z, \mu, \sigma; plain text z, mu, sigma" in text
    assert "exp(" not in text and "Z = e^Y" not in text
    assert "Z = e^Y" in claims_template("5b", statements=True)


def test_cli_prints_or_writes_the_template_and_refuses_an_unknown_question(tmp_path, capsys):
    assert main(["claims-template", "--question", "2c"]) == 0
    out = capsys.readouterr().out
    assert "em-p-update" in out and "em-pi-update" in out and "lognormal" not in out
    target = tmp_path / "q5.yaml"
    assert main(["claims-template", "--question", "5", "--output", str(target)]) == 0
    assert [e.question for e in load_claims(target)[1]] == ["5a", "5b", "5c", "5c"]
    assert main(["claims-template", "--question", "9"]) == 2
    assert "--question '9' matches no result" in capsys.readouterr().err
