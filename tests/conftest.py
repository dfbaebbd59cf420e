"""Shared test set-up: Hypothesis profiles.

``ci`` (selected when the CI environment variable is set, or with
``--hypothesis-profile=ci``) is derandomized so CI runs are reproducible;
``dev`` explores with fresh randomness.
"""

import os

from hypothesis import HealthCheck, settings

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
