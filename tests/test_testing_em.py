"""genverify.testing's EM helpers (issue 17, questions 2-3): a user's E-step and M-step against
em-responsibility, em-p-update and em-pi-update, on small problems and at D = 784, where a product-form
E-step underflows to 0/0 = nan and the message names the log-space fix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from scipy.special import logsumexp

from genverify.core import ParameterError
from genverify.testing import EMProblem, assert_e_step, assert_m_step, em_problems, random_problem


def e_step(X, p, pi):
    log_joint = np.log(pi) + X @ np.log(p).T + (1 - X) @ np.log1p(-p).T
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def product_form_e_step(X, p, pi):
    joint = pi * np.prod(p[None] ** X[:, None] * (1 - p[None]) ** (1 - X[:, None]), axis=2)
    with np.errstate(invalid="ignore"):
        return joint / joint.sum(axis=1, keepdims=True)


def m_step(X, resp):
    n_k = resp.sum(axis=0)
    return n_k / X.shape[0], resp.T @ X / n_k[:, None]


def message_of(check, fn, **kw) -> str:
    with pytest.raises(AssertionError) as exc:
        check(fn, **kw)
    return str(exc.value)


# ----------------------------------------------------------------- E-step


def test_a_log_space_e_step_passes_in_numpy_and_torch():
    assert_e_step(e_step)
    torch = pytest.importorskip("torch")

    def torch_e_step(X, p, pi):
        return torch.softmax(torch.log(pi) + X @ torch.log(p).T + (1 - X) @ torch.log1p(-p).T, dim=1)

    assert_e_step(torch_e_step)


def test_a_product_form_e_step_fails_at_mnist_size_and_the_message_names_the_underflow_and_the_fix():
    message = message_of(assert_e_step, product_form_e_step)
    assert message.startswith("em-responsibility (question 2b-iii): product_form_e_step is numerically unstable "
                              "at D = 784")
    assert "got (first image):      [nan, nan, nan]" in message
    assert "underflows to 0 for every component, and the quotient is 0/0 = nan" in message
    assert "fix: work in log space (log-sum-exp)" in message and "logsumexp" in message
    # it is right where nothing underflows: small problems pass
    assert_e_step(product_form_e_step, stability=False)


def test_a_wrong_e_step_fails_on_the_smallest_problem_with_a_hint():
    def unnormalised(X, p, pi):
        return pi * np.prod(p[None] ** X[:, None] * (1 - p[None]) ** (1 - X[:, None]), axis=2)

    message = message_of(assert_e_step, unnormalised)
    assert "counterexample (the smallest Hypothesis found):" in message
    assert "N = 1 image, K = 1 component, D = 1 pixel" in message
    assert "rows do not sum to 1" in message and "verified formula (em-responsibility): pi[k]*Product(" in message
    logs = message_of(assert_e_step, lambda X, p, pi: np.log(e_step(X, p, pi)))
    assert "these are log responsibilities" in logs
    transposed = message_of(assert_e_step, lambda X, p, pi: e_step(X, p, pi).T)
    assert "the transpose?" in transposed


def test_e_step_arguments_are_matched_by_name_with_a_mapping():
    assert_e_step(lambda data, P, weights: e_step(data, P, weights), names={"data": "X", "P": "p", "weights": "pi"})
    with pytest.raises(ParameterError, match=r"no parameter for pi"):
        assert_e_step(lambda X, p: e_step(X, p, None))


def test_an_e_step_that_raises_fails_with_the_problem():
    def crashes(X, p, pi):
        if X.shape[0] > 2:
            raise IndexError("row 3")
        return e_step(X, p, pi)

    message = message_of(assert_e_step, crashes)
    assert "N = 3 images" in message and "crashes raised IndexError: row 3" in message


# ----------------------------------------------------------------- M-step


def test_an_m_step_passes_in_either_order_or_as_a_dict():
    assert_m_step(m_step)
    assert_m_step(lambda X, resp: m_step(X, resp)[::-1])
    assert_m_step(lambda X, resp: dict(zip(("pi", "p"), m_step(X, resp))))


def test_a_wrong_m_step_names_the_update_that_is_wrong():
    pi_wrong = message_of(assert_m_step, lambda X, resp: (resp.sum(axis=0), m_step(X, resp)[1]))
    assert pi_wrong.startswith("em-pi-update (question 2c-ii)") and "divide by N" in pi_wrong
    p_wrong = message_of(assert_m_step, lambda X, resp: (m_step(X, resp)[0], resp.T @ X))
    assert p_wrong.startswith("em-p-update (question 2c-i)") and "divide row k by N_k" in p_wrong
    assert "verified formula (em-p-update): Sum(eta[i, k]*x[i, d], (i, 1, N))/Sum(eta[i, k], (i, 1, N))" in p_wrong
    transposed = message_of(assert_m_step, lambda X, resp: (m_step(X, resp)[0], m_step(X, resp)[1].T))
    assert "the transpose?" in transposed
    shape = message_of(assert_m_step, lambda X, resp: m_step(X, resp)[0])
    assert "expected a pair (pi, p)" in shape


# ----------------------------------------------------------------- problems


def test_random_problems_are_valid_at_mnist_size():
    prob = random_problem(0, N=7, K=4, D=784)
    assert prob.X.shape == (7, 784) and set(np.unique(prob.X)) <= {0.0, 1.0}
    assert np.all((prob.p > 0) & (prob.p < 1)) and prob.p.shape == (4, 784)
    assert np.isclose(prob.pi.sum(), 1.0) and np.allclose(prob.resp.sum(axis=1), 1.0)
    with pytest.raises(ParameterError, match="K must be an integer >= 1"):
        random_problem(0, K=0)
    with pytest.raises(ParameterError, match="p_range"):
        random_problem(0, p_range=(0.5, 0.2))


@given(em_problems())
def test_strategy_problems_are_valid(problem: EMProblem):
    assert problem.X.shape == (problem.N, problem.D) and problem.p.shape == (problem.K, problem.D)
    assert np.all((problem.p > 0) & (problem.p < 1)) and np.isclose(problem.pi.sum(), 1.0)
    assert np.allclose(problem.resp.sum(axis=1), 1.0) and np.all(problem.resp > 0)
