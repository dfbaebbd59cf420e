"""``genverify derive ID``: show a result's derivation, step by step."""

from __future__ import annotations

import argparse

ORDER = 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("derive", help="show the SymPy derivation of a result",
                       description="Print the steps SymPy took to derive a result, and the result.")
    p.add_argument("id", help="result id (see `genverify list`)")
    p.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    import sympy as sp

    from genverify import registry

    # The result's text and its derivation, from the caches when they are there (its module is not imported).
    result = registry.describe(args.id)
    deriv = registry.derivation(args.id)
    show = sp.latex if args.latex else (lambda e: sp.pretty(e, use_unicode=True))
    key = registry.question_of(result.question)
    title = f": {registry.get_question(key).title}" if key is not None else ""
    print(f"{result.id} (question {result.question}{title}): {result.statement}\n")
    for i, step in enumerate(deriv.steps, 1):
        print(f"{i}. {step.description}")
        print("   " + show(step.expr).replace("\n", "\n   "))
        print()
    print("Result:")
    print("   " + show(deriv.result).replace("\n", "\n   "))
    return 0
