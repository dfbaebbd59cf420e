"""What code a callable can run, found without importing it, and genverify's on-disk cache.

This module sits below :mod:`genverify.core` and imports nothing of genverify but
:mod:`genverify.io` (the architecture's bottom layers), so the core types can use it.

**Source digests.** The code a module can run is every ``genverify`` module it reaches
through ``import`` statements (:func:`module_closure`, read with :mod:`ast`; imports
inside functions count too: what a function may import is code it may run), and
:func:`code_digest` is the SHA-256 of their sources. Module files are found without
importing them (only the top package ``genverify``, whose ``__init__`` is light). The
report's cache keys (:mod:`genverify.report.cache`), the derivation cache and the
registry's index key on these digests, so no part lists its dependencies by hand.
Parsing is the slow step (about 20 ms a module), so each closure is remembered on disk
with the digest of the files it found: while those files are unchanged, so is the
closure (it is computed from nothing else), and re-hashing them is all a lookup costs.

**The cache directory**, :func:`root`: ``$GENVERIFY_CACHE_DIR`` (:data:`ENV_DIR`), else
``$XDG_CACHE_HOME/genverify``, else ``~/.cache/genverify``; ``GENVERIFY_CACHE=off``
(:data:`ENV_OFF`) turns it off (everything is then computed in memory, as before). It holds

* ``derivations/<result id>/<key>.pickle``: a :class:`~genverify.core.Derivation` made
  of SymPy's own classes (they pickle; a derivation with objects of other classes is not
  stored, see :func:`_sympy_only`), keyed by the result id, the derive function's module and
  name, the :func:`code_digest` of that module and the versions of Python, SymPy and
  mpmath (:func:`derivation_key`). Shared by ``derive``, ``check``, ``verify``, the
  report and the report's worker processes: a derivation is computed once (a process
  about to compute one holds a lock on it, :func:`derivation_lock`: another that needs
  it meanwhile waits, then reads it);
* ``install-<hash>/``: what belongs to one installation of genverify (its source
  folder): the remembered closures and the registry's index (:mod:`genverify.registry`).

Entries are written atomically (:func:`genverify.io.atomic_write_bytes`); an entry
that cannot be read, does not unpickle, or carries another key than the one asked
for is a miss: it is recomputed, never trusted. Nothing is written from a process
whose source files changed after it started (it may be running the old code), so an
entry always holds what its key's sources compute.

(Over 500 lines on purpose: the keys (source digests and closures), the locking between
processes and the atomic entries are one protocol; split, each part would have to know
the others' file layout.)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import pickle
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from genverify.io import atomic_write_bytes

__all__ = ["ENV_DIR", "ENV_OFF", "root", "install_dir", "module_closure", "source_digest", "code_digest",
           "closure_sources", "digest", "versions", "read_pickle", "write_pickle", "read_json", "write_json",
           "changed_since_start", "derivation_ref", "derivation_key", "load_derivation", "store_derivation",
           "derivation_lock",
           "safe_name", "prune"]

#: The environment variable that relocates the cache directory.
ENV_DIR = "GENVERIFY_CACHE_DIR"
#: The environment variable that turns the on-disk cache off (value ``off``, ``0``, ``no`` or ``false``).
ENV_OFF = "GENVERIFY_CACHE"

_NAMESPACE = "genverify"
#: When this process started (about: when genverify was first imported); see :func:`changed_since_start`.
_STARTED = time.time()
#: Bumped when the format of an entry changes (or what may be stored: older entries are then ignored).
_FORMAT = 2


# ---------------------------------------------------------------- the cache directory


def root() -> Path | None:
    """The cache directory, or None when the cache is turned off (read from the environment each time)."""
    if os.environ.get(ENV_OFF, "").strip().lower() in ("off", "0", "no", "false"):
        return None
    where = os.environ.get(ENV_DIR, "").strip()
    if where:
        return Path(where).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "genverify"


def install_dir() -> Path | None:
    """The part of the cache that belongs to this installation of genverify (its source folder)."""
    base = root()
    if base is None:
        return None
    here = str(Path(__file__).resolve().parent)
    return base / f"install-{hashlib.sha256(here.encode()).hexdigest()[:12]}"


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits and dashes."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-") or "x"


def changed_since_start(paths: Iterable[str | os.PathLike]) -> bool:
    """Whether any of ``paths`` was modified after this process started (it may run their old code)."""
    for p in paths:
        try:
            if os.stat(p).st_mtime > _STARTED:
                return True
        except OSError:
            return True
    return False


# ---------------------------------------------------------------- the static import graph


@functools.lru_cache(maxsize=None)
def _source(name: str) -> Path | None:
    """The source file of module ``name`` (a package's ``__init__.py``), or None if there is none.

    A submodule is looked up in its parent package's folder; a child of the top package that
    is not there (setuptools ``package-dir`` maps ``genverify.report`` to ``report/``) and the
    top package itself are found by :func:`importlib.util.find_spec`, which imports no more
    than ``genverify/__init__``.
    """
    parent, _, last = name.rpartition(".")
    if parent:
        pkg = _source(parent)
        if pkg is None or pkg.name != "__init__.py":
            return None  # the parent is a plain module: `last` is a name defined in it
        for cand in (pkg.parent / last / "__init__.py", pkg.parent / f"{last}.py"):
            if cand.is_file():
                return cand
        if "." in parent:
            return None
    module = sys.modules.get(name)
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if not origin or not origin.endswith(".py"):
        return None
    return Path(origin)


def _nodes(tree, toplevel: bool):
    """Every node, or (``toplevel``) only those that run at import time: not inside function bodies."""
    import ast

    if not toplevel:
        yield from ast.walk(tree)
        return
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node)
                    if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


@functools.lru_cache(maxsize=None)
def _imports_of(name: str, toplevel: bool) -> frozenset[str]:
    """The ``genverify`` modules that module ``name`` imports (``toplevel``: only when it is imported)."""
    # Here, not at the top: parsing happens only when a closure is not remembered, and the
    # command line imports this module for every command.
    import ast

    path = _source(name)
    if path is None:
        return frozenset()
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(tree, toplevel):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from genverify import registry` imports a submodule; `from genverify.core import Param` a name.
            found.update(f"{mod}.{a.name}" if _source(f"{mod}.{a.name}") else mod for a in node.names)
    return frozenset(m for m in found if m.split(".")[0] == _NAMESPACE)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _closure(names: Iterable[str]) -> list[str]:
    todo = [(n, True) for n in names if n and n.split(".")[0] == _NAMESPACE]
    whole: set[str] = set()
    partial: set[str] = set()
    while todo:
        name, is_whole = todo.pop()
        if name in whole or (not is_whole and name in partial):
            continue
        (whole if is_whole else partial).add(name)
        todo.extend((m, True) for m in _imports_of(name, toplevel=not is_whole))
        todo.extend((p, False) for p in _parents(name))
    return sorted(n for n in whole | partial if _source(n))


def module_closure(names: Iterable[str]) -> list[str]:
    """Every ``genverify`` module reachable from ``names`` through import statements.

    Importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, but only their
    import-time code: a parent package's lazy imports (inside functions) are not followed.
    """
    names = [n for n in names if n]
    return closure_sources(names)[0] if _memo_usable(names) else _closure(names)


def source_digest(modules: Iterable[str]) -> str:
    """SHA-256 over the names and sources of ``modules``."""
    return _files_digest([(name, _source(name)) for name in sorted(set(modules))])


def _files_digest(files: Iterable[tuple[str, Path | str | None]]) -> str:
    h = hashlib.sha256()
    for name, path in files:
        if path is None:
            continue
        h.update(name.encode() + b"\0")
        try:
            with open(path, "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"<unreadable>")
        h.update(b"\0")
    return h.hexdigest()


def code_digest(modules: Iterable[str]) -> str:
    """SHA-256 of the source of ``modules`` and of every genverify module they can import."""
    modules = [m for m in modules if m]
    return closure_sources(modules)[1]


# Remembered closures: {roots: {"files": [[module, path], ...], "digest": ...}} per installation.
_MEMO: dict[str, Any] | None = None
_MEMO_DIRTY = False


def _memo_usable(names: list[str]) -> bool:
    return install_dir() is not None and all(n.split(".")[0] == _NAMESPACE for n in names)


def _memo() -> dict[str, Any]:
    global _MEMO
    if _MEMO is None:
        folder = install_dir()
        data = read_json(folder / "closures.json") if folder is not None else None
        _MEMO = data if isinstance(data, dict) and data.get("format") == _FORMAT else {"format": _FORMAT}
    return _MEMO


def closure_sources(modules: Iterable[str]) -> tuple[list[str], str, list[str]]:
    """``(module_closure, code_digest, source files)`` of ``modules``, remembered on disk (see the module docstring).

    ``modules`` outside the namespace count with their own source (an experiment of a
    plug-in keys on its file), but nothing they import.
    """
    global _MEMO_DIRTY
    modules = sorted({m for m in modules if m})
    memo_key = "\n".join(modules)
    entries = _memo().setdefault("closures", {}) if install_dir() is not None else {}
    entry = entries.get(memo_key)
    if isinstance(entry, dict) and isinstance(entry.get("files"), list):
        try:
            files = [(str(n), p) for n, p in entry["files"]]
            if _files_digest(files) == entry.get("digest"):
                closure = [n for n in entry.get("closure", []) if isinstance(n, str)]
                return closure, entry["digest"], [p for _, p in files if p]
        except (TypeError, ValueError):
            pass
    closure = _closure(modules)
    files = [(name, _source(name)) for name in sorted({*closure, *modules})]
    files = [(n, str(p)) for n, p in files if p is not None]
    value = _files_digest(files)
    if install_dir() is not None and not changed_since_start(p for _, p in files):
        entries[memo_key] = {"closure": closure, "files": files, "digest": value}
        _MEMO_DIRTY = True
        _save_memo()
    return closure, value, [p for _, p in files]


def _save_memo() -> None:
    global _MEMO_DIRTY
    folder = install_dir()
    if folder is None or not _MEMO_DIRTY or _MEMO is None:
        return
    closures = _MEMO.get("closures", {})
    if len(closures) > 500:  # edits (and mutation testing) add entries; start over rather than grow
        _MEMO["closures"] = dict(list(closures.items())[-100:])
    write_json(folder / "closures.json", _MEMO)
    _MEMO_DIRTY = False


# ---------------------------------------------------------------- keys and entries


def digest(*parts: Any) -> str:
    """SHA-256 of JSON-serialisable ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def versions(*dists: str) -> tuple[tuple[str, str], ...]:
    """(distribution, version) of each of ``dists`` ("absent" when not installed), and Python's."""
    from importlib import metadata  # here, not at the top: 50 ms, and only keys need it

    out = [("python", platform.python_version())]
    for dist in dists:
        try:
            out.append((dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            out.append((dist, "absent"))
    return tuple(out)


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable (a miss)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: Any) -> bool:
    """Write ``data`` as JSON, atomically; False (and nothing written) when it cannot be written."""
    try:
        atomic_write_bytes(path, json.dumps(data, separators=(",", ":")).encode())
        return True
    except (OSError, TypeError, ValueError):
        return False


def read_pickle(path: Path, key: str) -> Any | None:
    """The object stored under ``key`` in ``path``; None when missing, unreadable or stored under another key."""
    try:
        with open(path, "rb") as f:
            payload = pickle.load(f)
    except Exception:  # noqa: BLE001 - a corrupt or stale entry is a miss, whatever unpickling raised
        return None
    if not (isinstance(payload, dict) and payload.get("key") == key and payload.get("format") == _FORMAT):
        return None
    return payload.get("value")


def write_pickle(path: Path, key: str, value: Any) -> bool:
    """Store ``value`` under ``key`` in ``path``, atomically; False when it does not pickle or cannot be written."""
    try:
        data = pickle.dumps({"format": _FORMAT, "key": key, "value": value}, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write_bytes(path, data)
        return True
    except Exception:  # noqa: BLE001 - an object that does not pickle is simply not cached
        return False


def prune(folder: Path, keep: str, pattern: str, n_keep: int = 2) -> None:
    """Remove older entries matching ``pattern`` in ``folder``, keeping ``keep`` and the newest."""
    try:
        entries = sorted((p for p in folder.glob(pattern) if p.name != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[max(0, n_keep - 1):]:
        try:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:
            pass


# ---------------------------------------------------------------- derivations


def derivation_ref(fn: Any) -> tuple[str, str] | None:
    """``(module, qualified name)`` of a derive function whose code a digest covers, else None.

    Only a function of the ``genverify`` namespace that its module defines by that name
    (not a lambda, a closure or a partial: what they compute depends on more than the source).
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)) or module.split(".")[0] != _NAMESPACE:
        return None
    if "<" in qualname or getattr(fn, "__closure__", None):
        return None
    owner: Any = sys.modules.get(module)
    for part in qualname.split("."):
        owner = getattr(owner, part, None)
    return (module, qualname) if owner is fn else None


def derivation_key(result_id: str, ref: tuple[str, str]) -> str:
    """The cache key of result ``result_id``'s derivation by the function ``ref`` (see the module docstring)."""
    module, qualname = ref
    return digest("derivation", _FORMAT, result_id, module, qualname, code_digest([module]),
                  versions("sympy", "mpmath"))


def _derivation_path(result_id: str, key: str) -> Path | None:
    base = root()
    return None if base is None else base / "derivations" / safe_name(result_id) / f"{key[:24]}.pickle"


def _sympy_only(value: Any) -> bool:
    """Whether ``value`` (a derivation's expression) is built of SymPy's own classes and plain containers.

    Only they are stored: an object of another class may depend on its process (a symbol
    subclass whose LaTeX comes from a table its module fills while deriving would print
    otherwise in a process that read it from the cache), and nothing here can tell. A class
    that vouches for itself is the exception: ``_process_independent = True`` says that its
    objects unpickle to what they were in any process that imports its module
    (:class:`genverify.derivations.kl_fit.Label`, whose LaTeX is fixed at import).
    """
    import sympy as sp  # a derivation is SymPy: imported with it
    from sympy.core.function import AppliedUndef

    todo = [value]
    while todo:
        v = todo.pop()
        if v is None or isinstance(v, (str, int, float, bool)):
            continue
        if isinstance(v, (list, tuple, set, frozenset)):
            todo.extend(v)
        elif isinstance(v, dict):
            todo.extend(v.keys())
            todo.extend(v.values())
        elif isinstance(v, (sp.Basic, sp.MatrixBase)):
            if not (type(v).__module__.startswith("sympy.") or _vouched(v)):
                return False
            nodes = list(v) if isinstance(v, sp.MatrixBase) and not isinstance(v, sp.Basic) else [v]
            for node in (n for e in nodes for n in sp.preorder_traversal(e)):
                module = type(node).__module__ or ""
                if not (module.startswith("sympy.") or isinstance(node, AppliedUndef) or _vouched(node)):
                    return False
        else:
            return False
    return True


def _vouched(obj: Any) -> bool:
    return type(obj).__dict__.get("_process_independent") is True


def _fingerprint(value: Any) -> str | None:
    """The SymPy structure of a derivation (its result and every step's expression), as ``srepr`` text."""
    import sympy as sp  # a derivation is SymPy: imported with it

    try:
        return "\n".join(sp.srepr(e) for e in (value.result, *(s.expr for s in value.steps)))
    except Exception:  # noqa: BLE001 - not a derivation: nothing to compare, so it is not cached
        return None


def load_derivation(result_id: str, ref: tuple[str, str] | None) -> Any | None:
    """The stored derivation of ``result_id`` by ``ref`` (unchecked type: the caller checks), or None.

    SymPy unpickles an expression by calling its constructors, which evaluate again
    (canonical ordering, assumptions, ``Eq`` deciding itself): most of the time of a
    load. The stored expressions are canonical already, so they are first rebuilt with
    evaluation off; a few constructors build something else then (an ``Integral`` gains
    a factor 1), so the result must print (``srepr``) exactly as it did when stored, else
    it is rebuilt with evaluation on, and must match then. Anything else is a miss.
    """
    if ref is None:
        return None
    import sympy as sp  # a derivation is SymPy: imported with it

    key = derivation_key(result_id, ref)
    path = _derivation_path(result_id, key)
    if path is None:
        return None
    for evaluate in (False, True):
        with sp.evaluate(evaluate):
            stored = read_pickle(path, key)
        if not (isinstance(stored, dict) and "derivation" in stored and stored.get("fingerprint")):
            return None
        if _fingerprint(stored["derivation"]) == stored["fingerprint"]:
            return stored["derivation"]
    return None


@contextlib.contextmanager
def derivation_lock(result_id: str, ref: tuple[str, str] | None):
    """Hold the lock of ``result_id``'s derivation by ``ref`` (no-op without a cache or file locks).

    A process computes a derivation inside it, after looking once more whether another has
    stored it meanwhile; the lock is the operating system's (``flock``), so a process that dies
    releases it.
    """
    try:
        import fcntl  # here, not at the top: POSIX only, and only derivations computed now need it
    except ImportError:
        fcntl = None
    path = _derivation_path(result_id, derivation_key(result_id, ref)) if ref is not None else None
    if path is None or fcntl is None:
        yield
        return
    lock = path.with_suffix(".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def store_derivation(result_id: str, ref: tuple[str, str] | None, value: Any) -> bool:
    """Store ``value``, the derivation of ``result_id`` by ``ref``; False when not stored."""
    if ref is None:
        return False
    key = derivation_key(result_id, ref)
    path = _derivation_path(result_id, key)
    fingerprint = _fingerprint(value)
    if path is None or fingerprint is None or not _sympy_only([value.result, *(st.expr for st in value.steps)]):
        return False
    _, _, files = closure_sources([ref[0]])
    if changed_since_start(files):
        return False
    if write_pickle(path, key, {"derivation": value, "fingerprint": fingerprint}):
        prune(path.parent, path.name, "*.pickle")
        prune(path.parent, path.with_suffix(".lock").name, "*.lock")
        return True
    return False
