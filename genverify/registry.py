"""The registry of results and experiments: the spine of genverify.

``genverify list``, ``derive``, ``verify``, ``check``, ``errata`` and ``report``
all walk this registry. Its entries come from

* :mod:`genverify.results`: one module per topic, each declaring ``RESULTS``
  (and ``EXPERIMENTS``); the package lists its modules in homework order;
* :func:`register` / :func:`register_experiment` calls from anyone's code.

A result is a :class:`~genverify.core.Result` (the types live in
:mod:`genverify.core` and are re-exported here for convenience).
"""

from __future__ import annotations

import difflib
from typing import Iterable

from genverify.core import (
    Check,
    Derivation,
    Experiment,
    Outcome,
    Param,
    ParameterError,
    Result,
    Step,
    UnknownResultError,
)

__all__ = [
    "Param",
    "Step",
    "Derivation",
    "Outcome",
    "Check",
    "Result",
    "Experiment",
    "UnknownResultError",
    "register",
    "register_experiment",
    "get",
    "select",
    "all_results",
    "ids",
    "all_experiments",
    "get_experiment",
]

_RESULTS: dict[str, Result] = {}
_EXPERIMENTS: dict[str, Experiment] = {}
_DISCOVERED = False


def register(result: Result) -> Result:
    """Add ``result`` to the registry (ids are unique); returns it."""
    if not isinstance(result, Result):
        raise ParameterError("result", f"{{param}} must be a genverify.core.Result, got {type(result).__name__}")
    if result.id in _RESULTS and _RESULTS[result.id] is not result:
        raise ValueError(f"result id {result.id!r} is registered twice")
    _RESULTS[result.id] = result
    return result


def register_experiment(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry of experiments (ids are unique); returns it."""
    if exp.id in _EXPERIMENTS and _EXPERIMENTS[exp.id] is not exp:
        raise ValueError(f"experiment id {exp.id!r} is registered twice")
    _EXPERIMENTS[exp.id] = exp
    return exp


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    # Imported here, not at the top: the results pull in SymPy derivations and SciPy,
    # which callers that only register (user code, tests) do not need.
    from genverify import results

    for module in results.MODULES:
        for result in getattr(module, "RESULTS", ()):
            register(result)
        for exp in getattr(module, "EXPERIMENTS", ()):
            register_experiment(exp)


def all_results() -> list[Result]:
    """Every registered result, the packaged ones first in homework order."""
    _discover()
    return list(_RESULTS.values())


def ids() -> list[str]:
    return [r.id for r in all_results()]


def get(result_id: str) -> Result:
    """The result called ``result_id``; an :class:`UnknownResultError` naming the closest ids otherwise."""
    _discover()
    try:
        return _RESULTS[result_id]
    except KeyError:
        close = difflib.get_close_matches(str(result_id), list(_RESULTS), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownResultError(
            f"unknown result id {result_id!r}.{hint} Run `genverify list` for all ids."
        ) from None


def select(result_ids: Iterable[str] | None) -> list[Result]:
    """The results named (all of them when ``result_ids`` is empty or None)."""
    if not result_ids:
        return all_results()
    return [get(i) for i in result_ids]


def all_experiments() -> list[Experiment]:
    """Every registered experiment, by question then id."""
    _discover()
    return sorted(_EXPERIMENTS.values(), key=lambda e: (e.question, e.id))


def get_experiment(exp_id: str) -> Experiment:
    _discover()
    if exp_id in _EXPERIMENTS:
        return _EXPERIMENTS[exp_id]
    raise ParameterError("exp_id", f"{{param}} {exp_id!r} is not a registered experiment; "
                                   f"known: {', '.join(sorted(_EXPERIMENTS))}")
