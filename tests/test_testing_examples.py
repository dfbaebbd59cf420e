"""examples/student_hw (issue 17): a student's project runs genverify.testing in its own pytest suite; the
right answers pass and the buggy ones (the write-up's 5b, a product-form E-step, the inverse's log-det in a
Leaky-ReLU flow) fail with messages that say what is wrong. `make test` runs it through this test."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[1] / "examples" / "student_hw"

#: What each buggy answer's failure must say.
EXPECTED = {
    "test_writeup_lognormal_density": [
        "lognormal-pdf (question 5b): lognormal_pdf does not implement the verified result",
        "counterexample (the simplest Hypothesis found): z = ", "expected: ", "got: ",
        "verified formula: sqrt(2)*exp(-(mu - log(z))**2/(2*sigma**2))/(2*sqrt(pi)*sigma*z)"],
    "test_product_form_e_step_at_mnist_size": [
        "em-responsibility (question 2b-iii): e_step is numerically unstable at D = 784",
        "the quotient is 0/0 = nan", "fix: work in log space (log-sum-exp)"],
    "test_leaky_relu_flow_with_the_inverse_log_det": [
        "LeakyReLUFlow is not a valid flow layer on R^3", "log|det J| is wrong",
        "the log-determinant of the inverse"],
}


def plugin_args(cwd) -> list[str]:
    """Nothing when pytest loads genverify's plugin by its pytest11 entry point, else ``-p`` (a stale install)."""
    code = ("from importlib.metadata import entry_points; "
            "print(any(ep.value == 'genverify.testing.plugin' for ep in entry_points(group='pytest11')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=True)
    return [] if out.stdout.strip() == "True" else ["-p", "genverify.testing.plugin"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """name -> (outcome, message) of every example test, the xfails run as ordinary tests (--runxfail)."""
    report = tmp_path_factory.mktemp("examples") / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("GENVERIFY_SEED", "GENVERIFY_RESULTS_MODULES")}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--runxfail", "-q",
                          *plugin_args(EXAMPLE), f"--junitxml={report}"],
                         cwd=EXAMPLE, capture_output=True, text=True, timeout=600, env=env)
    assert report.exists(), out.stdout + out.stderr
    results = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure")
        error = case.find("error")
        if error is not None:
            results[case.get("name")] = ("error", error.get("message", "") + (error.text or ""))
        elif failed is not None:
            results[case.get("name")] = ("failed", failed.text or "")
        else:
            results[case.get("name")] = ("passed", "")
    return results


def test_the_students_right_answers_pass(outcomes):
    mine = {k: v for k, v in outcomes.items() if k not in EXPECTED}
    assert len(mine) >= 6
    assert all(outcome == "passed" for outcome, _ in mine.values()), mine


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_buggy_answer_fails_with_a_message_that_says_what_is_wrong(outcomes, name):
    outcome, message = outcomes[name]
    assert outcome == "failed", (outcome, message)
    assert "AssertionError" in message
    for fragment in EXPECTED[name]:
        assert fragment in message, (fragment, message)


def test_the_buggy_answers_are_marked_as_expected_failures():
    text = (EXAMPLE / "tests" / "test_buggy.py").read_text()
    assert "pytest.mark.xfail(strict=True, raises=AssertionError" in text
