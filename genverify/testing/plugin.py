"""genverify's pytest plugin: fixtures ``rng`` and ``genverify_result``, option ``--genverify-seed``.

pytest loads it through the ``pytest11`` entry point in every project where
genverify is installed, so it imports nothing heavy: NumPy and the registry
are imported by a fixture when a test asks for it.

* ``rng``: a ``numpy.random.Generator`` seeded from the session seed and the
  test's id (the same numbers on every run; another test gets others).
* ``genverify_result``: a registered :class:`~genverify.core.Result`. Give its
  id by indirect parametrisation,
  ``@pytest.mark.parametrize("genverify_result", ["lognormal-pdf"], indirect=True)``,
  or the marker ``@pytest.mark.genverify_result("lognormal-pdf")``; without
  either the fixture is a factory, ``genverify_result("lognormal-pdf")``.
* ``--genverify-seed N``: the session seed, for ``rng`` and as the default
  ``seed`` of :mod:`genverify.testing`'s checks (otherwise ``$GENVERIFY_SEED``
  or 0).
"""

from __future__ import annotations

import zlib

import pytest

from genverify.testing import _session


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("genverify")
    group.addoption("--genverify-seed", type=int, default=None, metavar="N",
                    help="seed of the rng fixture and of genverify.testing's checks (default: $GENVERIFY_SEED or 0)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "genverify_result(id): the registered result the genverify_result fixture "
                                       "returns")
    seed = config.getoption("genverify_seed", None)
    if seed is not None:
        _session.SEED = int(seed)


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("genverify_seed", None)
    return f"genverify seed: {seed}" if seed is not None else None


def _session_seed() -> int:
    from genverify.testing._calls import default_seed  # first use: a fixture was requested

    return default_seed()


@pytest.fixture
def rng(request: pytest.FixtureRequest):
    """A NumPy Generator seeded by the session seed and this test's id."""
    import numpy as np  # here: a project that never asks for rng never imports NumPy through us

    return np.random.default_rng([_session_seed(), zlib.crc32(request.node.nodeid.encode())])


@pytest.fixture
def genverify_result(request: pytest.FixtureRequest):
    """The result named by indirect parametrisation or the genverify_result marker; else a factory by id."""
    from genverify import registry  # here: loading the registry imports SymPy and SciPy

    if hasattr(request, "param"):
        return registry.get(request.param)
    marker = request.node.get_closest_marker("genverify_result")
    if marker is not None:
        if len(marker.args) != 1:
            raise pytest.UsageError("@pytest.mark.genverify_result takes one result id")
        return registry.get(marker.args[0])
    return registry.get
