"""The buggy answers: genverify must catch each one (xfail; run with --runxfail to read the messages)."""

import pytest
from student_hw import buggy

from genverify.testing import assert_e_step, assert_flow, assert_implements

pytestmark = pytest.mark.xfail(strict=True, raises=AssertionError, reason="wrong on purpose: genverify catches it")


def test_writeup_lognormal_density():
    assert_implements("lognormal-pdf", buggy.lognormal_pdf)


def test_product_form_e_step_at_mnist_size():
    assert_e_step(buggy.e_step)


def test_leaky_relu_flow_with_the_inverse_log_det():
    assert_flow(buggy.LeakyReLUFlow(alpha=0.1))
