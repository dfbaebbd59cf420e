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
