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

    Derivations are cached by id (``registry._cached_derivation``), so the cache is
    cleared on the way in and out: otherwise a stand-in registered under a real id
    would be checked against the real derivation, and the real one against the fake.
    """
    from genverify import registry

    registry.all_results()
    registry._cached_derivation.cache_clear()

    def swap(result):
        monkeypatch.setitem(registry._REGISTRY, result.id, result)
        registry._cached_derivation.cache_clear()
        return result

    yield swap
    registry._cached_derivation.cache_clear()
