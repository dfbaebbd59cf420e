"""``genverify verify [ID ...]``: run the checks that tie derivations to numerics."""

from __future__ import annotations

import argparse
import json

ORDER = 30


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="run every result's checks and print a table",
        description="Run each result's checks (symbolic vs hand form, numeric vs lambdified derivation, "
                    "Monte Carlo, cross-library). Exit 1 if any check fails.")
    p.add_argument("ids", nargs="*", metavar="ID", help="results to verify (default: all)")
    p.add_argument("--seed", type=int, default=0, help="base seed added to every check's own seed (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the records as JSON to FILE")
    p.add_argument("-v", "--verbose", action="store_true", help="print the detail of failed checks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from genverify import registry
    from genverify.io import atomic_write_text
    from genverify.verification import run_check

    results = registry.select(args.ids)
    console = Console(width=None if Console().is_terminal else 140)
    records = []
    total = sum(len(r.checks) for r in results)
    with Progress(TextColumn("[bold]verify"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as progress:
        task = progress.add_task("", total=total)
        for result in results:
            for chk in result.checks:
                progress.update(task, description=f"{result.id}: {chk.name}")
                records.append(run_check(result, chk, args.seed))
                progress.advance(task)
    table = Table(title="genverify verify")
    for col in ("result", "check", "figure", "status"):
        table.add_column(col, overflow="fold")
    for rec in records:
        status = "[green]verified[/]" if rec.passed else "[red bold]FAILED[/]"
        table.add_row(rec.result_id, rec.check, rec.figure, status)
    for result in results:
        if not result.checks:  # a user's result may come without checks: listed, not counted as verified
            table.add_row(result.id, "(no checks registered)", "", "[yellow]unchecked[/]")
    console.print(table)
    failed = [r for r in records if not r.passed]
    if args.verbose or failed:
        for rec in failed:
            console.print(f"[red]{rec.result_id} / {rec.check}[/]: {rec.detail}", markup=True, highlight=False)
    n_res = len([r for r in results if r.checks])
    bad_results = sorted({r.result_id for r in failed})
    unchecked = len(results) - n_res
    console.print(f"{n_res - len(bad_results)}/{n_res} results verified, {len(records) - len(failed)}/{len(records)} checks passed"
                  + (f", {unchecked} result(s) without checks" if unchecked else ""))
    if args.json:
        atomic_write_text(args.json, json.dumps([rec.__dict__ for rec in records], indent=2, default=str))
    return 1 if failed else 0
