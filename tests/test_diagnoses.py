"""What is wrong, not just that it is wrong (issue 16, items 1, 2 and 6): diagnoses, answer tests, undecided."""

from __future__ import annotations

import json
import math

import pytest

import genverify
from genverify.claims.verdict import Verdict
from genverify.cli import main
from genverify.core import ParameterError

LOGNORMAL = "exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))"
STUDENT_5B = r"\frac{1}{\sigma\sqrt{2\pi z}} \cdot e^{-\frac{(\ln(z)-\mu)^2}{2\sigma^2}}"
STUDENT_5C = r"\frac{1}{4} \left(\pi z^2 - 4 \cos^{-1}\left(\frac{1}{z}\right) + 4 \sqrt{z^2 - 1} \right)"

# (id, claim, where, kind, words in the text)
DIAGNOSES = [
    ("lognormal-pdf", STUDENT_5B, None, "factor", "the result times sqrt(z)"),
    ("lognormal-pdf", "2*" + LOGNORMAL, None, "normalisation", "integrates to 2"),
    ("lognormal-pdf", "exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sqrt(2*pi))", None, "normalisation", "times sigma"),
    ("lognormal-pdf", "-" + LOGNORMAL, None, "sign", "opposite sign"),
    ("kl-vae", "(mu**2 + sigma**2 - 1 - log(sigma**2))/2 + 3*mu", None, "term", "plus 3*mu"),
    ("kl-gaussian", "log(sigma2/sigma1) + (sigma1**2 + (mu1-mu2)**2)/(2*sigma2**2)", None, "term", "plus 1/2"),
    ("square-distance-cdf", STUDENT_5C, r"1 \le z \le \sqrt{2}", "term-factor", "lacks a factor z**2"),
    ("kl-vae", "(mu**2 + sigma**2 - 1 + log(sigma**2))/2", None, "term-sign", "wrong sign"),
    ("kl-vae", "(mu**2 + sigma**2 - 1 - log(sigma**2))/2 + sin(mu)**2", None, "extra-term", "should not be there"),
    ("square-distance-cdf", "Piecewise((0, z < 0), (pi*z**2/4, z <= 1), (1, True))", None, "region",
     "wrong for 1 < z < sqrt(2)"),
    ("kl-vae", "(sigma**2 + mu**2 - 1 - log(mu**2))/2", None, "renamed", "mu -> sigma, sigma -> mu"),
    ("kl-uniform-forward", "log(2)", None, "factor", "times 1/2"),
]


@pytest.mark.parametrize("rid,claim,where,kind,words", DIAGNOSES, ids=[f"{d[0]}:{d[3]}" for d in DIAGNOSES])
def test_a_wrong_claim_gets_a_diagnosis_and_still_its_counterexample(rid, claim, where, kind, words):
    v = genverify.check(rid, claim, where=where)
    assert not v.equivalent and v.counterexample is not None
    assert v.diagnosis is not None and v.diagnosis.kind == kind, v.report()
    assert words in v.diagnosis.text and f"diagnosis: {v.diagnosis.text}" in v.report()


def test_the_factor_is_checked_at_every_point_not_guessed():
    # 5b: the claim divided by the reported factor is the verified result.
    v = genverify.check("lognormal-pdf", STUDENT_5B)
    fixed = genverify.check("lognormal-pdf", v.diagnosis.detail["corrected"])
    assert fixed.equivalent


def test_no_diagnosis_when_nothing_simple_relates_claim_and_result():
    v = genverify.check("kl-vae", "mu**3 + exp(sigma)")
    assert not v.equivalent and v.diagnosis is None and v.counterexample is not None


def test_a_claim_in_other_variables_gets_the_substitution_as_stack_substequiv():
    v = genverify.check("lognormal-pdf", "exp(-(log(x)-mu)**2/(2*sigma**2))/(x*sigma*sqrt(2*pi))")
    assert not v.equivalent and v.method == "renamed"
    assert v.diagnosis.kind == "renamed" and v.diagnosis.detail["mapping"] == {"x": "z"}
    assert v.counterexample is not None and "x" in v.counterexample.point
    # With no renaming that works, an unknown symbol is refused as before.
    with pytest.raises(ValueError, match="unknown symbol 'x'"):
        genverify.check("lognormal-pdf", "x + 1")


def test_the_diagnosis_is_in_the_json_verdict(tmp_path, capsys):
    target = tmp_path / "v.json"
    assert main(["check", "lognormal-pdf", STUDENT_5B, "--json", str(target)]) == 1
    assert "diagnosis: the claim is the result times sqrt(z)" in capsys.readouterr().out
    data = json.loads(target.read_text())
    assert data["diagnosis"]["kind"] == "factor" and data["diagnosis"]["detail"]["factor"] == "sqrt(z)"


# ------------------------------------------------------------------ answer tests


@pytest.mark.parametrize("rid,claim,where,test,rtol,expected", [
    ("kl-vae", "(mu**2 + sigma**2 - log(sigma**2))/2", None, "up-to-constant", None, True),
    ("kl-vae", "(mu**2 + sigma**2 - log(sigma**2))/2", None, "equivalent", None, False),
    ("square-distance-cdf", "pi*z**2/4 + 3", "0 < z < 1", "up-to-constant", None, True),
    ("lognormal-pdf", "exp(-(log(z)-mu)**2/(2*sigma**2))/z", None, "up-to-constant", None, False),
    ("lognormal-pdf", "exp(-(log(z)-mu)**2/(2*sigma**2))/z", None, "proportional", None, True),  # 1/(sigma sqrt(2pi))
    ("lognormal-pdf", STUDENT_5B, None, "proportional", None, False),
    ("lognormal-pdf", "0.3989422804/(z*sigma)*exp(-(log(z)-mu)**2/(2*sigma**2))", None, "numeric", None, True),
    ("lognormal-pdf", "0.3989/(z*sigma)*exp(-(log(z)-mu)**2/(2*sigma**2))", None, "numeric", None, False),
    ("lognormal-pdf", "0.3989/(z*sigma)*exp(-(log(z)-mu)**2/(2*sigma**2))", None, "numeric", 1e-3, True),
    ("kl-uniform-forward", "1.3863", None, "equivalent", None, True),   # log 4 to the digits written
    ("kl-uniform-forward", "1.386", None, "equivalent", None, True),
    ("kl-uniform-forward", "1.3862", None, "equivalent", None, False),
    ("kl-uniform-forward", "1.39", None, "numeric", 1e-2, True),
])
def test_answer_tests_decide_as_stack_and_webwork_would(rid, claim, where, test, rtol, expected):
    v = genverify.check(rid, claim, where=where, test=test, rtol=rtol)
    assert v.equivalent is expected, v.report()
    assert v.test == test
    if not expected:
        assert v.counterexample is not None


def test_a_decimal_is_compared_to_the_precision_it_is_written_with():
    v = genverify.check("kl-uniform-forward", "1.3863")
    assert v.method == "decimal" and "5e-05" in v.message and v.claim == "1.3863"
    assert math.isclose(math.log(4), 1.3863, abs_tol=5e-5)


def test_cli_takes_the_test_and_the_tolerance(capsys):
    assert main(["check", "kl-vae", "(mu^2 + sigma^2 - log sigma^2)/2", "--test", "up-to-constant"]) == 0
    assert "EQUAL UP TO A CONSTANT" in capsys.readouterr().out
    assert main(["check", "lognormal-pdf", "0.3989/(z sigma) exp(-(ln z - mu)^2/(2 sigma^2))",
                 "--test", "numeric", "--rtol", "1e-3"]) == 0
    assert main(["check", "kl-uniform-forward", "1.3863"]) == 0
    assert main(["check", "kl-vae", "mu", "--rtol", "2"]) == 2
    assert "--rtol must be a number in (0, 1)" in capsys.readouterr().err


def test_bad_test_and_rtol_name_their_parameters():
    with pytest.raises(ParameterError, match="^test must be one of"):
        genverify.check("kl-vae", "mu", test="algebraic")
    with pytest.raises(ParameterError, match="^rtol must be"):
        genverify.check("kl-vae", "mu", rtol=-1)


# ------------------------------------------------------------------ refusals say why


def test_time_limit_is_undecided_never_wrong(capsys):
    assert main(["check", "square-distance-pdf", "pi*z/2", "--timeout", "0.001"]) == 2
    err = capsys.readouterr().err
    assert "UNDECIDED (not wrong)" in err and "time limit" in err
    assert Verdict.UNDECIDED.value == "undecided"


def test_a_parse_error_prints_the_claim_with_a_caret_under_the_place(capsys):
    assert main(["check", "lognormal-pdf", "1/(z*sigma*sqrt(2*pi)) * exp(-(log(z) - mu)^2 / (2*sigma^2)))"]) == 2
    err = capsys.readouterr().err.splitlines()
    caret = next(i for i, line in enumerate(err) if line.strip() == "^")
    assert err[caret].index("^") == err[caret - 1].rindex(")")


def test_an_unsupported_construct_says_what_to_write_instead(capsys):
    assert main(["check", "lognormal-pdf", r"\int_0^z \frac{1}{t} dt"]) == 2
    assert "integrals are not evaluated: write the integrated formula" in capsys.readouterr().err
