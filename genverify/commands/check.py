"""``genverify check ID EXPR [--where COND] [--latex]``: is a claimed formula the verified result?

Flags in, :func:`genverify.claims.checker.check` called, the outcome printed.
Exit codes: 0 equivalent, 1 not equivalent (a counterexample is printed),
2 cannot be checked (parse error, unknown id or symbol, refused input, time
limit, bad argument: the library names the parameter, the CLI the flag).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

ORDER = 40


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="check a claimed formula against a result; print a counterexample if it is wrong",
        description="Compare a claimed formula (SymPy/Python style or LaTeX) with the verified result ID: "
                    "symbolic equivalence first, then high-precision comparison at random points of the "
                    "domain. For a density, also report whether the claim integrates to 1. Exit 0 if "
                    "equivalent, 1 if not, 2 if the claim cannot be checked.",
        epilog=r"""examples:
  genverify check lognormal-pdf "exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))"
  genverify check lognormal-pdf '\frac{1}{\sigma\sqrt{2\pi z}} e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}}'
  genverify check square-distance-cdf "pi*z**2/4" --where "0 < z < 1"
  genverify check kl-uniform-reverse '\infty'
A formula starting with '-' goes after '--':  genverify check kl-vae -- "-log(sigma) + ..."
`genverify list` shows each result's symbols.""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("id", metavar="ID", help="result id (see `genverify list`)")
    p.add_argument("expr", metavar="EXPR", help="the claimed formula, in the result's symbols")
    p.add_argument("--where", metavar="COND",
                   help='compare only where COND holds, e.g. "1 < z < sqrt(2)" (one piece of a piecewise answer)')
    notation = p.add_mutually_exclusive_group()
    notation.add_argument("--latex", dest="latex", action="store_const", const=True, default=None,
                          help="read EXPR as LaTeX (default: detected: a backslash or brace means LaTeX)")
    notation.add_argument("--no-latex", dest="latex", action="store_const", const=False,
                          help="read EXPR as SymPy/Python-style math")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time limit for the check (default 30); exceeding it exits 2")
    p.add_argument("--points", type=int, default=100, metavar="N",
                   help="random points for the numeric comparison (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random points (default 0)")
    p.add_argument("--json", metavar="FILE", help="also write the verdict as JSON to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from genverify.claims.checker import check
    from genverify.claims.verdict import Verdict
    from genverify.io import atomic_write_text

    try:
        outcome = check(args.id, args.expr, where=args.where, latex=args.latex,
                        timeout=args.timeout, points=args.points, seed=args.seed)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback for user input; the message names the bug
        raise ValueError(f"internal error while checking the claim ({type(exc).__name__}: {exc})") from None
    print(f"{args.id}: {outcome.report()}")
    if args.json:
        atomic_write_text(args.json, json.dumps(dataclasses.asdict(outcome), indent=2, default=str))
    return 0 if outcome.verdict is Verdict.CORRECT else 1
