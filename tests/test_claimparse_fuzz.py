"""Hypothesis fuzzing of the claim parser and of `genverify check`.

Arbitrary text never escapes as a traceback: the parser returns an expression
or raises a :class:`~genverify.claims.parse.ClaimError`, and the command ends
with exit 0, 1 or 2. Random formulas built as SymPy trees survive a round trip
through both notations (``str`` and ``sympy.latex``) and the parser.
"""

from __future__ import annotations

import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genverify.claims import parse as cp
from genverify.cli import main

Z = sp.Symbol("z", positive=True)
MU = sp.Symbol("mu", real=True)
SIGMA = sp.Symbol("sigma", positive=True)
SYMBOLS = {"z": Z, "mu": MU, "sigma": SIGMA}

# Fragments of formulas in both notations, plus hostile pieces: their random concatenations
# reach deep into the parser (far more often than uniformly random text does).
FRAGMENTS = [
    "z", "mu", "sigma", "pi", "e", "oo", "2", "0.5", "1e3", "(", ")", "+", "-", "*", "/", "**", "^", " ",
    "exp(", "log(", "sqrt(", "Piecewise((", ", ", "True", "<", "<=", "&", "Sum(", "[", "]", "|",
    "\\frac{", "}{", "}", "{", "\\sqrt", "\\ln", "\\log", "\\mu", "\\sigma", "\\pi", "\\infty", "\\cdot",
    "\\left(", "\\right)", "e^{", "_", "\\begin{cases}", "\\end{cases}", "&", "\\\\", "\\text{for }",
    "\\sum_{i=1}^{n}", "\\cos^{-1}", "9**9**9", "__import__", "'", '"', ";", "\\x00", "\u00b5", "\u221e",
]

formula_like = st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=25).map("".join)


@given(st.one_of(st.text(max_size=200), formula_like))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_parser_returns_an_expression_or_a_claim_error(text):
    try:
        out = cp.parse_claim(text, SYMBOLS)
    except cp.ClaimError:
        return
    assert isinstance(out, sp.Basic)
    assert out.free_symbols <= {Z, MU, SIGMA}


# ---------------------------------------------------------------- round trip of random formulas

leaves = st.sampled_from([Z, MU, SIGMA, sp.Integer(2), sp.Integer(3), sp.Rational(1, 2), sp.pi])


def _combine(children):
    binary = st.tuples(st.sampled_from(["+", "-", "*", "/"]), children, children).map(
        lambda t: {"+": sp.Add, "-": lambda a, b: a - b, "*": sp.Mul, "/": lambda a, b: a / b}[t[0]](t[1], t[2]))
    power = st.tuples(children, st.integers(-3, 3)).map(lambda t: t[0] ** t[1])
    unary = st.tuples(st.sampled_from([sp.exp, sp.sqrt, lambda a: sp.log(1 + a**2)]), children).map(
        lambda t: t[0](t[1]))
    return st.one_of(binary, power, unary)


formulas = st.recursive(leaves, _combine, max_leaves=8)


def _value(e):
    return sp.N(e.subs({Z: sp.Rational(7, 5), MU: sp.Rational(-1, 3), SIGMA: sp.Rational(3, 4)}), 30)


@given(formulas)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_formulas_round_trip_through_python_and_latex(expr):
    if expr.has(sp.zoo, sp.nan, sp.oo, sp.I) or len(str(expr)) > 1500:
        return
    want = _value(expr)
    for text, latex in ((str(expr), False), (sp.latex(expr), True)):
        try:
            parsed = cp.parse_claim(text, SYMBOLS, latex=latex)
        except cp.ClaimRefused:
            continue  # a documented safety limit (e^{19683} has an exponent beyond MAX_EXPONENT)
        got = _value(parsed)
        if want.is_finite and want.is_real:
            assert abs(got - want) <= 1e-20 * max(1, abs(want)), (text, got, want)


@given(st.one_of(formula_like, formulas.map(str), formulas.map(sp.latex)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_command_always_exits_0_1_or_2_without_traceback(text):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(["check", "lognormal-pdf", "--timeout", "10", "--points", "20", "--", text])
        except SystemExit as exc:  # argparse's own usage errors are exit 2 as well
            code = exc.code
    assert code in (0, 1, 2)
    assert "Traceback" not in err.getvalue() and "internal error" not in err.getvalue()
