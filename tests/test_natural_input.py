"""Natural student input (issue 16, item 5): implicit products and applications, Unicode, min/max, factorials.

tests/data/natural_inputs.yaml holds the inputs: a peer project's parser tests (PrairieLearn's
pl-symbolic-input helpers and SymPy's implicit-multiplication tests, retyped as data and kept aside to
measure the parser), genverify's own plain-text and LaTeX cases, and inputs that must stay refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy as sp
import yaml

from genverify.claims import parse as cp

DATA = yaml.safe_load((Path(__file__).parent / "data" / "natural_inputs.yaml").read_text(encoding="utf-8"))


def _table(names):
    return {n: sp.Symbol(n, real=True) for n in names}


def _same(a, b) -> bool:
    a, b = a.doit(), b.doit()
    if a == b:
        return True
    try:
        return sp.simplify(a - b) == 0
    except Exception:  # noqa: BLE001
        return False


def _reads(section: str, case: dict) -> tuple[bool, str]:
    table = _table(DATA[section]["symbols"])
    try:
        got = cp.parse_claim(case["input"], table)
    except cp.ClaimError as exc:
        return False, f"refused: {exc}"
    want = cp.parse_claim(case["expect"], table, latex=False)
    return _same(got, want), f"read as {got}, expected {want}"


def _cases(section: str):
    return [c for c in DATA[section]["cases"] if "skip" not in c]


@pytest.mark.parametrize("case", _cases("own"), ids=[c["input"] for c in _cases("own")])
def test_natural_input_is_read_as_a_student_means_it(case):
    ok, why = _reads("own", case)
    assert ok, why


@pytest.mark.parametrize("section", ["peer", "sympy"])
def test_peer_projects_inputs_are_read_as_their_tests_expect(section, capsys):
    # The peer inputs measure the parser: every one in scope is read as the peer's own test expects.
    cases = _cases(section)
    failures = [(c["input"], why) for c in cases for ok, why in [_reads(section, c)] if not ok]
    skipped = len(DATA[section]["cases"]) - len(cases)
    with capsys.disabled():
        print(f"\n{section}: {len(cases) - len(failures)}/{len(cases)} inputs read as expected "
              f"({skipped} out of scope)")
    assert not failures, failures


@pytest.mark.parametrize("case", DATA["refuse"]["cases"], ids=[c["input"][:30] for c in DATA["refuse"]["cases"]])
def test_malformed_and_malicious_input_stays_refused_with_a_reason(case):
    with pytest.raises(cp.ClaimError) as exc:
        cp.parse_claim(case["input"], _table(DATA["refuse"]["symbols"]))
    assert str(exc.value).strip()


@pytest.mark.parametrize("text,pos,message", [
    ("z*(mu + 1))", 10, "unexpected input"),
    ("  σ + sigm", 6, "did you mean 'sigma'"),
    ("ｚ＋ｑ", 2, "unknown symbol 'q'"),
    (r"\frac{1}{\sigma} \int z", 17, "integrals are not evaluated"),
    ("1/(z sigma sqrt(2 pi) e^(-(ln(z) - mu)^2", 40, "expected ')'"),  # the end of the input
])
def test_parse_errors_point_at_the_offending_character_of_the_text_as_typed(text, pos, message):
    z, mu, sigma = sp.symbols("z mu sigma", positive=True)
    with pytest.raises(cp.ClaimError) as exc:
        cp.parse_claim(text, {"z": z, "mu": mu, "sigma": sigma})
    err = exc.value
    assert message in str(err) and err.pos == pos and err.source == text
    line, caret = err.caret().splitlines()
    assert caret.index("^") - 2 == pos and line[2:] == text


def test_unknown_symbol_names_the_closest_known_one():
    with pytest.raises(cp.UnknownSymbolError, match="did you mean 'sigma'.*symbols are: mu, sigma, z"):
        cp.parse_claim("1/sigm", {n: sp.Symbol(n) for n in ("z", "mu", "sigma")})


def test_factorial_of_a_huge_number_is_refused_not_computed():
    with pytest.raises(cp.ClaimRefused, match="digits"):
        cp.parse_claim("(10^6)!", {})
