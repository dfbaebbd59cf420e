"""The errata audit: every formula of a write-up checked against the registry.

Each transcribed answer (:class:`~genverify.claims.writeups.ClaimEntry`) is
run through :func:`genverify.claims.checker.check` (symbolic equivalence,
then 40-digit comparison at random points of the domain; for densities the
claim's integral), and becomes an :class:`~genverify.claims.verdict.ErrataRow`:
correct, incorrect (with the counterexample as evidence), or not checkable
with the reason (no formula in the write-up, a result not in the registry
yet, a claim that does not parse). The verdicts come from checking, never
from a list.

* :func:`audit_entry` / :func:`audit`: one entry / a list of entries;
* :func:`audit_file`: a whole claims file (default: the packaged homework
  write-up) -> :class:`~genverify.claims.verdict.Audit`;
* :data:`ERRATA_EXPERIMENT` (``run``): the audit as a part of the report,
  the table question / claim / verdict / evidence. It reads the registry, so
  it sits above it, with the claims.
"""

from __future__ import annotations

import json
from typing import Callable

from tqdm import tqdm

from genverify import registry
from genverify.claims.checker import DEFAULT_TIMEOUT, check
from genverify.claims.verdict import Audit, ErrataRow, Verdict
from genverify.claims.writeups import DEFAULT_CLAIMS, ClaimEntry, load_claims
from genverify.core import Experiment, ExperimentConfig, ExperimentOutput, ParameterError, Table
from genverify.io import atomic_write_text

__all__ = ["audit_entry", "audit", "audit_file", "select_entries", "run", "ERRATA_EXPERIMENT", "COLUMNS"]

COLUMNS = ["question", "part", "id", "claim", "where", "verdict", "evidence"]


def audit_entry(entry: ClaimEntry, timeout: float = DEFAULT_TIMEOUT, seed: int = 0) -> ErrataRow:
    """Check one transcribed answer; never raises for a claim that cannot be checked."""
    row = dict(question=entry.question, part=entry.part, id=entry.id, claim=entry.claim or "(none)",
               where=entry.where or "", note=entry.note)
    text = entry.text_to_check()
    if text is None:
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence="no formula given in the write-up")
    if entry.id not in registry.ids():
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE,
                         evidence=f"result not registered (no result {entry.id!r} in the registry yet)")
    try:
        v = check(entry.id, text, where=entry.where, latex=True, timeout=timeout, seed=seed)
    except ValueError as exc:
        return ErrataRow(**row, verdict=Verdict.NOT_CHECKABLE, evidence=str(exc))
    if v.equivalent:
        evidence = v.message
    else:
        evidence = v.counterexample.describe() if v.counterexample else v.message
    if v.integral_note:
        evidence += "; " + v.integral_note
    if v.defaults:
        evidence += " (" + ", ".join(f"{k} = {x}" for k, x in v.defaults.items()) + " as in the homework)"
    return ErrataRow(**row, verdict=v.verdict, evidence=evidence)


def audit(entries: list[ClaimEntry], timeout: float = DEFAULT_TIMEOUT, seed: int = 0,
          progress: Callable[[ClaimEntry], object] | None = None) -> list[ErrataRow]:
    """Check every entry; ``progress(entry)`` is called before each (for a progress bar)."""
    _check_timeout(timeout)
    rows = []
    for entry in entries:
        if progress is not None:
            progress(entry)
        rows.append(audit_entry(entry, timeout=timeout, seed=seed))
    return rows


def audit_file(path=None, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT, progress=None) -> Audit:
    """Audit the write-up in the claims file ``path`` (default: the packaged homework write-up).

    ``progress(entry)`` is called before each entry is checked.
    """
    _check_timeout(timeout)
    title, entries = load_claims(path)
    rows = audit(entries, timeout=timeout, seed=seed, progress=progress)
    return Audit(title=title, source=str(path) if path is not None else DEFAULT_CLAIMS, rows=rows)


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


def run(config: ExperimentConfig) -> ExperimentOutput:
    """The experiment: audit the packaged write-up; the errata table, counts per verdict, a summary."""
    title, entries = load_claims()
    progress = None
    if config.show_progress:
        bar = tqdm(total=len(entries), desc="errata", leave=False)

        def progress(entry, _bar=bar):  # noqa: ANN001
            _bar.set_postfix_str(entry.question)
            _bar.update(1)

    rows = audit(entries, seed=config.seed, progress=progress)
    if config.show_progress:
        bar.close()
    config.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config.out_dir / "errata.json", json.dumps([r.to_json() for r in rows], indent=2))
    counts = Audit(title=title, source=DEFAULT_CLAIMS, rows=rows).counts()
    table = Table(columns=COLUMNS,
                  rows=[[r.question, r.part, r.id, r.claim, r.where, r.verdict.value, r.evidence] for r in rows],
                  caption=f"Errata of the write-up ({title}): each transcribed answer checked against the registry.")
    wrong = ", ".join(f"{r.question}{' (' + r.part + ')' if r.part else ''}" for r in rows if r.verdict == Verdict.INCORRECT)
    summary = (f"Of {len(rows)} transcribed formulas, {counts[Verdict.CORRECT]} are correct, "
               f"{counts[Verdict.INCORRECT]} incorrect{(' (' + wrong + ')') if wrong else ''} and "
               f"{counts[Verdict.NOT_CHECKABLE]} not checkable.")
    return ExperimentOutput(tables={"errata": table},
                            numbers={v.value.replace(" ", "_"): n for v, n in counts.items()}, summary=summary)


#: The audit as a part of the report (it reads the registry, so it sits above it, with the claims).
ERRATA_EXPERIMENT = Experiment(
    id="errata",
    title="Errata of the homework write-up",
    question="errata",
    run="genverify.claims.errata:run",
)
