"""``genverify errata``: check every transcribed answer of the homework write-up and print a table.

The claims live in ``genverify/claims/homework2.yaml`` (question, registry id,
optional ``where``, the LaTeX as written), or in the file given by ``--file``.
Each is checked by :func:`genverify.claims.errata.audit`; the verdicts come
from checking, never from a list. Exit 0 when the audit ran (wrong answers
are its findings), 1 with ``--strict`` if any answer is incorrect, 2 for a
bad claims file or argument.
"""

from __future__ import annotations

import argparse
import json

ORDER = 45

#: The library's parameter names that differ from this command's flags.
FLAGS = {"path": "--file"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "errata", help="audit every formula of the homework write-up: correct / incorrect / not checkable",
        description="Check each transcribed answer of the homework write-up against the registry and print "
                    "a table: question, claim, verdict (correct / incorrect / not checkable, with the reason) "
                    "and evidence (a counterexample, whether a density integrates to 1).")
    p.add_argument("--file", metavar="YAML", help="claims file (default: the packaged claims/homework2.yaml)")
    p.add_argument("--question", metavar="Q", help="only entries of this question (prefix match: 2b, 5c)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time limit per claim (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random points (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON to FILE")
    p.add_argument("--strict", action="store_true", help="exit 1 if any answer is incorrect")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library and rich are imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from genverify.claims.errata import audit, select_entries
    from genverify.claims.verdict import Verdict
    from genverify.claims.writeups import load_claims
    from genverify.io import atomic_write_text

    title, entries = load_claims(args.file)
    entries = select_entries(entries, args.question)
    console = Console(width=None if Console().is_terminal else 160)
    with Progress(TextColumn("[bold]errata"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=len(entries))

        def step(entry):
            progress.update(task, description=f"{entry.question} {entry.part}".strip())
            progress.advance(task) if step.started else None
            step.started = True

        step.started = False
        rows = audit(entries, timeout=args.timeout, seed=args.seed, progress=step)
    table = Table(title=f"genverify errata: {title}", show_lines=True)
    for col, kw in (("question", {}), ("claim", {"overflow": "fold", "max_width": 60}),
                    ("verdict", {}), ("evidence", {"overflow": "fold"})):
        table.add_column(col, **kw)
    style = {Verdict.CORRECT: "green", Verdict.INCORRECT: "red bold", Verdict.NOT_CHECKABLE: "yellow"}
    for r in rows:
        question = r.question + (f"\n{r.part}" if r.part else "")
        claim = r.claim + (f"\nwhere {r.where}" if r.where else "")
        table.add_row(escape(question), escape(claim), f"[{style[r.verdict]}]{r.verdict.value}[/]", escape(r.evidence))
    console.print(table, markup=True, highlight=False)
    counts = {v: sum(r.verdict == v for r in rows) for v in Verdict}
    console.print(", ".join(f"{counts[v]} {v.value}" for v in Verdict) + f" (of {len(rows)})", highlight=False)
    if args.json:
        atomic_write_text(args.json, json.dumps([r.to_json() for r in rows], indent=2))
    return 1 if args.strict and counts[Verdict.INCORRECT] else 0
