"""Experiment ``errata``: the audit of every formula in the homework write-up, for the report.

Runs :func:`genverify.claims.check.audit` over the packaged claims
(``genverify/claims/homework2.yaml``) and returns the table question / claim /
verdict / evidence. Each verdict comes from checking the claim against the
registry (symbolic equivalence, then 40-digit comparison at random points of
the domain; for densities the claim's integral), never from a list. An entry
whose result is not in the registry, or for which the write-up gives no
formula, is reported as "not checkable" with that reason.
"""

from __future__ import annotations

import dataclasses
import json

from tqdm import tqdm

from genverify.claims.check import DEFAULT_CLAIMS, DEFAULT_TIMEOUT, audit, load_claims
from genverify.claims.verdict import Audit, Verdict
from genverify.core import Experiment, ExperimentConfig, ExperimentOutput, Table
from genverify.io import atomic_write_text

COLUMNS = ["question", "part", "id", "claim", "where", "verdict", "evidence"]


def audit_file(path=None, *, seed: int = 0, timeout: float = DEFAULT_TIMEOUT, progress=None) -> Audit:
    """Audit the write-up in the claims file ``path`` (default: the packaged homework write-up).

    ``progress(entry)`` is called before each entry is checked.
    """
    title, entries = load_claims(path)
    rows = audit(entries, timeout=timeout, seed=seed, progress=progress)
    return Audit(title=title, source=str(path) if path is not None else DEFAULT_CLAIMS, rows=rows)


def run(config: ExperimentConfig) -> ExperimentOutput:
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
    atomic_write_text(config.out_dir / "errata.json", json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
    counts = {v.value: sum(r.verdict == v for r in rows) for v in Verdict}
    table = Table(columns=COLUMNS,
                  rows=[[r.question, r.part, r.id, r.claim, r.where, r.verdict.value, r.evidence] for r in rows],
                  caption=f"Errata of the write-up ({title}): each transcribed answer checked against the registry.")
    wrong = ", ".join(f"{r.question}{' (' + r.part + ')' if r.part else ''}" for r in rows if r.verdict == Verdict.INCORRECT)
    summary = (f"Of {len(rows)} transcribed formulas, {counts['correct']} are correct, {counts['incorrect']} "
               f"incorrect{(' (' + wrong + ')') if wrong else ''} and {counts['not checkable']} not checkable.")
    return ExperimentOutput(tables={"errata": table},
                            numbers={k.replace(" ", "_"): n for k, n in counts.items()}, summary=summary)



#: The audit as a part of the report (it reads the registry, so it sits above it, with the claims).
ERRATA_EXPERIMENT = Experiment(
    id="errata",
    title="Errata of the homework write-up",
    question="errata",
    run="genverify.claims.errata:run",
)
