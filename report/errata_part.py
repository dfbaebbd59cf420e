"""The errata part of the report: the audit of the write-up, a :class:`~genverify.claims.verdict.Audit`.

:func:`load_or_audit` runs :func:`genverify.claims.errata.audit_file` (every transcribed
answer checked against the registry) or reads its audit back from the cache. The key
covers

* the claims file's content (by default the write-ups packaged with :mod:`genverify.claims`);
* the claims code: the import closure of :mod:`genverify.claims.errata`, found by
  :func:`genverify.report.cache.code_digest` (the parser, the checker, the verdicts);
* the registry (:func:`genverify.report.cache.registry_digest`: the audit checks claims
  against whatever results exist), the seed and the library versions.
"""

from __future__ import annotations

import hashlib
import os
import time
import traceback
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from genverify.claims import errata as claims_errata
from genverify.claims.verdict import Audit
from genverify.report import cache as rcache
from genverify.report.cache import Part
from genverify.report.environment import library_versions
from genverify.report.progress import Progress

__all__ = ["ErrataRun", "load_or_audit", "key"]


@dataclass
class ErrataRun:
    """The audit of the build (None if it failed) and what it cost."""

    audit: Audit | None
    part: Part
    error: str = ""  # the traceback's end, when it failed


def _claims_digest(claims: str | os.PathLike | None) -> str:
    """SHA-256 of the claims file, or (``None``) of every write-up packaged with genverify.claims."""
    h = hashlib.sha256()
    if claims is not None:
        h.update(Path(claims).read_bytes())
        return h.hexdigest()
    for item in sorted(resources.files(claims_errata.__package__).iterdir(), key=lambda p: p.name):
        if item.name.endswith((".yaml", ".yml")):
            h.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    return h.hexdigest()


def key(claims: str | os.PathLike | None, seed: int, registry_digest: str) -> str:
    """The cache key of the audit of ``claims`` (see the module docstring)."""
    return rcache.digest("errata", _claims_digest(claims), rcache.code_digest([claims_errata.__name__]),
                         registry_digest, seed, library_versions())


@dataclass
class ErrataPlan:
    """Where the audit's cache entry is; ``cached`` when it is there."""

    claims: str | os.PathLike | None
    seed: int
    path: Path
    name: str
    label: str
    cached: ErrataRun | None = None


def plan(claims: str | os.PathLike | None, seed: int, cache_dir: Path, fresh: bool,
         registry_digest: str) -> ErrataPlan:
    """The audit's cache entry, read back when it is there (unless ``fresh``)."""
    label = str(claims) if claims is not None else "the packaged write-up"
    p = ErrataPlan(claims, seed, cache_dir / "errata" / f"{key(claims, seed, registry_digest)[:20]}.json",
                   f"errata audit of {label}", label)
    t0 = time.perf_counter()
    data = None if fresh else rcache.read_json(p.path)
    if data is not None and "audit" in data:
        seconds = float(data.get("seconds", 0.0))
        p.cached = ErrataRun(Audit.from_json(data["audit"]), Part(p.name, time.perf_counter() - t0, seconds, True))
    return p


def execute(p: ErrataPlan, note: Callable[[str], None]) -> dict:
    """Audit (in this process or a build's worker) and cache the audit; plain data back.

    ``note(question)`` is called before each entry. Returns ``audit`` (as JSON, read back from
    the cache) and ``seconds``, or ``error`` (the traceback's end) and ``summary``.
    """
    t0 = time.perf_counter()
    try:
        audit = claims_errata.audit_file(p.claims, seed=p.seed, progress=lambda entry: note(entry.question))
        seconds = time.perf_counter() - t0
        rcache.write_json(p.path, {"seconds": seconds, "claims": p.label, "audit": audit.to_json()})
        rcache.prune(p.path.parent, p.path.name, "[0-9a-f]*.json")
        # Round-trip now, so the report renders exactly what a warm run will read back.
        return {"audit": rcache.read_json(p.path)["audit"], "seconds": seconds}
    except Exception as exc:  # noqa: BLE001 - reported with its traceback; the build then stops
        return {"error": "".join(traceback.format_exception(exc))[-3000:], "summary": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - t0}


def finish(p: ErrataPlan, answer: dict, seconds: float) -> tuple[ErrataRun, str]:
    """The :class:`ErrataRun` from :func:`execute`'s ``answer``, and its progress line."""
    if "error" in answer:
        return (ErrataRun(None, Part(p.name, seconds, float(answer["seconds"]), False), answer["error"]),
                f"errata: FAILED ({answer['summary']})")
    audit = Audit.from_json(answer["audit"])
    counts = ", ".join(f"{n} {v}" for v, n in audit.counts().items())
    return (ErrataRun(audit, Part(p.name, seconds, float(answer["seconds"]), False)),
            f"errata: {len(audit.rows)} answers audited ({counts}) in {answer['seconds']:.1f} s")


def load_or_audit(claims: str | os.PathLike | None, seed: int, cache_dir: Path, fresh: bool,
                  registry_digest: str, progress: Progress) -> ErrataRun:
    """The audit of ``claims`` (default: the packaged write-up), from the cache unless ``fresh``; never
    raises for a failing audit (the :class:`ErrataRun` holds its traceback)."""
    t0 = time.perf_counter()
    p = plan(claims, seed, cache_dir, fresh, registry_digest)
    if p.cached is not None:
        progress.line(f"errata: cached ({p.cached.part.computed_seconds:.1f} s when computed)")
        return p.cached
    progress.line(f"errata: auditing {p.label} ...")
    with progress.bar("errata", None) as bar:
        answer = execute(p, lambda question: bar.update(description=question, advance=1))
    run, line = finish(p, answer, time.perf_counter() - t0)
    progress.line(line)
    return run
