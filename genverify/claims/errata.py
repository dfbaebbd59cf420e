"""The errata audit: every formula of a write-up checked against the registry.

Each transcribed answer (:class:`~genverify.claims.writeups.ClaimEntry`) is
run through :func:`genverify.claims.checker.check` (symbolic equivalence,
then 40-digit comparison at random points of the domain; for densities the
claim's integral), and becomes an :class:`~genverify.claims.verdict.ErrataRow`:
correct, incorrect (with the counterexample as evidence), or not checkable
with the reason (no formula in the write-up, a result not in the registry
yet, a claim that does not parse). The verdicts come from checking, never
from a list.

* :func:`audit_entry` / :func:`audit`: one entry / a list of entries; an
  entry with ``steps`` also gets the step-by-step audit
  (:func:`genverify.claims.steps.audit_steps`): the chain with the first
  failing line marked, and where the error enters as its ``diagnosis``;
* :func:`audit_file`: a whole claims file (default: the packaged homework
  write-up) -> :class:`~genverify.claims.verdict.Audit`; a bad entry becomes
  a "not checkable" row naming the entry and field, the rest is audited;
* :func:`audit_files` and :func:`grading_rows`: many write-ups (a class) into
  one table, write-up / question / verdict / diagnosis (:data:`GRADING_COLUMNS`),
  written as CSV or JSON by :func:`write_grading`;

The report's errata part (:mod:`genverify.report.errata_part`) runs :func:`audit_file`
and caches its :class:`~genverify.claims.verdict.Audit`; it is the one home of the
audit in the report.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable

from genverify import registry
from genverify.claims.checker import DEFAULT_TIMEOUT, check
from genverify.claims.errors import CheckTimeout
from genverify.claims.steps import audit_steps
from genverify.claims.verdict import Audit, ErrataRow, Verdict
from genverify.claims.writeups import DEFAULT_CLAIMS, ClaimEntry, Problem, claims_paths, read_claims
from genverify.core import ParameterError
from genverify.io import atomic_write_text
from genverify.parallel import Job, can_fork, run_jobs

__all__ = [
    "COLUMNS",
    "GRADING_COLUMNS",
    "audit",
    "audit_entry",
    "audit_file",
    "audit_files",
    "grading_rows",
    "problem_row",
    "select_entries",
    "write_grading",
]

COLUMNS = ["question", "part", "id", "claim", "where", "verdict", "evidence"]
#: The grading table of many write-ups (CSV header / JSON keys).
GRADING_COLUMNS = ["write_up", "file", "question", "part", "id", "verdict", "diagnosis", "first_error", "evidence"]


def audit_entry(entry: ClaimEntry, timeout: float = DEFAULT_TIMEOUT, seed: int = 0) -> ErrataRow:
    """Check one transcribed answer (and its steps); never raises for a claim that cannot be checked.

    A claim that runs out of time is :attr:`Verdict.UNDECIDED` (never "incorrect").
    """
    row = _fields(entry)
    text = entry.text_to_check()
    if entry.id not in registry.ids():
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE,
                         evidence=f"result not registered (no result {entry.id!r} in the registry yet)")
    steps = _steps(entry, timeout, seed)
    if text is None:
        out = ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence="no formula given in the write-up")
        return _with_steps(out, steps)
    try:
        # The notation is detected (a backslash or a brace means LaTeX): a claims file may use either.
        v = check(entry.id, text, where=entry.where, latex=None, timeout=timeout, seed=seed)
    except CheckTimeout as exc:
        return _with_steps(ErrataRow(**row, verdict=Verdict.UNDECIDED, evidence=f"{exc} (undecided, not wrong)"),
                           steps)
    except ValueError as exc:
        marked = exc.marked() if hasattr(exc, "marked") else ""
        evidence = str(exc) + (f": {marked}" if marked else "")
        return _with_steps(ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence=evidence), steps)
    if v.equivalent:
        evidence = v.message
    else:
        evidence = v.counterexample.describe() if v.counterexample else v.message
    if v.integral_note:
        evidence += "; " + v.integral_note
    if v.defaults:
        evidence += " (" + ", ".join(f"{k} = {x}" for k, x in v.defaults.items()) + " as in the homework)"
    return _with_steps(ErrataRow(**row, verdict=v.verdict, evidence=evidence, diagnosis=v.diagnosis_text), steps)


def _steps(entry: ClaimEntry, timeout: float, seed: int):
    """The step-by-step audit of the entry's derivation (None without steps; a str when it could not run)."""
    if not entry.steps:
        return None
    try:
        return audit_steps(entry.id, entry.steps, symbols=entry.symbols, where=entry.where, assume=entry.assume,
                           rename=entry.rename, timeout=timeout, seed=seed)
    except CheckTimeout as exc:
        return f"the step-by-step audit is undecided: {exc}"
    except ValueError as exc:
        return f"the step-by-step audit could not run: {exc}"


def _with_steps(row: ErrataRow, steps) -> ErrataRow:
    if steps is None:
        return row
    if isinstance(steps, str):
        row.diagnosis = "; ".join(x for x in (row.diagnosis, steps) if x)
        return row
    row.steps, row.first_error = steps.rows, steps.first_error
    if steps.first_error:
        row.diagnosis = steps.summary
    return row


def problem_row(problem: Problem) -> ErrataRow:
    """A bad entry of a claims file as a "not checkable" row that names the file, entry and field."""
    return ErrataRow(question=problem.question or "?", part=f"entry {problem.entry}" if problem.entry else "", id="",
                     claim="(bad entry)" if problem.entry else "(no claims file)",
                     where="", verdict=Verdict.NOT_CHECKABLE, evidence=str(problem))


def audit(entries: list[ClaimEntry], timeout: float = DEFAULT_TIMEOUT, seed: int = 0,
          progress: Callable[[ClaimEntry], object] | None = None, jobs: int = 1) -> list[ErrataRow]:
    """Check every entry, in order; ``progress(entry)`` is called once per entry (for a progress bar).

    ``jobs`` > 1 checks that many entries at once, each in a forked worker process
    (the rows are the same, in the same order: each entry's points come from ``seed``
    alone); ``progress`` is then called as each entry finishes.
    """
    _check_timeout(timeout)
    if not (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        raise ParameterError("jobs", f"{{param}} must be a positive whole number, got {jobs!r}")
    if jobs == 1 or len(entries) < 2 or not can_fork():
        rows = []
        for entry in entries:
            if progress is not None:
                progress(entry)
            rows.append(audit_entry(entry, timeout=timeout, seed=seed))
        return rows
    # The workers are forked: what the parent has loaded (the registry, derivations from the disk
    # cache) they inherit instead of each loading it again.
    for rid in {e.id for e in entries if e.id in registry.ids()}:
        registry.get(rid).derivation()
    work = [Job("errata", f"{e.question} {e.part}".strip(), _audit_job, args=(e, timeout, seed)) for e in entries]
    answers = run_jobs(work, min(jobs, len(entries)),
                       on_done=None if progress is None else lambda n, _: progress(entries[n]))
    return [a if isinstance(a, ErrataRow) else _failed_row(e, a.message) for e, a in zip(entries, answers)]


def _audit_job(note, entry: ClaimEntry, timeout: float, seed: int) -> ErrataRow:  # noqa: ARG001 - no progress
    return audit_entry(entry, timeout=timeout, seed=seed)


def _failed_row(entry: ClaimEntry, message: str) -> ErrataRow:
    """An entry whose worker process failed (killed, out of memory): not checkable, saying why."""
    last = message.strip().splitlines()[-1] if message.strip() else "the worker process failed"
    return ErrataRow(**_fields(entry), verdict=Verdict.NOT_CHECKABLE, evidence=f"the check could not run: {last}")


def _fields(entry: ClaimEntry) -> dict:
    """What a row repeats of its entry."""
    return dict(question=entry.question, part=entry.part, id=entry.id, claim=entry.claim or "(none)",
                where=entry.where or "", note=entry.note)


def audit_file(path=None, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT, progress=None,
               question: str | None = None, jobs: int = 1) -> Audit:
    """Audit the write-up in the claims file ``path`` (default: the packaged homework write-up).

    A bad entry becomes a "not checkable" row naming it (file, entry, field);
    the other entries are audited. ``question`` selects entries by prefix.
    ``progress(entry)`` is called once per entry; ``jobs`` entries are checked at once (:func:`audit`).
    """
    _check_timeout(timeout)
    read = read_claims(path)
    entries = select_entries(read.entries, question) if question else read.entries
    rows = [problem_row(p) for p in read.problems if not question or p.question.startswith(question)]
    rows += audit(entries, timeout=timeout, seed=seed, progress=progress, jobs=jobs)
    return Audit(title=read.title, source=str(path) if path is not None else DEFAULT_CLAIMS, rows=rows)


def audit_files(paths: list, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT, progress=None,
                question: str | None = None, jobs: int = 1) -> list[Audit]:
    """Audit many write-ups: files, or folders of ``*.yaml`` files (a class's claims files).

    A file that is no claims file at all (not YAML, no entries) becomes an
    audit with one "not checkable" row saying why; the others are audited.
    """
    _check_timeout(timeout)
    audits = []
    for path in claims_paths(paths):
        try:
            audits.append(audit_file(path, seed=seed, timeout=timeout, progress=progress, question=question,
                                      jobs=jobs))
        except (ValueError, OSError) as exc:
            msg = exc.render({"path": ""}).strip() if hasattr(exc, "render") else f"{path}: {exc}"
            audits.append(Audit(title=os.path.basename(path), source=str(path), rows=[ErrataRow(
                question="?", part="", id="", claim="(no claims file)", where="", verdict=Verdict.NOT_CHECKABLE,
                evidence=msg)]))
    return audits


def grading_rows(audits: list[Audit]) -> list[dict]:
    """One table of many audits: a dict per answer with the :data:`GRADING_COLUMNS`."""
    out = []
    for a in audits:
        for r in a.rows:
            out.append({"write_up": a.title, "file": a.source, "question": r.question, "part": r.part, "id": r.id,
                        "verdict": r.verdict.value, "diagnosis": r.diagnosis, "first_error": r.first_error,
                        "evidence": r.evidence})
    return out


def write_grading(rows: list[dict], path, fmt: str | None = None) -> None:
    """Write the grading table as CSV (``.csv``) or JSON (anything else, or ``fmt="json"``), atomically."""
    fmt = fmt or ("csv" if str(path).endswith(".csv") else "json")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=GRADING_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
    else:
        atomic_write_text(path, json.dumps(rows, indent=2))


def select_entries(entries: list[ClaimEntry], question: str | None) -> list[ClaimEntry]:
    """The entries whose question starts with ``question`` (``5`` selects 5a, 5b, 5c); all for None."""
    if not question:
        return entries
    chosen = [e for e in entries if e.question.startswith(question)]
    if not chosen:
        raise ParameterError("question", f"{{param}} {question!r} matches no entry")
    return chosen


def _check_timeout(timeout: float) -> None:
    # Checked once up front: check() would refuse it for every entry, making each one "not checkable".
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ParameterError("timeout", f"{{param}} must be a positive number of seconds, got {timeout!r}")
