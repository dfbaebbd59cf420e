"""The report's cache: a part is recomputed only when its code or its settings changed.

A part's key is the SHA-256 of

* the source of every ``genverify`` module the part can execute: the module of its
  code (a result's callables and the report's code that typesets them, an experiment's
  ``run``, the errata audit) followed through every ``import`` statement of the
  ``genverify`` namespace (:func:`module_closure`, read with :mod:`ast`). Imports inside
  functions count too: a few modules import genverify modules lazily on purpose (a
  result's torch check, the registry's discovery), and what a function may import is
  code it may run. No part lists its dependencies by hand;
* the part's own data (a result's statement, symbols, domains, constraint);
* the settings (preset, data directory listing, seed, device) and the versions of the
  numerical libraries (:func:`genverify.report.environment.library_versions`).

A part whose code reaches ``genverify.registry`` reads the registry at run time (the
errata audit checks claims against whatever results exist), so its key also covers
every registered result (:func:`registry_digest`).

Module files are found without importing them (only the top package ``genverify``
itself, whose ``__init__`` is light), so computing a key never imports torch; the
import graph and the digests are :mod:`genverify.diskcache`'s.

The files: each part's entry is a JSON file (or a folder, for an experiment) named by
its key under ``<cache>/<kind>/<part id>/``; older entries are pruned (:func:`prune`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from genverify import diskcache
from genverify.io import atomic_write_text
from genverify.report.environment import library_versions

__all__ = ["module_closure", "source_digest", "code_digest", "result_key", "experiment_key", "registry_digest",
           "reads_registry", "data_dir_listing", "digest", "REGISTRY_READERS", "Part", "read_json", "write_json",
           "safe_name", "prune"]

#: A part whose code reaches one of these depends on the whole registry.
REGISTRY_READERS = frozenset({"genverify.registry"})


# ---------------------------------------------------------------- the static import graph
# One home: genverify.diskcache (the derivation cache and the registry's index key on it too),
# which also remembers closures on disk, so a warm build parses no module.

module_closure = diskcache.module_closure
source_digest = diskcache.source_digest
code_digest = diskcache.code_digest


# ---------------------------------------------------------------- keys


digest = diskcache.digest


def _callables_of(result) -> list[Callable]:
    items = [result.derive, result.numeric, result.torch, result.hand, result.numeric_from_symbols]
    items += [chk.run for chk in result.checks]
    out = []
    for f in items:
        if f is None:
            continue
        out.append(f)
        # Checks made by factories close over other functions (the torch counterpart, an adapter).
        for cell in getattr(f, "__closure__", None) or ():
            try:
                v = cell.cell_contents
            except ValueError:
                continue
            if callable(v):
                out.append(v)
    return out


def result_key(result, extra: Iterable[str] = ()) -> str:
    """Key of a result's part: its code (and the modules ``extra``, the code that typesets it), its data,
    the libraries."""
    modules = {getattr(f, "__module__", None) for f in _callables_of(result)} | set(extra)
    modules.discard(None)
    data = {
        "id": result.id, "statement": result.statement, "question": result.question,
        "params": [repr(p) for p in result.params], "kind": result.kind, "variable": result.variable,
        "constraint": str(result.constraint), "notes": result.notes,
        "checks": [(c.name, c.kind) for c in result.checks],
    }
    return digest("result", data, code_digest(modules), library_versions())


def registry_digest(results) -> str:
    """One digest of every registered result (for parts that read the registry)."""
    return digest("registry", [(r.id, result_key(r)) for r in results])


def reads_registry(exp) -> bool:
    """Whether experiment ``exp``'s code can reach the registry (then its key covers every result)."""
    return bool(REGISTRY_READERS & set(module_closure([exp.module])))


def experiment_key(exp, config: dict, registry: str | None = None) -> str:
    """Key of an experiment's output: its code (its module's import closure), configuration, libraries."""
    # An experiment defined outside the namespace (a plug-in, a test) still keys on its own source.
    run_name = exp.run if isinstance(exp.run, str) else getattr(exp.run, "__qualname__", "")
    return digest("experiment", exp.id, exp.question, exp.title, run_name,
                  code_digest([exp.module]), config, library_versions(), registry)


def data_dir_listing(data_dir: str | os.PathLike | None) -> list:
    """Names, sizes and modification times of the files in ``data_dir`` (not their bytes: cheap)."""
    if data_dir is None:
        return []
    root = Path(data_dir)
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            out.append([str(path.relative_to(root)), st.st_size, int(st.st_mtime)])
    return out


# ---------------------------------------------------------------- entries


@dataclass
class Part:
    """One unit of work of a build, for the timing appendix."""

    name: str
    seconds: float  # spent in this build
    computed_seconds: float  # what computing it took (now, or when it was cached)
    cached: bool


def _jsonable(obj: Any) -> Any:
    """Plain JSON types from NumPy scalars/arrays, paths, dataclasses."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=1))


# One home for these too: the derivation cache and the registry's index use the same.
read_json = diskcache.read_json
safe_name = diskcache.safe_name
prune = diskcache.prune
