"""Every registered derivation derives its result: the result depends on the SymPy operations it performs.

``tests/derivation_probe.py`` records the SymPy operations (integrate, diff,
solve, limit, det, doit, ...) a derivation calls, perturbs the outputs of each
call site in turn, and re-derives. The test fails when

* an operation's output does not reach the result (a computation shown to the
  reader that the result does not use: a determinant computed, then a typed
  formula returned);
* a part of the result (a Piecewise condition or value, a matrix entry) changes
  under no perturbation: it was typed in;
* a supporting block (a second-order condition, an identity check) cannot
  fail: perturbing its operations never trips its ``require``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import sympy as sp

from derivation_probe import DELTA, perturb, probe
from genverify import registry

ALL = registry.all_results()
NESTED = [r.derive for r in ALL]


@pytest.mark.parametrize("result", ALL, ids=lambda r: r.id)
def test_result_depends_on_the_sympy_operations_of_its_derivation(result):
    report = probe(result.derive, NESTED)
    assert report.ok, f"{result.id}:\n{report.explain()}"


# ----------------------------------------------------------------- the probe itself can fail


def _typed_condition():
    from genverify.core import Derivation, Step

    a, b, x = sp.symbols("a b x", real=True)
    inside = sp.integrate(1 / (b - a), (x, a, b))  # an operation whose output reaches the result
    cond = a < b  # typed: no operation produced it
    return Derivation(sp.Piecewise((inside, cond), (sp.oo, True)), (Step("integrate", inside),))


def _unused_operation():
    from genverify.core import Derivation, Step

    t = sp.Symbol("t", positive=True)
    shown = sp.integrate(sp.exp(-t), (t, 0, sp.oo))  # computed and shown, never used
    return Derivation(2 * t, (Step("an integral", shown),))


def test_probe_reports_a_typed_condition_and_an_unused_operation(monkeypatch):
    # The probe records only calls made from derivation modules: pose as one.
    for f in (_typed_condition, _unused_operation):
        monkeypatch.setitem(f.__globals__, "__name__", "genverify.derivations.planted")
    typed = probe(_typed_condition)
    assert not typed.ok and [str(c) for _, c in typed.typed] == ["a < b"]
    unused = probe(_unused_operation)
    assert not unused.ok and [s[2] for s in unused.unused] == ["integrate"]


@pytest.fixture(scope="module")
def typed_in():
    """tests/typed_in_derivations.py loaded as a derivation module (the probe watches only those)."""
    name = "genverify.derivations._typed_in"
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("typed_in_derivations.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


def test_probe_rejects_the_typed_in_finiteness_condition_of_issue_14(typed_in):
    report = probe(typed_in.derive_kl_uniform)
    assert not report.ok
    assert [str(c) for _, c in report.typed] == ["(a >= c) & (b <= d)"]


def test_probe_rejects_the_typed_in_leaky_relu_log_determinant_of_issue_14(typed_in):
    report = probe(typed_in.derive_leaky_relu_log_abs_det)
    assert not report.ok
    assert [s[2] for s in report.unused] == ["Matrix.jacobian"]


def test_perturbations_keep_structure_but_move_values():
    t = sp.Symbol("t", positive=True)
    assert perturb(sp.Matrix([[t, 0], [0, 1]]), "scale").is_diagonal()
    assert perturb(t - 1, "scale") == (t - 1) * (1 + DELTA)
    assert sp.solve(perturb(t - 1, "warp"), t) != [1]
    assert perturb(sp.S.Zero, "shift") == DELTA and perturb(sp.Interval(0, 1), "zero") == sp.S.EmptySet
