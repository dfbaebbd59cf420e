"""The registry itself: every result is complete, derives rather than transcribes,
and every check passes (the same checks `genverify verify` runs)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp

from genverify import registry
from genverify.checks import symbolic_matches_hand
from genverify.checks.indexed import indexed_matches_hand
from genverify.verification import run_check

FOUNDATION_IDS = [
    "kl-uniform-forward", "kl-uniform-reverse", "kl-uniform", "kl-gaussian", "kl-vae",
    "cauchy-reciprocal-pdf", "lognormal-pdf", "square-distance-cdf", "square-distance-pdf",
    "leaky-relu-inverse", "leaky-relu-log-abs-det", "leaky-relu-inverse-abs-det",
]

ALL = registry.all_results()
CHECKS = [(r.id, c.name) for r in ALL for c in r.checks]


def test_foundation_ids_are_registered():
    assert set(FOUNDATION_IDS) <= set(registry.ids())


@pytest.mark.parametrize("result", ALL, ids=lambda r: r.id)
def test_result_is_complete(result):
    assert result.statement and result.question
    assert result.numeric is not None or result.numeric_from_symbols is not None
    assert result.checks, "a result without checks is not verified"
    assert {c.kind for c in result.checks} - {"symbolic"}, "needs a check beyond the symbolic one"
    names = [p.name for p in result.params]
    assert len(names) == len(set(names))
    # An indexed result (question 2: p[k, d]) has its entries p[k, d] and the label p among its
    # free symbols; its param is the IndexedBase p.
    free = {s for s in result.expr.free_symbols if not isinstance(s, sp.Indexed)}
    declared = {p.symbol for p in result.params}
    declared |= {p.symbol.label for p in result.params if isinstance(p.symbol, sp.IndexedBase)}
    assert free <= declared


@pytest.mark.parametrize("result", ALL, ids=lambda r: r.id)
def test_derivation_derives_rather_than_transcribes(result):
    deriv = result.derivation()
    assert len(deriv.steps) >= 2
    first = deriv.steps[0].expr
    # The starting point is a definition, not the answer.
    assert first != deriv.result
    if isinstance(first, sp.Eq):
        assert first.rhs != deriv.result
    # The final formula does not appear in the derivation module's source.
    source = inspect.getsource(inspect.getmodule(result.derive))
    if len(str(deriv.result)) > 12:
        assert str(deriv.result) not in source


#: The checks that compare a derivation with its hand form (a proof by simplify, else 30 digits at random points).
HAND_FORM_CHECKS = {symbolic_matches_hand().run.__code__, indexed_matches_hand().run.__code__}


@pytest.mark.parametrize("result", [r for r in ALL if r.hand is not None], ids=lambda r: r.id)
def test_every_hand_form_is_compared_with_the_derivation_by_a_registered_check(result):
    # The result carries the comparison among its checks; test_registry_check_passes runs it (once).
    hand_checks = [c for c in result.checks if c.run.__code__ in HAND_FORM_CHECKS]
    assert hand_checks, f"{result.id} has a hand form that no check compares with the derivation"
    assert any(CHECKS.count((result.id, c.name)) == 1 for c in hand_checks)


@pytest.mark.parametrize("result_id,check_name", CHECKS, ids=[f"{a}/{b}" for a, b in CHECKS])
def test_registry_check_passes(result_id, check_name):
    result = registry.get(result_id)
    chk = next(c for c in result.checks if c.name == check_name)
    rec = run_check(result, chk)
    assert rec.passed, f"{rec.figure}: {rec.detail}"


def test_unknown_id_is_a_value_error_with_suggestion():
    with pytest.raises(ValueError, match="lognormal-pdf"):
        registry.get("lognormal-pfd")


def test_a_wrong_numeric_function_fails_its_checks():
    """The checks can fail: swap in the student's 5b answer and verify rejects it."""
    import dataclasses

    good = registry.get("lognormal-pdf")

    def student(z, mu, sigma):  # 1/(sigma sqrt(2 pi z)) exp(...): the write-up's final line
        return np.exp(-((np.log(z) - mu) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi * z))

    bad = dataclasses.replace(good, numeric=student)
    failed = [c.name for c in bad.checks if c.kind != "symbolic" and not run_check(bad, c).passed]
    assert {"numeric = lambdified derivation", "integrates to 1", "Monte Carlo P(a < e^Y < b)",
            "scipy.stats.lognorm(s=sigma, scale=exp(mu))"} <= set(failed)


def test_every_results_module_is_listed_in_the_registration_order():
    # A topic module that is not in MODULES would be silently skipped by discovery.
    import pkgutil

    from genverify import results

    names = {m.name for m in pkgutil.iter_modules(results.__path__)}
    assert names == {m.__name__.rsplit(".", 1)[1] for m in results.MODULES}


def test_results_modules_register_nothing_themselves():
    # Registration is the registry's job: a topic module declares RESULTS / EXPERIMENTS / QUESTIONS only.
    from genverify import results

    for module in results.MODULES:
        assert not hasattr(module, "register"), module.__name__
        assert any(hasattr(module, n) for n in ("RESULTS", "EXPERIMENTS", "QUESTIONS")), module.__name__


def test_registered_ids_are_unique_across_results_and_experiments():
    ids = registry.ids()
    assert len(ids) == len(set(ids))
    exp_ids = [e.id for e in registry.all_experiments()]
    assert len(exp_ids) == len(set(exp_ids))


def test_user_registration_takes_a_result_and_refuses_anything_else():
    with pytest.raises(ValueError, match="result must be a genverify.core.Result"):
        registry.register({"id": "not-a-result"})
