"""``genverify claims-template [--question Q] [--output FILE]``: a claims file to fill in, for any write-up.

Prints YAML with one entry per registered result (``claim: null``), each with
comments giving its statement, symbols, notation and an example claim (the
notation, not the answer): :func:`genverify.claims.template.claims_template`.
Fill in a student's formulas and run ``genverify errata --file``.
"""

from __future__ import annotations

import argparse

ORDER = 46


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "claims-template", help="print a claims file (YAML) to fill in with a write-up's formulas",
        description="Print a YAML skeleton of every result (id, symbols, notation, an example claim that shows "
                    "the notation): fill in the formulas of a write-up and audit it with "
                    "`genverify errata --file FILE`.",
        epilog="""examples:
  genverify claims-template > alice.yaml
  genverify claims-template --question 5 --output alice-q5.yaml""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--question", metavar="Q", help="only results of this question (prefix match: 2c, 5)")
    p.add_argument("--homework", metavar="TITLE", default="Homework 2 (your write-up)",
                   help="the title written into the file")
    p.add_argument("--statements", action="store_true",
                   help="also write each result's statement as a comment (it states the answer: a grader's copy)")
    p.add_argument("--output", metavar="FILE", help="write the YAML to FILE instead of printing it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from genverify.claims.template import claims_template
    from genverify.io import atomic_write_text

    text = claims_template(args.question, homework=args.homework, statements=args.statements)
    if args.output:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0
