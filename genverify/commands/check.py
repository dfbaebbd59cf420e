"""``genverify check ID [EXPR] [--where COND] [--test T] [--rtol R] [--steps FILE]``: is a claimed formula right?

Flags in, :func:`genverify.claims.checker.check` (and, with ``--steps``,
:func:`genverify.claims.steps.audit_steps`) called, the outcome printed.
Exit codes: 0 the claim passes the test (and every step follows), 1 it does
not (a counterexample and, when found, a diagnosis are printed), 2 it cannot
be checked (parse error, shown with a caret under the place; unknown id or
symbol; refused input; bad argument: the library names the parameter, the CLI
the flag) or the time limit was reached (undecided, never "wrong").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

ORDER = 40

#: The library's parameter names that differ from this command's flags.
FLAGS = {"path": "--steps"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="check a claimed formula against a result; print a counterexample and a diagnosis if it is wrong",
        description="Compare a claimed formula (SymPy/Python style, natural input such as '2pi z' or 'ln z', or "
                    "LaTeX) with the verified result ID: symbolic equivalence first, then high-precision "
                    "comparison at random points of the domain. A wrong claim gets a counterexample and, when "
                    "SymPy can tell, a diagnosis (off by a factor, an additive term, a sign, one term, wrong on "
                    "part of the domain, right up to normalisation, variables renamed). For a density, also "
                    "report whether the claim integrates to 1. --steps audits a derivation line by line. Exit 0 "
                    "if it passes, 1 if not, 2 if it cannot be checked or the time limit was reached.",
        epilog=r"""examples:
  genverify check lognormal-pdf "exp(-(log(z)-mu)**2/(2*sigma**2))/(z*sigma*sqrt(2*pi))"
  genverify check lognormal-pdf '\frac{1}{\sigma\sqrt{2\pi z}} e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}}'
  genverify check lognormal-pdf "1/(z sigma sqrt(2pi)) exp(-(ln z - mu)^2/(2 sigma^2))"
  genverify check square-distance-cdf "pi*z**2/4" --where "0 < z < 1"
  genverify check kl-uniform-forward 1.3863
  genverify check kl-vae "(mu^2 + sigma^2 - log sigma^2)/2" --test up-to-constant
  genverify check lognormal-pdf "0.3989/(z sigma) exp(-(ln z - mu)^2/(2 sigma^2))" --test numeric --rtol 1e-3
  genverify check lognormal-pdf --steps chain.yaml
A formula starting with '-' goes after '--':  genverify check kl-vae -- "-log(sigma) + ..."
`genverify list` shows each result's symbols; `genverify claims-template` a claims file for them.""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("id", metavar="ID", help="result id (see `genverify list`)")
    p.add_argument("expr", metavar="EXPR", nargs="?", help="the claimed formula, in the result's symbols")
    p.add_argument("--where", metavar="COND",
                   help='compare only where COND holds, e.g. "1 < z < sqrt(2)" (one piece of a piecewise answer)')
    p.add_argument("--test", default="equivalent",
                   choices=["equivalent", "up-to-constant", "proportional", "numeric"],
                   help="the answer test (default equivalent; up-to-constant: claim - result does not depend "
                        "on the variable; proportional: claim / result does not; numeric: numbers only)")
    p.add_argument("--rtol", type=float, metavar="R",
                   help="relative tolerance of the numeric comparison (default 1e-25; 1e-9 for --test numeric)")
    p.add_argument("--steps", metavar="FILE",
                   help="also audit a derivation: a YAML list of lines (claim, label, relation), or a mapping "
                        "with steps, symbols, assume, where, rename; see genverify/claims/homework2.yaml")
    notation = p.add_mutually_exclusive_group()
    notation.add_argument("--latex", dest="latex", action="store_const", const=True, default=None,
                          help="read EXPR as LaTeX (default: detected: a backslash or brace means LaTeX)")
    notation.add_argument("--no-latex", dest="latex", action="store_const", const=False,
                          help="read EXPR as SymPy/Python-style math")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                   help="time limit for the check, and for each line of --steps (default 30); reaching it "
                        "exits 2 (undecided)")
    p.add_argument("--points", type=int, default=100, metavar="N",
                   help="random points for the numeric comparison (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed for the random points (default 0)")
    p.add_argument("--no-diagnosis", dest="diagnose", action="store_false",
                   help="do not look for what is wrong (faster)")
    p.add_argument("--json", metavar="FILE", help="also write the verdict (and the steps) as JSON to FILE")
    p.set_defaults(func=run)
    _claim_after_options(p)


def _claim_after_options(p: argparse.ArgumentParser) -> None:
    """Let EXPR (optional, since --steps may stand alone) come after the options: ``check ID --timeout 10 -- EXPR``.

    argparse fills an optional positional as soon as it reads the one before
    it (ID), so a later EXPR would be left over as unrecognized; here a single
    left-over string becomes EXPR.
    """
    original = p.parse_known_args

    def parse_known_args(args=None, namespace=None):
        ns, extras = original(args, namespace)
        rest = [a for a in extras if a != "--"]
        if getattr(ns, "expr", None) is None and len(rest) == 1:
            ns.expr, extras = rest[0], []
        return ns, extras

    p.parse_known_args = parse_known_args


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from genverify.claims.checker import check
    from genverify.claims.errors import CheckTimeout, ClaimError
    from genverify.core import ParameterError
    from genverify.io import atomic_write_text

    if args.expr is None and args.steps is None:
        raise ParameterError("expr", "{param} is needed (or --steps FILE)")
    record: dict = {}
    code = 0
    try:
        if args.expr is not None:
            outcome = check(args.id, args.expr, where=args.where, latex=args.latex, test=args.test, rtol=args.rtol,
                            timeout=args.timeout, points=args.points, seed=args.seed, diagnose=args.diagnose)
            print(f"{args.id}: {outcome.report()}")
            record["check"] = dataclasses.asdict(outcome)
            code = 0 if outcome.equivalent else 1
        if args.steps is not None:
            code = max(code, _steps(args, record))
    except CheckTimeout as exc:
        print(f"genverify check: UNDECIDED (not wrong): {exc}; try a larger --timeout", file=sys.stderr)
        return 2
    except ClaimError as exc:
        caret = exc.caret()
        if caret and not isinstance(exc, ParameterError):
            # The message, then the claim with a caret under the offending character.
            print(f"genverify check: error: {exc}\n{caret}", file=sys.stderr)
            return 2
        raise
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a traceback for user input; the message names the bug
        raise ValueError(f"internal error while checking the claim ({type(exc).__name__}: {exc})") from None
    if args.json:
        data = record.get("check", {}) if args.steps is None else record
        atomic_write_text(args.json, json.dumps(data, indent=2, default=str))
    return code


def _steps(args: argparse.Namespace, record: dict) -> int:
    from genverify.claims.steps import audit_steps
    from genverify.claims.writeups import read_steps

    spec = read_steps(args.steps)
    audit = audit_steps(args.id, spec.steps, symbols=spec.symbols, where=spec.where or args.where,
                        assume=spec.assume, rename=spec.rename, timeout=args.timeout, seed=args.seed)
    print(audit.report())
    record["steps"] = {"first_error": audit.first_error, "summary": audit.summary,
                       "rows": [r.to_json() for r in audit.rows]}
    return 1 if audit.first_error else 0
