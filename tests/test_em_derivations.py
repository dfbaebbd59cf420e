"""Question 2 derivations: SymPy's results equal independent hand forms, solve the M-step
conditions, match the float64 numerics at random small sizes, and decide the write-up's answers."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from report_support import homework_audit

from genverify import registry
from genverify.checks.indexed import Problem, evaluate
from genverify.claims import parse as cp
from genverify.claims.verdict import Verdict
from genverify.claims.writeups import load_claims
from genverify.derivations import em
from genverify.numerics import em as nem

# Written here from the model (Bishop 2006, section 9.3.3), with the claim parser's symbol
# conventions; nothing is imported from the derivation.
i, k, d, j = (sp.Symbol(n, integer=True) for n in "ikdj")
N, K, D = (sp.Symbol(n, integer=True, positive=True) for n in "NKD")
p, x = sp.IndexedBase("p", real=True), sp.IndexedBase("x", integer=True)
pi, z, eta = sp.IndexedBase("pi", positive=True), sp.IndexedBase("z", integer=True), sp.IndexedBase("eta", positive=True)


def image(kk, ii):
    return sp.Product(p[kk, d] ** x[ii, d] * (1 - p[kk, d]) ** (1 - x[ii, d]), (d, 1, D))


HAND = {
    "bernoulli-likelihood": sp.Product(p[d] ** x[d] * (1 - p[d]) ** (1 - x[d]), (d, 1, D)),
    "mixture-likelihood": sp.Sum(pi[k] * image(k, i), (k, 1, K)),
    "mixture-log-likelihood": sp.Sum(sp.log(sp.Sum(pi[k] * image(k, i), (k, 1, K))), (i, 1, N)),
    "latent-prior": sp.Product(pi[k] ** z[i, k], (k, 1, K)),
    "conditional-likelihood": sp.Product(image(k, i) ** z[i, k], (k, 1, K)),
    "complete-data-likelihood": sp.Product((pi[k] * image(k, i)) ** z[i, k], (k, 1, K), (i, 1, N)),
    "em-responsibility": pi[k] * image(k, i) / sp.Sum(pi[j] * image(j, i), (j, 1, K)),
    "em-expected-complete-log-likelihood": sp.Sum(
        eta[i, k] * sp.log(pi[k]) + eta[i, k] * sp.Sum(x[i, d] * sp.log(p[k, d]) + (1 - x[i, d]) * sp.log(1 - p[k, d]),
                                                       (d, 1, D)), (i, 1, N), (k, 1, K)),
    "em-p-update": sp.Sum(eta[i, k] * x[i, d], (i, 1, N)) / sp.Sum(eta[i, k], (i, 1, N)),
    "em-pi-update": sp.Sum(eta[i, k], (i, 1, N)) / N,
}

EM_IDS = list(HAND)


def test_every_em_result_is_registered_with_the_claim_symbols():
    for rid in EM_IDS:
        result = registry.get(rid)
        table = {prm.name: prm.symbol for prm in result.params}
        for name, sym in (("p", p), ("x", x), ("pi", pi), ("z", z), ("eta", eta), ("N", N), ("K", K), ("D", D)):
            if name in table:
                assert table[name] == sym, (rid, name)


@pytest.mark.parametrize("rid", EM_IDS)
def test_derived_form_equals_the_hand_form_at_concrete_sizes(rid):
    """30-digit agreement at every size N, K, D in 1..2 and every free index, random entries."""
    derived = registry.get(rid).expr
    rng = np.random.default_rng(4)
    for sizes in [(1, 1, 1), (2, 1, 2), (1, 2, 1), (2, 2, 2)]:
        prob = Problem(rng, *sizes)
        for index in prob.index_points(registry.get(rid)):
            a, b = evaluate(derived, prob, index), evaluate(HAND[rid], prob, index)
            assert abs(a - b) <= sp.Float(1e-25) * abs(b), (rid, sizes, index, a, b)


@pytest.mark.parametrize("rid", ["bernoulli-likelihood", "latent-prior", "em-responsibility", "em-p-update",
                                 "em-pi-update", "mixture-log-likelihood"])
def test_derived_form_simplifies_to_the_hand_form(rid):
    derived = registry.get(rid).expr
    assert derived == HAND[rid] or sp.simplify(derived - HAND[rid]) == 0


def _concrete_q(n, kk, dd):
    q = registry.get("em-expected-complete-log-likelihood").expr
    return q.xreplace({N: n, K: kk, D: dd}).doit()


def test_p_update_is_where_the_gradient_of_q_vanishes():
    """At N = 3, K = 2, D = 2: substitute the update into dQ/dp[k, d]: exactly 0, for every k, d."""
    q = _concrete_q(3, 2, 2)
    update = registry.get("em-p-update").expr
    for kk in (1, 2):
        for dd in (1, 2):
            at = {p[kk, dd]: update.xreplace({k: kk, d: dd, N: 3}).doit()}
            assert sp.simplify(sp.diff(q, p[kk, dd]).xreplace(at)) == 0


def test_pi_update_satisfies_the_lagrange_conditions():
    """dQ/dpi_k is the same for every k at the update (= -lambda), and the update sums to 1."""
    n, kk = 2, 3
    q = _concrete_q(n, kk, 1)
    update = registry.get("em-pi-update").expr
    rows = {eta[a, kk]: 1 - sum(eta[a, b] for b in range(1, kk)) for a in range(1, n + 1)}  # rows sum to 1
    values = {pi[c]: update.xreplace({k: c, N: n}).doit().xreplace(rows) for c in range(1, kk + 1)}
    grads = [sp.simplify(sp.diff(q, pi[c]).xreplace(values).xreplace(rows)) for c in range(1, kk + 1)]
    assert all(sp.simplify(g - n) == 0 for g in grads)
    assert sp.simplify(sum(values.values()) - 1) == 0


def test_responsibilities_sum_to_one_over_components():
    eta_expr = registry.get("em-responsibility").expr
    total = sum(eta_expr.xreplace({k: c, K: 3, D: 2}) for c in (1, 2, 3))
    assert sp.simplify(total.doit()) == 1


def test_derivation_steps_start_from_definitions():
    steps = registry.get("bernoulli-likelihood").derivation().steps
    assert isinstance(steps[0].expr.rhs, sp.Piecewise)  # the Bernoulli pmf's two values
    steps = registry.get("em-p-update").derivation().steps
    assert any("Solve" in s.description for s in steps)
    assert any(s.expr.has(em.lam) for s in registry.get("em-pi-update").derivation().steps)


@pytest.mark.parametrize("text,expected", [
    (r"\pi(k)", pi[k]),
    (r"\pi_k", pi[k]),
    (r"p_d^{(k)}", p[k, d]),
    (r"x_d^{(i)}", x[i, d]),
    (r"z_k^{(i)}", z[i, k]),
    (r"\eta^{(i)}_k", eta[i, k]),
])
def test_write_up_notation_parses_to_the_registry_entries(text, expected):
    table = {prm.name: prm.symbol for prm in registry.get("complete-data-likelihood").params}
    table.update({prm.name: prm.symbol for prm in registry.get("em-p-update").params})
    table.update(i=i, k=k, d=d)
    assert cp.parse_claim(text, table, latex=True) == expected


def test_write_up_answers_2a_to_2c_are_checked(tmp_path_factory):
    """Every EM answer is checkable; the two 2b-i answers use a sum where a product belongs."""
    # The audit of the whole write-up, computed once for the session (test_errata reads it too).
    rows = [r for r in homework_audit(tmp_path_factory).rows if r.question.startswith("2")]
    assert len(rows) == sum(e.question.startswith("2") for e in load_claims()[1])
    verdicts = {(r.question, r.part): r.verdict for r in rows}
    assert Verdict.NOT_CHECKABLE not in verdicts.values()
    wrong = {key for key, v in verdicts.items() if v == Verdict.INCORRECT}
    assert wrong == {("2b-i", "P(z | pi)"), ("2b-i", "P(x | z, p, pi)")}


# ------------------------------------------------------------------ numerics = derivations

NUMERIC = {
    "bernoulli-likelihood": lambda pr, ix: np.exp(nem.bernoulli_log_likelihood(pr.X[:1], pr.P[:1]))[0, 0],
    "mixture-likelihood": lambda pr, ix: np.exp(nem.mixture_log_likelihood_samples(pr.X, pr.w, pr.P))[ix["i"] - 1],
    "mixture-log-likelihood": lambda pr, ix: nem.mixture_log_likelihood(pr.X, pr.w, pr.P),
    "latent-prior": lambda pr, ix: np.exp(nem.latent_log_prior(pr.Z, pr.w))[ix["i"] - 1],
    "conditional-likelihood": lambda pr, ix: np.exp(nem.conditional_log_likelihood(pr.X, pr.Z, pr.P))[ix["i"] - 1],
    "complete-data-likelihood": lambda pr, ix: np.exp(nem.complete_data_log_likelihood(pr.X, pr.Z, pr.w, pr.P)),
    "em-responsibility": lambda pr, ix: nem.responsibilities(pr.X, pr.w, pr.P)[ix["i"] - 1, ix["k"] - 1],
    "em-expected-complete-log-likelihood": lambda pr, ix: nem.expected_complete_log_likelihood(pr.X, pr.R, pr.w, pr.P),
    "em-p-update": lambda pr, ix: nem.m_step(pr.X, pr.R)[1][ix["k"] - 1, ix["d"] - 1],
    "em-pi-update": lambda pr, ix: nem.m_step(pr.X, pr.R)[0][ix["k"] - 1],
}


@settings(max_examples=25)
@given(rid=st.sampled_from(EM_IDS), n=st.integers(1, 3), kk=st.integers(1, 3), dd=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_numerics_equal_the_derivations_at_random_small_sizes(rid, n, kk, dd, seed):
    result = registry.get(rid)
    prob = Problem(np.random.default_rng(seed), n, kk, dd)
    for index in prob.index_points(result):
        want = float(evaluate(result.expr, prob, index))
        got = float(NUMERIC[rid](prob, {str(s): int(v) for s, v in index.items()}))
        assert got == pytest.approx(want, rel=1e-12, abs=0), (rid, index)
