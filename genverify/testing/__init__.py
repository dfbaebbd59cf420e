"""Verify your own code against genverify's verified results, in your own test suite.

* :func:`assert_implements` (``"lognormal-pdf"``, your function): compares your
  function with the verified result at points drawn from its symbols' domains;
  :func:`strategies` and :func:`points` are the Hypothesis strategies it uses.
* EM (questions 2-3): :func:`assert_e_step` and :func:`assert_m_step` check
  ``e_step(X, p, pi)`` and ``m_step(X, resp)`` on random small problems and at
  D = 784, numerical stability included; :func:`random_problem` and
  :func:`em_problems` build such problems.
* Flows and VAEs: :func:`assert_flow` (invertibility and log|det J| against
  autograd) and :func:`assert_elbo_bound` (ELBO <= importance-weighted bound,
  tightening with k).
* A pytest plugin (:mod:`genverify.testing.plugin`, loaded by pytest through the
  ``pytest11`` entry point): fixtures ``rng`` and ``genverify_result``, option
  ``--genverify-seed``.

Every check raises ``AssertionError`` (a failed test) with a message that says
what is wrong; bad arguments raise :class:`~genverify.core.ParameterError`.

This package's ``__init__`` imports nothing heavy: pytest loads the plugin in every
project where genverify is installed, and a name here is imported from its
module on first use (NumPy, SymPy, Hypothesis; torch only for flows and VAEs).
"""

from __future__ import annotations

from genverify.lazy import lazy_exports

#: name -> module (relative to this package) that defines it.
_EXPORTS = {
    "assert_implements": "implements",
    "strategies": "implements",
    "points": "implements",
    "assert_e_step": "em",
    "assert_m_step": "em",
    "EMProblem": "em",
    "random_problem": "em",
    "em_problems": "em",
    "mnist_sized_problems": "em",
    "assert_flow": "flows",
    "assert_elbo_bound": "flows",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__():
    return sorted({*globals(), *_EXPORTS})
