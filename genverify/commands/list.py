"""``genverify list``: the registry's ids, statements and symbols."""

from __future__ import annotations

import argparse

ORDER = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered results",
                       description="List every result: id, homework question, statement and free symbols.")
    p.add_argument("--question", help="only results answering this question (e.g. 5b)")
    p.set_defaults(func=run)


def describe_symbols(result) -> str:
    import sympy as sp  # here, not at the top: `genverify --help` imports every command module

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


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from genverify import registry

    results = registry.all_results()
    if args.question:
        results = [r for r in results if r.question == args.question]
        if not results:
            raise ValueError(f"--question {args.question!r} matches no result")
    table = Table(title="genverify results", show_lines=False)
    for col in ("id", "question", "statement", "symbols"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(r.id, r.question, escape(r.statement), escape(describe_symbols(r)))
    Console().print(table)
    return 0
