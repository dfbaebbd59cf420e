"""A result's part of the report: its derivation typeset step by step, and every check run.

:func:`compute` is the work (SymPy derivation, :func:`genverify.report.latex.display`
for each step, :func:`genverify.verification.run_checks`); :func:`load_or_compute`
reads each result's part back from the cache when its key is unchanged. The key
(:func:`genverify.report.cache.result_key`) covers the result's own code and this
module's import closure, the code that typesets it: this module stays narrow on
purpose (no registry, no claims), so editing one result recomputes only that result.

A part is plain JSON: the step descriptions as plain text, the mathematics as LaTeX
notation (``latex``: one line; ``display``: broken after whole terms for the page),
the check records as :class:`~genverify.verification.CheckRecord` fields.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from pathlib import Path

from genverify.report import cache as rcache
from genverify.report import latex as tex
from genverify.report.cache import Part
from genverify.report.progress import Progress
from genverify.verification import run_checks

__all__ = ["compute", "load_or_compute"]


def compute(result, seed: int) -> dict:
    """The derivation typeset step by step, and every check run (with base seed ``seed``)."""
    t0 = time.perf_counter()
    try:
        deriv = result.derivation()
        steps = [{"description": s.description, "latex": tex.math(s.expr), "display": tex.display(s.expr)}
                 for s in deriv.steps]
        boxed = {"latex": tex.math(deriv.result), "display": tex.display(deriv.result)}
        derive_error = ""
    except Exception as exc:  # noqa: BLE001 - a broken derivation is reported, not a crash
        steps, boxed = [], None
        derive_error = "".join(traceback.format_exception(exc))[-1500:]
    derive_s = time.perf_counter() - t0
    records = [dataclasses.asdict(rec) for rec in run_checks([result], seed)]
    return {"id": result.id, "steps": steps, "boxed": boxed, "derive_error": derive_error,
            "derive_seconds": derive_s, "records": records, "seconds": time.perf_counter() - t0}


def key(result, seed: int) -> str:
    """The cache key of ``result``'s part: its code, this module's, its data, the libraries, the seed."""
    return rcache.digest(rcache.result_key(result, extra=(compute.__module__,)), seed)


def entry_path(result, cache_dir: Path, seed: int) -> Path:
    """Where ``result``'s part is cached (its key in the name)."""
    return cache_dir / "results" / rcache.safe_name(result.id) / f"{key(result, seed)[:20]}.json"


def cached(result, path: Path) -> dict | None:
    """``result``'s part from the cache entry ``path``, or None."""
    data = rcache.read_json(path)
    return data if data is not None and data.get("id") == result.id else None


def compute_and_store(result, path: Path, seed: int) -> dict:
    """Compute ``result``'s part (in this process or a build's worker) and cache it at ``path``."""
    data = compute(result, seed)
    rcache.write_json(path, data)
    rcache.prune(path.parent, path.name, "[0-9a-f]*.json")
    return data


def part(result, data: dict, seconds: float, was_cached: bool) -> Part:
    """The timing appendix's line of ``result``'s part."""
    return Part(f"result {result.id}: derivation and {len(result.checks)} checks", seconds,
                float(data.get("seconds", 0.0)), was_cached)


def load_or_compute(results, cache_dir: Path, fresh: bool, seed: int,
                    progress: Progress) -> tuple[dict[str, dict], list[Part]]:
    """Each result's part by id (from the cache unless ``fresh``), and what each cost, one after the other."""
    out: dict[str, dict] = {}
    parts: list[Part] = []
    t_all = time.perf_counter()
    n_cached = 0
    with progress.bar("results", len(results)) as bar:
        for result in results:
            bar.update(description=result.id)
            path = entry_path(result, cache_dir, seed)
            t0 = time.perf_counter()
            data = None if fresh else cached(result, path)
            was_cached = data is not None
            if data is None:
                data = compute_and_store(result, path, seed)
            parts.append(part(result, data, time.perf_counter() - t0, was_cached))
            out[result.id] = data
            n_cached += was_cached
            bar.update(advance=1)
    progress.line(f"results: {len(results)} derived and checked ({n_cached} from the cache) "
                  f"in {time.perf_counter() - t_all:.1f} s")
    return out, parts
