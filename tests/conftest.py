"""Shared test set-up: Hypothesis profiles, threads per xdist worker.

``ci`` (selected when the CI environment variable is set, or with
``--hypothesis-profile=ci``) is derandomized so CI runs are reproducible;
``dev`` explores with fresh randomness.
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker gets its share of the cores for BLAS and torch, set before either is
    # imported: two workers with a thread per core each would make 4 threads wait on 2 cores.
    from genverify.parallel import limit_threads, threads_per_worker

    limit_threads(threads_per_worker(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


import pytest  # noqa: E402


@pytest.fixture
def swap_result(monkeypatch):
    """Put a stand-in result into the registry for one test.

    A result caches its derivation on itself, so a stand-in registered under a
    real id is derived from its own ``derive`` and the real one is untouched.
    """
    from genverify import registry

    registry.all_results()

    def swap(result):
        monkeypatch.setitem(registry._RESULTS, result.id, result)
        return result

    yield swap
