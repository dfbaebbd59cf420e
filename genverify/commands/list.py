"""``genverify list``: the registry's ids, statements and symbols."""

from __future__ import annotations

import argparse

ORDER = 10


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered results",
                       description="List every result, grouped under the question it answers: id, question, "
                                   "statement and free symbols. Includes users' results modules (see "
                                   "`genverify --help`).")
    p.add_argument("--question", help="only results answering this question (e.g. 5b; 2b includes 2b-iii)")
    p.set_defaults(func=run)


def grouped(results, questions, question_of) -> list[tuple[object, list]]:
    """``results`` under the questions they answer, in the questions' order; a question of ``None`` for the rest."""
    groups: dict[object, list] = {q.key: [] for q in questions}
    rest = []
    for r in results:
        key = question_of(r.question)
        (groups[key] if key in groups else rest).append(r)
    by_key = {q.key: q for q in questions}
    out = [(by_key[k], rs) for k, rs in groups.items() if rs]
    return out + ([(None, rest)] if rest else [])


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from genverify import registry

    # Text only, from the registry's index: no topic module is imported, nothing is derived.
    results = registry.catalog()
    if args.question:
        results = [r for r in results
                   if r.question == args.question or registry.question_of(r.question) == args.question]
        if not results:
            raise ValueError(f"--question {args.question!r} matches no result")
    table = Table(title="genverify results", show_lines=False)
    for col in ("id", "question", "statement", "symbols"):
        table.add_column(col, overflow="fold")
    # Grouped under the registered questions (the homework's, then those of users' results modules).
    for question, members in grouped(results, registry.questions(), registry.question_of):
        if question is not None:
            table.add_row("", f"[bold]{escape(question.key)}[/]", f"[bold]{escape(question.title)}[/]", "")
        for i, r in enumerate(members):
            table.add_row(r.id, r.question, escape(r.statement), escape(r.symbols),
                          end_section=i == len(members) - 1)
    Console().print(table)
    return 0
