"""My homework against genverify's verified results (run: python -m pytest)."""

import pytest
from student_hw import solutions as hw

from genverify.testing import assert_e_step, assert_flow, assert_implements, assert_m_step, random_problem


def test_lognormal_density():
    assert_implements("lognormal-pdf", hw.lognormal_pdf)


def test_e_step_matches_the_responsibilities_even_at_mnist_size():
    assert_e_step(hw.e_step)


def test_m_step_matches_the_updates():
    assert_m_step(hw.m_step)


@pytest.mark.parametrize("genverify_result", ["leaky-relu-inverse"], indirect=True)
def test_leaky_relu_inverse(genverify_result):
    assert_implements(genverify_result.id, hw.leaky_relu_inverse)  # alpha: given, or 1/10 by default


def test_leaky_relu_flow_is_invertible_with_the_right_log_det():
    assert_flow(hw.LeakyReLUFlow(alpha=0.1))


def test_responsibilities_sum_to_one_on_a_random_mnist_sized_problem(rng):
    problem = random_problem(rng, N=5, K=3, D=784)
    assert hw.e_step(problem.X, problem.p, problem.pi).sum(axis=1) == pytest.approx(1.0)
