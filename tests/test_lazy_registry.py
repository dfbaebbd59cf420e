"""Only what a command needs is imported (issue 18): the registry's index answers `list` without importing a
topic module, an id imports only the module declaring it, a cached derivation is read without it, and the
index is rebuilt whenever it is stale, corrupt or absent; users' modules still see every packaged id taken.
Each test runs a fresh interpreter (what is imported is the point) with a cache directory of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from genverify import diskcache, registry


def py(code: str, cache, cwd=None, env: dict | None = None) -> str:
    """Run ``code`` in a fresh interpreter with the cache in ``cache``; its stdout (it must exit 0)."""
    full = {k: v for k, v in os.environ.items() if k not in (registry.ENV_VAR, diskcache.ENV_OFF)}
    full.update({diskcache.ENV_DIR: str(cache), **(env or {})})
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=300, cwd=cwd, env=full)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


LOADED = "import sys; print(sorted(m for m in sys.modules if m.startswith('genverify.results.')))\n"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache directory holding the registry's index and lognormal-pdf's derivation."""
    folder = tmp_path_factory.mktemp("gv-cache")
    py("from genverify import registry; registry.ids(); registry.get('lognormal-pdf').derivation()", folder)
    return folder


def test_the_catalog_imports_no_topic_module_and_matches_the_results(cache):
    out = py("import sys\n"
             "from genverify import registry\n"
             "print([(i.id, i.question, i.statement, i.symbols) for i in registry.catalog()])\n"
             "print('sympy' in sys.modules, 'numpy' in sys.modules)\n" + LOADED, cache)
    catalog, heavy, loaded = out.strip().splitlines()
    assert loaded == "[]" and heavy == "False False"
    expected = [(r.id, r.question, r.statement, registry.symbols_text(r)) for r in registry.all_results()]
    assert eval(catalog) == expected  # noqa: S307 - our own repr of strings
    assert registry.ids() == [r.id for r in registry.all_results()]


def test_an_id_imports_only_the_module_that_declares_it(cache):
    out = py("from genverify import registry; registry.get('lognormal-pdf')\n" + LOADED, cache)
    assert out.strip() == "['genverify.results.densities']"


def test_a_cached_derivation_is_read_without_its_module(cache):
    out = py("from genverify import registry\n"
             "d = registry.derivation('lognormal-pdf'); print(d.result)\n" + LOADED, cache)
    formula, loaded = out.strip().splitlines()
    assert loaded == "[]" and "sigma" in formula and "log(z)" in formula


@pytest.mark.parametrize("damage", ["stale", "corrupt", "missing"])
def test_a_stale_corrupt_or_missing_index_is_rebuilt(tmp_path, cache, damage):
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(cache, folder)
    (index,) = folder.glob("install-*/registry-index.json")
    data = json.loads(index.read_text())
    if damage == "stale":  # as if a topic module had changed since it was built
        index.write_text(json.dumps({**data, "stamp": ["another digest", *data["stamp"][1:]],
                                     "modules": [{**m, "info": []} for m in data["modules"]]}))
    elif damage == "corrupt":
        index.write_text("{ not json")
    else:
        index.unlink()
    out = py("from genverify import registry; print(registry.ids())", folder)
    assert eval(out) == registry.ids()  # noqa: S307
    assert json.loads(index.read_text())["stamp"] == data["stamp"]


def test_without_a_cache_the_index_is_built_in_memory(tmp_path):
    out = py("from genverify import registry; print(len(registry.ids()))", tmp_path / "cache",
             env={diskcache.ENV_OFF: "off"})
    assert int(out) == len(registry.ids()) and not (tmp_path / "cache").exists()


USER = '''
import sympy as sp
from genverify.core import Derivation, Param, Result
z = sp.Symbol("z", positive=True)
RESULTS = [Result(id="{rid}", statement="a user's result", question="9", params=(
    Param("z", z, sp.Interval.open(0, sp.oo)),), derive=lambda: Derivation(z, ()))]
'''


def test_a_users_id_taken_by_a_module_not_imported_yet_is_refused(tmp_path, cache):
    (tmp_path / "usermod_lazy.py").write_text(USER.replace("{rid}", "lognormal-pdf"))
    out = py("from genverify import registry\n"
             "try:\n"
             "    registry.load_module('usermod_lazy')\n"
             "except registry.ResultsModuleError as exc:\n"
             "    print(exc)\n", cache, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert "result id 'lognormal-pdf' is registered twice (first by genverify.results.densities)" in out


def test_users_results_come_after_the_packaged_ones_whenever_they_load(tmp_path, cache):
    (tmp_path / "usermod_late.py").write_text(USER.replace("{rid}", "my-early-result"))
    out = py("from genverify import registry\n"
             "registry.load_module('usermod_late')\n"
             "print(registry.ids()[-1], [r.id for r in registry.all_results()][-1], len(registry.ids()))\n",
             cache, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert out.split() == ["my-early-result", "my-early-result", str(len(registry.ids()) + 1)]


def test_the_command_line_imports_nothing_heavy_to_build_its_parsers(cache):
    out = py("from genverify.cli import build_parser; build_parser()\n"
             "import sys; print([m for m in ('numpy', 'sympy', 'scipy', 'torch', 'matplotlib', 'rich') "
             "if m in sys.modules])\n", cache)
    assert out.strip() == "[]"
