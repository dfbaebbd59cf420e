"""The registry of results, experiments and questions: the spine of genverify.

``genverify list``, ``derive``, ``verify``, ``check``, ``errata`` and ``report``
all walk this registry. Its entries come from

* :mod:`genverify.results`: one module per topic, each declaring ``RESULTS``
  (and ``EXPERIMENTS``; :mod:`genverify.results.questions` declares the
  homework's ``QUESTIONS``); the package lists its modules in homework order;
* users' modules ("results modules"), loaded after the packaged ones, in this order:

  1. the entry points of the group ``genverify.results`` (:data:`ENTRY_POINT_GROUP`)
     of every installed distribution, by name: an entry point names a module
     (``myhw = "myhw.results"``) or an object in one (``"myhw.results:RESULTS"``:
     a list of results, experiments and questions, or a callable returning one);
  2. the modules named in the environment variable ``GENVERIFY_RESULTS_MODULES``
     (:data:`ENV_VAR`; comma-separated);
  3. :func:`load_module` calls (the CLI's global results-module option);

  a results module declares ``RESULTS``, ``EXPERIMENTS`` and ``QUESTIONS`` lists,
  or calls :func:`register` / :func:`register_experiment` / :func:`register_question`
  itself when imported;
* :func:`register` / :func:`register_experiment` / :func:`register_question` calls
  from anyone's code.

A module that cannot be imported, or declares something that is not a result,
an experiment or a question, or an id that is taken, raises
:class:`ResultsModuleError` (a ``ValueError``: the CLI exits 2) naming the module
and where it was named, and registers nothing.

A result is a :class:`~genverify.core.Result` (the types live in
:mod:`genverify.core` and are re-exported here for convenience).

Only what a lookup needs is imported. The packaged topic modules are imported
one at a time, when something of theirs is asked for (:func:`get` imports the
module that declares that id; :func:`all_results` imports all of them). Which
module declares what, with each result's question, statement and symbols as
text, is kept in an index on disk (:func:`catalog`, :func:`ids`,
:func:`describe`; ``genverify list`` imports no topic module at all), keyed by
the digest of the sources the topic modules can run
(:func:`genverify.diskcache.code_digest`) and rebuilt, by importing them all,
whenever that digest changes. Users' modules are always imported (discovery),
and a user's id that a packaged module declares is refused as before: that
module is imported first, so the id is taken. With the cache off
(``GENVERIFY_CACHE=off``) the index is built in memory on first use.

(Over 500 lines on purpose: registration, discovery and the index share one
state, the tables and which topic modules are loaded, and split apart they
would import each other.)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import sys
import traceback
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from genverify import diskcache
from genverify import results as _packaged
from genverify.core import (
    Check,
    Derivation,
    Experiment,
    Outcome,
    Param,
    ParameterError,
    Question,
    Result,
    Step,
    UnknownResultError,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "Check",
    "Derivation",
    "Experiment",
    "Outcome",
    "Param",
    "Question",
    "Result",
    "ResultsModuleError",
    "Step",
    "UnknownResultError",
    "all_experiments",
    "ResultInfo",
    "all_results",
    "catalog",
    "derivation",
    "describe",
    "get",
    "get_experiment",
    "get_question",
    "ids",
    "load_module",
    "question_of",
    "questions",
    "register",
    "register_experiment",
    "register_question",
    "select",
    "symbols_text",
]

#: The entry-point group through which installed distributions add results modules.
ENTRY_POINT_GROUP = "genverify.results"
#: The environment variable naming results modules (comma-separated), loaded at discovery.
ENV_VAR = "GENVERIFY_RESULTS_MODULES"

_RESULTS: dict[str, Result] = {}
_EXPERIMENTS: dict[str, Experiment] = {}
_QUESTIONS: dict[str, Question] = {}
#: Where each id came from (a module name), for "registered twice" messages.
_ORIGIN: dict[tuple[str, str], str] = {}
#: The results modules loaded so far, by the name they were given (each is loaded once).
_LOADED: dict[str, types.ModuleType | None] = {}
_DISCOVERED = False
#: The error of a results module named by an entry point or the environment, re-raised by every lookup.
_DISCOVERY_ERROR: ResultsModuleError | None = None
#: The packaged topic modules registered so far (each is imported when something of it is needed).
_PACKAGED: set[str] = set()
#: The index of the packaged modules (see the module docstring), once read or built.
_INDEX: dict[str, Any] | None = None
_INDEX_FORMAT = 1
_BUILDING = False


class ResultsModuleError(ValueError):
    """A results module that cannot be imported or declares something invalid (the CLI exits 2)."""


def _claim(kind: str, key: str, what: str, table: dict, obj: Any) -> bool:
    """Reserve ``key`` in ``table`` for ``obj``; False when the same object is there already."""
    old = table.get(key)
    if old is None:
        return True
    if old is obj or (kind == "question" and old == obj):
        return False
    where = _ORIGIN.get((kind, key))
    raise ValueError(f"{what} {key!r} is registered twice" + (f" (first by {where})" if where else ""))


def register(result: Result) -> Result:
    """Add ``result`` to the registry (ids are unique); returns it."""
    if not isinstance(result, Result):
        raise ParameterError("result", f"{{param}} must be a genverify.core.Result, got {type(result).__name__}")
    _owner_first("results", result.id, _RESULTS)
    if _claim("result", result.id, "result id", _RESULTS, result):
        _RESULTS[result.id] = result
    return result


def register_experiment(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry of experiments (ids are unique); returns it."""
    if not isinstance(exp, Experiment):
        raise ParameterError("exp", f"{{param}} must be a genverify.core.Experiment, got {type(exp).__name__}")
    _owner_first("experiments", exp.id, _EXPERIMENTS)
    if _claim("experiment", exp.id, "experiment id", _EXPERIMENTS, exp):
        _EXPERIMENTS[exp.id] = exp
    return exp


def register_question(question: Question) -> Question:
    """Add ``question`` (a report section) to the registry (keys are unique); returns it."""
    if not isinstance(question, Question):
        raise ParameterError("question",
                             f"{{param}} must be a genverify.core.Question, got {type(question).__name__}")
    if not str(question.key).strip():
        raise ParameterError("question", "{param} needs a non-empty key")
    _owner_first("questions", question.key, _QUESTIONS)
    if _claim("question", question.key, "question", _QUESTIONS, question):
        _QUESTIONS[question.key] = question
    return question


# ----------------------------------------------------------------- results modules


def _register_items(items: Iterable[Any], origin: str) -> None:
    for item in items:
        if isinstance(item, Result):
            kind, key = "result", item.id
            register(item)
        elif isinstance(item, Experiment):
            kind, key = "experiment", item.id
            register_experiment(item)
        elif isinstance(item, Question):
            kind, key = "question", item.key
            register_question(item)
        else:
            raise ValueError(f"{item!r} is a {type(item).__name__}, not a genverify.core.Result, "
                             "Experiment or Question")
        _ORIGIN.setdefault((kind, key), origin)


def _declarations(module: types.ModuleType) -> list[Any]:
    """A module's ``QUESTIONS``, ``RESULTS`` and ``EXPERIMENTS``, in that order (questions first)."""
    items: list[Any] = []
    for name, kind in (("QUESTIONS", Question), ("RESULTS", Result), ("EXPERIMENTS", Experiment)):
        declared = getattr(module, name, ())
        if isinstance(declared, (str, bytes)) or not hasattr(declared, "__iter__"):
            raise ValueError(f"{name} must be a list of genverify.core.{kind.__name__}, "
                             f"got {type(declared).__name__}")
        for i, item in enumerate(declared):
            if not isinstance(item, kind):
                raise ValueError(f"{name}[{i}] is a {type(item).__name__}, not a genverify.core.{kind.__name__}")
            items.append(item)
    return items


def _where(exc: BaseException) -> str:
    """`` (file.py, line 12)`` for the innermost frame of ``exc`` (or a SyntaxError's location)."""
    if isinstance(exc, SyntaxError):
        return f" ({exc.filename})" if exc.filename else ""  # its message has the line
    # The user's frames only: not ours, not importlib's (a module that is not found has none).
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if f.filename != __file__ and "importlib" not in f.filename and not f.filename.startswith("<frozen")]
    return f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""


def _import(name: str) -> types.ModuleType:
    """Import a dotted module name, or a ``.py`` file (as a module named after the file)."""
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = os.path.abspath(name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {name}")
    stem = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(stem, None)
        raise
    return module


def _load(target: Any, label: str, source: str) -> types.ModuleType | None:
    """Register what ``target`` (a module name, a module, or a list/callable of an entry point) declares.

    Everything or nothing: on any error the registry is as before and a
    :class:`ResultsModuleError` names ``label`` and ``source``.
    """
    from_ = f" (named by {source})" if source else ""
    saved = (dict(_RESULTS), dict(_EXPERIMENTS), dict(_QUESTIONS), dict(_ORIGIN), set(_PACKAGED))
    sizes = (len(_RESULTS), len(_EXPERIMENTS), len(_QUESTIONS))
    module = None
    try:
        try:
            if isinstance(target, str):
                was_imported = target in sys.modules
                module = _import(target)
            else:
                was_imported, module = True, target if isinstance(target, types.ModuleType) else None
            if module is not None:
                items = _declarations(module)
            else:
                items = target() if callable(target) else target
                items = [] if items is None else list(items)
        except Exception as exc:
            raise ResultsModuleError(
                f"results module {label!r}{from_} cannot be imported: {type(exc).__name__}: {exc}{_where(exc)}"
            ) from exc
        try:
            _register_items(items, label)
        except ValueError as exc:
            raise ResultsModuleError(f"results module {label!r}{from_}: {exc}") from None
        added = (len(_RESULTS), len(_EXPERIMENTS), len(_QUESTIONS)) != sizes
        if module is not None and not items and not added and not was_imported:
            raise ResultsModuleError(
                f"results module {label!r}{from_} declares no RESULTS, EXPERIMENTS or QUESTIONS and "
                "registered nothing when imported")
    except ResultsModuleError:
        for table, old in zip((_RESULTS, _EXPERIMENTS, _QUESTIONS, _ORIGIN, _PACKAGED), saved):
            table.clear()
            table.update(old)
        raise
    return module


def load_module(module: str | types.ModuleType, *, source: str = "") -> types.ModuleType:
    """Import ``module`` (a dotted name, a ``.py`` file or a module object) and register what it declares.

    Returns the module.

    ``source`` says who named the module, for error messages. A module is
    loaded once; loading it again returns it. Raises :class:`ResultsModuleError`.
    """
    _discover()
    if _DISCOVERY_ERROR is not None:
        raise _DISCOVERY_ERROR
    name = module if isinstance(module, str) else getattr(module, "__name__", None)
    if not isinstance(name, str) or not name.strip():
        raise ParameterError("module", f"{{param}} must be a module or a dotted module name, got {module!r}")
    name = name.strip()
    if name in _LOADED:
        return _LOADED[name]
    loaded = _load(name if isinstance(module, str) else module, name, source)
    _LOADED[name] = loaded
    return loaded


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))


def _discover_users() -> None:
    for ep in _entry_points():
        if ep.value in _LOADED:
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None)
        source = f"entry point {ep.name!r} of group {ENTRY_POINT_GROUP}" + (f" in {dist}" if dist else "")
        try:
            target = ep.load()
        except Exception as exc:
            raise ResultsModuleError(f"results module {ep.value!r} (named by {source}) cannot be imported: "
                                     f"{type(exc).__name__}: {exc}{_where(exc)}") from exc
        _LOADED[ep.value] = _load(target, ep.value, source)
    for name in os.environ.get(ENV_VAR, "").split(","):
        name = name.strip()
        if name and name not in _LOADED:
            _LOADED[name] = _load(name, name, f"the environment variable {ENV_VAR}")


def _discover() -> None:
    """Load users' modules (entry points, the environment) once; the packaged ones load on demand."""
    global _DISCOVERED, _DISCOVERY_ERROR
    if _DISCOVERED:
        if _DISCOVERY_ERROR is not None:
            raise _DISCOVERY_ERROR
        return
    _DISCOVERED = True
    try:
        _discover_users()
    except ResultsModuleError as exc:
        _DISCOVERY_ERROR = exc
        raise


# ----------------------------------------------------------------- the packaged modules and their index


def _load_packaged(name: str) -> None:
    """Import the packaged topic module ``name`` and register what it declares (once)."""
    if name in _PACKAGED:
        return
    _PACKAGED.add(name)  # first: registering its own ids must not load it again
    try:
        _register_items(_declarations(importlib.import_module(name)), name)
    except BaseException:
        _PACKAGED.discard(name)
        raise


def _load_packaged_all(field: str | None = None) -> None:
    """Every packaged module (only those declaring ``field``, e.g. "experiments", when the index says so)."""
    for entry in _index()["modules"] if field else [{"name": n} for n in _packaged.MODULE_NAMES]:
        if field is None or entry.get(field):
            _load_packaged(entry["name"])


def _owner(field: str, key: str) -> str | None:
    """The packaged module declaring ``key`` among its ``field`` ("results", "experiments", "questions")."""
    for entry in _index()["modules"]:
        if key in entry[field]:
            return entry["name"]
    return None


def _owner_first(field: str, key: str, table: dict) -> None:
    """Before anyone else registers ``key``, load the packaged module declaring it: the id is taken."""
    if _BUILDING or key in table:
        return
    owner = _owner(field, key)
    if owner is not None and owner not in _PACKAGED:
        _load_packaged(owner)


def symbols_text(result: Result) -> str:
    """A result's free symbols in one line: ``z in (0, oo); mu in (-oo, oo); alpha in ... (default 1/10)``."""
    import sympy as sp  # here, not at the top: a result with symbols has imported SymPy already

    parts = []
    for prm in result.params:
        dom = prm.domain
        if isinstance(dom, sp.Range) and dom.step == 1:
            dom = f"{{{dom.inf}, ..., {dom.sup}}}"
        else:
            dom = str(dom).replace("Interval.open", "").replace("Interval", "")
        s = f"{prm.name} in {dom}"
        if prm.default is not None:
            s += f" (default {prm.default})"
        parts.append(s)
    return "; ".join(parts) if parts else "-"


def _result_entry(r: Result) -> dict[str, Any]:
    ref = diskcache.derivation_ref(r.derive)
    return {"id": r.id, "question": r.question, "statement": r.statement, "symbols": symbols_text(r),
            "derive": list(ref) if ref else None}


def _build_index() -> dict[str, Any]:
    """Import every packaged module and describe what each declares (ids, and each result's text)."""
    global _BUILDING
    _BUILDING = True
    try:
        for name in _packaged.MODULE_NAMES:
            _load_packaged(name)
    finally:
        _BUILDING = False
    modules = []
    for name in _packaged.MODULE_NAMES:
        items = _declarations(sys.modules[name])
        modules.append({
            "name": name,
            "questions": [q.key for q in items if isinstance(q, Question)],
            "results": [r.id for r in items if isinstance(r, Result)],
            "experiments": [e.id for e in items if isinstance(e, Experiment)],
            "info": [_result_entry(r) for r in items if isinstance(r, Result)],
        })
    return {"format": _INDEX_FORMAT, "modules": modules}


def _index() -> dict[str, Any]:
    """The index of the packaged modules: read from the cache when their sources are unchanged, else built."""
    global _INDEX
    if _INDEX is not None:
        return _INDEX
    folder = diskcache.install_dir()
    stamp = None
    if folder is not None:
        _, code, files = diskcache.closure_sources([*_packaged.MODULE_NAMES, _packaged.__name__])
        stamp = [code, diskcache.versions("sympy"), list(_packaged.MODULE_NAMES)]
        data = diskcache.read_json(folder / "registry-index.json")
        if _usable(data) and data.get("stamp") == json.loads(json.dumps(stamp)):
            _INDEX = data
            return data
    data = _build_index()
    if folder is not None and not diskcache.changed_since_start(files):
        diskcache.write_json(folder / "registry-index.json", {**data, "stamp": stamp})
    _INDEX = data
    return data


def _usable(data: Any) -> bool:
    """Whether ``data`` (read from the cache) has the index's form: else it is rebuilt, never trusted."""
    if not (isinstance(data, dict) and data.get("format") == _INDEX_FORMAT and isinstance(data.get("modules"), list)):
        return False
    fields = {"questions": str, "results": str, "experiments": str, "info": dict}
    return all(isinstance(m, dict) and isinstance(m.get("name"), str)
               and all(isinstance(m.get(f), list) and all(isinstance(x, t) for x in m[f]) for f, t in fields.items())
               and all({"id", "question", "statement", "symbols", "derive"} <= set(i) for i in m["info"])
               for m in data["modules"])


def _rank(kind: str, key: str) -> tuple:
    """Sort key: the packaged modules' entries in their order, then everyone else's as registered."""
    origin = _ORIGIN.get((kind, key))
    names = _packaged.MODULE_NAMES
    return (0, names.index(origin)) if origin in names else (1,)


def _ordered(kind: str, table: dict) -> list:
    return [table[k] for k in sorted(table, key=lambda k: _rank(kind, k))]


@dataclass(frozen=True)
class ResultInfo:
    """What ``genverify list`` shows of a result, without importing its module: text only."""

    id: str
    question: str
    statement: str
    symbols: str


def _entries() -> list[tuple[str, Result | None, dict | None]]:
    """``(id, result, index entry)`` of every result in :func:`all_results`'s order: the registered object
    where its module is loaded, else the index's text."""
    _discover()
    out = []
    seen = set()
    for entry in _index()["modules"]:
        loaded = entry["name"] in _PACKAGED
        for info in entry["info"]:
            if loaded and info["id"] not in _RESULTS:
                continue  # taken out of the registry (a test's stand-in may replace it)
            out.append((info["id"], _RESULTS.get(info["id"]) if loaded else None, info))
            seen.add(info["id"])
    return out + [(r.id, r, None) for r in _ordered("result", _RESULTS) if r.id not in seen]


def catalog() -> list[ResultInfo]:
    """Every result as :class:`ResultInfo`, in :func:`all_results`'s order; imports no packaged module."""
    return [_info(r) if r is not None else ResultInfo(info["id"], info["question"], info["statement"],
                                                       info["symbols"])
            for _, r, info in _entries()]


def _info(r: Result) -> ResultInfo:
    return ResultInfo(r.id, r.question, r.statement, symbols_text(r))


def describe(result_id: str) -> ResultInfo:
    """The :class:`ResultInfo` of ``result_id`` (an :class:`UnknownResultError` naming the closest ids otherwise)."""
    for rid, r, info in _entries():
        if rid == result_id:
            return _info(r) if r is not None else ResultInfo(rid, info["question"], info["statement"], info["symbols"])
    return _info(get(result_id))  # raises, with suggestions


def derivation(result_id: str) -> Derivation:
    """The derivation of ``result_id``; from the disk cache without importing its module when it is there."""
    _discover()
    if result_id not in _RESULTS:
        for entry in _index()["modules"]:
            info = next((i for i in entry["info"] if i["id"] == result_id), None)
            if info is not None and info["derive"] and entry["name"] not in _PACKAGED:
                found = diskcache.load_derivation(result_id, tuple(info["derive"]))
                if isinstance(found, Derivation):
                    return found
    return get(result_id).derivation()


# ----------------------------------------------------------------- lookups


def all_results() -> list[Result]:
    """Every registered result, the packaged ones first in homework order, then users' results."""
    _discover()
    _load_packaged_all()
    return _ordered("result", _RESULTS)


def ids() -> list[str]:
    """Every result id, in :func:`all_results`'s order (imports no packaged module)."""
    return [rid for rid, _, _ in _entries()]


def get(result_id: str) -> Result:
    """The result called ``result_id``; an :class:`UnknownResultError` naming the closest ids otherwise."""
    _discover()
    try:
        return _RESULTS[result_id]
    except (KeyError, TypeError):
        pass
    owner = _owner("results", result_id) if isinstance(result_id, str) else None  # may build the index
    if owner is not None:
        _load_packaged(owner)
    if isinstance(result_id, str) and result_id in _RESULTS:
        return _RESULTS[result_id]
    close = difflib.get_close_matches(str(result_id), ids(), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownResultError(f"unknown result id {result_id!r}.{hint} Run `genverify list` for all ids.")


def select(result_ids: Iterable[str] | None) -> list[Result]:
    """The results named (all of them when ``result_ids`` is empty or None)."""
    if not result_ids:
        return all_results()
    return [get(i) for i in result_ids]


def all_experiments() -> list[Experiment]:
    """Every registered experiment, by question then id."""
    _discover()
    _load_packaged_all("experiments")
    return sorted(_EXPERIMENTS.values(), key=lambda e: (e.question, e.id))


def get_experiment(exp_id: str) -> Experiment:
    _discover()
    owner = _owner("experiments", exp_id) if exp_id not in _EXPERIMENTS else None
    if owner is not None:
        _load_packaged(owner)
    if exp_id in _EXPERIMENTS:
        return _EXPERIMENTS[exp_id]
    raise ParameterError("exp_id", f"{{param}} {exp_id!r} is not a registered experiment; "
                                   f"known: {', '.join(sorted(e.id for e in all_experiments()))}")


def questions() -> list[Question]:
    """Every registered question: the homework's in its order, then users' in registration order."""
    _discover()
    _load_packaged_all("questions")
    return _ordered("question", _QUESTIONS)


def get_question(key: str) -> Question:
    """The question with key ``key`` (a :class:`ParameterError` naming ``key`` otherwise)."""
    questions()
    if key in _QUESTIONS:
        return _QUESTIONS[key]
    raise ParameterError("key", f"{{param}} {key!r} is not a registered question; "
                                f"known: {', '.join(_QUESTIONS)}")


def question_of(label: str, keys: Iterable[str] | None = None) -> str | None:
    """The key of the question ``label`` belongs to, or ``None``.

    The longest key that ``label`` equals or starts with, unless a digit follows
    the key ("2b-iii" -> "2b", "3d" -> "3", but "12" is not "1"); case is
    ignored. ``keys`` defaults to the registered questions' keys.
    """
    q = str(label).strip().lower()
    best = None
    if keys is None:
        keys = [q.key for q in questions()]
    for key in keys:
        k = str(key).lower()
        belongs = q == k or (q.startswith(k) and not q[len(k):len(k) + 1].isdigit())
        if belongs and (best is None or len(key) > len(best)):
            best = key
    return best

