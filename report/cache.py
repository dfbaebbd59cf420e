"""Cache keys for the report: a part is recomputed only when its code or configuration changed.

A key is the SHA-256 of

* the source of every ``genverify`` module the part can execute: the modules of
  its callables (or an experiment's own module), followed
  through every ``import`` statement of the ``genverify`` namespace, including
  imports inside functions (:func:`module_closure`, found with :mod:`ast`);
* the part's own data (a result's statement, symbols, domains, constraint);
* the configuration (preset, data directory listing, seed, device) and the
  versions of the numerical libraries.

An experiment whose code reaches ``genverify.registry`` reads the registry at
run time (the errata audit checks claims against whatever results exist), so
its key also covers every registered result.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Iterable

__all__ = ["module_closure", "source_digest", "result_key", "experiment_key", "registry_digest",
           "library_versions", "REGISTRY_READERS", "digest"]

#: An experiment whose code reaches one of these depends on the whole registry.
REGISTRY_READERS = frozenset({"genverify.registry"})

_NAMESPACE = "genverify"


@functools.lru_cache(maxsize=None)
def _spec_files(name: str) -> tuple[Path, ...]:
    """Source files of module ``name`` (a package's ``__init__`` only)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return ()
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return ()
    return (Path(spec.origin),)


def _walk(tree: ast.AST, toplevel: bool):
    """Every node, or (``toplevel``) only those that run at import time: not inside function bodies."""
    if not toplevel:
        yield from ast.walk(tree)
        return
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node)
                    if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def _parents(name: str) -> set[str]:
    return {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}


@functools.lru_cache(maxsize=None)
def _imports_of(name: str, toplevel: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(``genverify`` modules imported in module ``name``, their parent packages).

    All imports, including those inside functions (lazy imports in an experiment's ``run``),
    or with ``toplevel`` only those that run when the module is imported.
    """
    files = _spec_files(name)
    if not files:
        return (), ()
    try:
        tree = ast.parse(files[0].read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return (), ()
    is_pkg = files[0].name == "__init__.py"
    found: set[str] = set()
    for node in _walk(tree, toplevel):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == _NAMESPACE:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_pkg else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                mod = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != _NAMESPACE:
                continue
            # `from genverify import registry` imports a submodule (the package itself only runs its
            # import-time code: a parent). Only a package has submodules, and probing `mod.name` of a
            # plain module would import and run `mod` (torch, for genverify.models.*).
            mod_is_pkg = any(f.name == "__init__.py" for f in _spec_files(mod))
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if mod_is_pkg and _spec_files(sub) else mod)
    parents = set().union(*(_parents(m) for m in found)) if found else set()
    return tuple(sorted(found)), tuple(sorted(parents - found))


def module_closure(names: Iterable[str]) -> list[str]:
    """Every ``genverify`` module reachable from ``names`` through import statements.

    Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, but only their
    import-time code: a parent package's lazy imports (inside functions) are not followed.
    """
    start = [n for n in names if n and n.split(".")[0] == _NAMESPACE]
    todo = [(n, True) for n in start] + [(p, False) for n in start for p in _parents(n)]
    full: set[str] = set()
    partial: set[str] = set()
    while todo:
        name, whole = todo.pop()
        if name in full or (not whole and name in partial):
            continue
        (full if whole else partial).add(name)
        explicit, parents = _imports_of(name, toplevel=not whole)
        todo.extend((m, True) for m in explicit)
        todo.extend((p, False) for p in parents)
    return sorted(n for n in full | partial if _spec_files(n))


def source_digest(modules: Iterable[str]) -> str:
    """SHA-256 over the names and sources of ``modules``."""
    h = hashlib.sha256()
    for name in sorted(set(modules)):
        for path in _spec_files(name):
            h.update(name.encode() + b"\0")
            try:
                h.update(path.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
            h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def library_versions() -> tuple[tuple[str, str], ...]:
    """Versions of the libraries whose numbers end up in the report."""
    from importlib import metadata

    out = []
    for dist in ("genverify", "numpy", "scipy", "sympy", "torch", "matplotlib", "scikit-learn"):
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            out.append((dist, "absent"))
    return tuple(out)


def digest(*parts: Any) -> str:
    """SHA-256 of JSON-serialisable ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _callables_of(result) -> list[Any]:
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
    """Key of a result's derivation and check records: its code, its data, the libraries."""
    modules = {getattr(f, "__module__", None) for f in _callables_of(result)}
    modules |= set(extra)
    modules.discard(None)
    data = {
        "id": result.id, "statement": result.statement, "question": result.question,
        "params": [repr(p) for p in result.params], "kind": result.kind, "variable": result.variable,
        "constraint": str(result.constraint), "notes": result.notes,
        "checks": [(c.name, c.kind) for c in result.checks],
    }
    return digest("result", data, source_digest(module_closure(modules)), library_versions())


def registry_digest(results) -> str:
    """One digest of every registered result (for experiments that read the registry)."""
    return digest("registry", [(r.id, result_key(r)) for r in results])


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


def reads_registry(exp) -> bool:
    """Whether ``exp``'s code can reach the registry (the errata audit checks claims against it)."""
    return bool(REGISTRY_READERS & set(module_closure([exp.module])))


def experiment_key(exp, config: dict, registry: str | None = None) -> str:
    """Key of an experiment's output: its code (its module's import closure), configuration, libraries."""
    own = exp.module
    modules = set(module_closure([own]))
    modules.add(own)  # an experiment defined outside the namespace (a plug-in, a test) still keys on its source
    run_name = exp.run if isinstance(exp.run, str) else getattr(exp.run, "__qualname__", "")
    return digest("experiment", exp.id, exp.question, exp.title, run_name,
                  source_digest(modules), config, library_versions(), registry)
