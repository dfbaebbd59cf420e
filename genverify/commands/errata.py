"""``genverify errata``: check every transcribed answer of a write-up (or of many) and print a table.

The claims live in ``genverify/claims/homework2.yaml`` (question, registry id,
optional ``where``, the LaTeX as written, optionally the derivation's steps),
or in the files given by ``--file`` (repeatable; a folder means its ``*.yaml``
files: a class's write-ups). Each is checked by
:func:`genverify.claims.errata.audit_file`; the verdicts come from checking,
never from a list. A bad entry is reported (file, entry, field) and the rest
is audited. ``--csv``/``--json`` write one grading table (write-up, question,
verdict, diagnosis). Exit 0 when the audit ran (wrong answers are its
findings), 1 with ``--strict`` if any answer is incorrect, 2 for a bad claims
file, a bad entry or a bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys

ORDER = 45

#: The library's parameter names that differ from this command's flags.
FLAGS = {"path": "--file"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "errata", help="audit every formula of a write-up (or of many): correct / incorrect / not checkable",
        description="Check each transcribed answer of the homework write-up (or of the claims files given) against "
                    "the registry and print a table: question, claim, verdict (correct / incorrect / not "
                    "checkable / undecided, with the reason), diagnosis (what is wrong; for a derivation, the "
                    "line where the error enters) and evidence (a counterexample, whether a density integrates "
                    "to 1). Several files, or a folder, give one grading table.",
        epilog="""examples:
  genverify errata
  genverify errata --question 5
  genverify errata --file alice.yaml --file bob.yaml --csv grades.csv
  genverify errata --file submissions/ --json grades.json
`genverify claims-template > alice.yaml` writes a claims file to fill in.""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", metavar="YAML", action="append",
                   help="claims file, or a folder of them; repeatable (default: the packaged claims/homework2.yaml)")
    p.add_argument("--question", metavar="Q", help="only entries of this question (prefix match: 2b, 5c)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time limit per claim and per line of a derivation (default 30)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random points (default 0)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="answers checked at once, each in its own process (default: one per core)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON to FILE")
    p.add_argument("--csv", metavar="FILE", help="also write the grading table as CSV to FILE")
    p.add_argument("--steps", action="store_true", help="print each derivation line by line")
    p.add_argument("--strict", action="store_true", help="exit 1 if any answer is incorrect")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library and rich are imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from genverify.claims.errata import audit, grading_rows, problem_row, select_entries, write_grading
    from genverify.claims.verdict import Audit, StepStatus, Verdict
    from genverify.claims.writeups import DEFAULT_CLAIMS, claims_paths, read_claims
    from genverify.io import atomic_write_text
    from genverify.parallel import default_workers

    jobs = args.jobs if args.jobs is not None else default_workers()
    paths = claims_paths(args.file) if args.file else [None]
    console = Console(width=None if Console().is_terminal else 160)
    audits: list[Audit] = []
    problems = []
    for path in paths:
        read = read_claims(path) if len(paths) == 1 else _read_or_none(read_claims, path, problems)
        if read is None:
            # Not a claims file at all: one "not checkable" row in the grading table, and exit 2.
            audits.append(Audit(title=str(path), source=str(path), rows=[problem_row(problems[-1])]))
            continue
        entries = select_entries(read.entries, args.question) if (args.question and len(paths) == 1) else \
            [e for e in read.entries if not args.question or e.question.startswith(args.question)]
        problems += read.problems
        with Progress(TextColumn("[bold]errata"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), console=console, transient=True) as progress:
            task = progress.add_task("", total=len(entries))

            def step(entry, task=task):
                progress.update(task, description=f"{entry.question} {entry.part}".strip())
                progress.advance(task) if step.started else None
                step.started = True

            step.started = False
            rows = [problem_row(p) for p in read.problems
                    if not args.question or p.question.startswith(args.question)]
            rows += audit(entries, timeout=args.timeout, seed=args.seed, progress=step, jobs=jobs)
        audits.append(Audit(title=read.title, source=path or DEFAULT_CLAIMS, rows=rows))

    style = {Verdict.CORRECT: "green", Verdict.INCORRECT: "red bold", Verdict.NOT_CHECKABLE: "yellow",
             Verdict.UNDECIDED: "magenta"}
    many = len(audits) > 1
    table = Table(title="genverify errata: " + (f"{len(audits)} write-ups" if many else audits[0].title if audits
                                                else "no write-up"), show_lines=True)
    columns = (["write-up"] if many else []) + ["question", "claim", "verdict", "diagnosis / evidence"]
    for col in columns:
        table.add_column(col, overflow="fold", max_width=60 if col == "claim" else None)
    for a in audits:
        for r in a.rows:
            question = r.question + (f"\n{r.part}" if r.part else "")
            claim = r.claim + (f"\nwhere {r.where}" if r.where else "")
            said = "\n".join(x for x in (r.diagnosis, r.evidence) if x)
            cells = ([escape(a.title)] if many else []) + [escape(question), escape(claim),
                                                           f"[{style[r.verdict]}]{r.verdict.value}[/]", escape(said)]
            table.add_row(*cells)
    console.print(table, markup=True, highlight=False)
    if args.steps:
        for a in audits:
            for r in a.rows:
                if r.steps:
                    console.print(f"\n[bold]{escape(a.title)}: {escape(r.question)} {escape(r.part)}[/]",
                                  highlight=False)
                    for s in r.steps:
                        mark = "[red bold]>>[/]" if s.n == r.first_error else "  "
                        colour = {StepStatus.FAILS: "red", StepStatus.FOLLOWS: "green",
                                  StepStatus.FOLLOWS_CORRECTED: "yellow"}.get(s.status, "white")
                        status = "" if s.status is StepStatus.START else f": [{colour}]{s.status.value}[/]"
                        console.print(f"{mark} {s.n}. {escape(s.label)}: {escape(s.claim)}\n"
                                      f"     {escape(s.relation)}{status}"
                                      + (f"  {escape(s.diagnosis)}" if s.diagnosis else ""), highlight=False)
    rows = [r for a in audits for r in a.rows]
    counts = {v: sum(r.verdict == v for r in rows) for v in Verdict}
    console.print(", ".join(f"{counts[v]} {v.value}" for v in Verdict if counts[v] or v is not Verdict.UNDECIDED)
                  + f" (of {len(rows)})", highlight=False)
    if args.json:
        if many:
            atomic_write_text(args.json, json.dumps(grading_rows(audits), indent=2))
        else:
            # One write-up: its rows (with the steps), each naming the write-up.
            atomic_write_text(args.json, json.dumps([{"write_up": audits[0].title, **r.to_json()}
                                                     for r in audits[0].rows], indent=2))
    if args.csv:
        write_grading(grading_rows(audits), args.csv, "csv")
    for p in problems:
        print(f"genverify errata: error: --file {p}", file=sys.stderr)
    if problems:
        return 2
    return 1 if args.strict and counts[Verdict.INCORRECT] else 0


def _read_or_none(read_claims, path, problems):
    """Read one of many claims files; a file that is no claims file is reported and skipped."""
    from genverify.claims.writeups import Problem
    from genverify.core import ParameterError

    try:
        return read_claims(path)
    except (ParameterError, OSError) as exc:
        msg = exc.render({"path": ""}).strip() if isinstance(exc, ParameterError) else f"{path}: {exc}"
        problems.append(Problem(str(path), 0, "", msg.split(": ", 1)[-1] if msg.startswith(str(path)) else msg))
        return None
