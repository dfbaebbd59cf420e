"""``genverify kl-demo``: fit q = N(m, s^2) to a Gaussian mixture by forward and by reverse KL (question 1b).

Prints the fitted parameters and both divergences of every fit and writes the
figures (PDF and PNG): ``kl_fits_1b`` (target, forward fit, reverse fits; and
how the fits move as the modes separate) and, unless ``--no-elbo``,
``elbo_bimodal_1c`` (the ELBO's Gaussian on a bimodal posterior, question 1c).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = 60
DEFAULT_OUT = "kl-demo"  # never under report/build: the report build replaces that folder whole


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "kl-demo", help="forward vs reverse KL fits of a Gaussian to a mixture (1b), with figures",
        description="Fit q = N(m, s^2) (mean and standard deviation free) to a Gaussian mixture p by minimising "
                    "forward KL(p || q) and, from several starts, reverse KL(q || p). Print the fits and both "
                    "divergences; write the 1b figure (and the 1c ELBO figure) as PDF and PNG.",
        epilog="""examples:
  genverify kl-demo                                  # the default 0.4 N(-3, 0.8^2) + 0.6 N(3, 1.2^2)
  genverify kl-demo --separation 2                   # modes 2 apart: both fits nearly agree
  genverify kl-demo --weights 0.2,0.3,0.5 --means=-4,0,4 --sds 1,1,1 --out /tmp/kl
A list starting with "-" needs "=": --means=-4,0,4.""",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"folder for the figures (default {DEFAULT_OUT})")
    p.add_argument("--separation", type=float, metavar="D",
                   help="distance between the two modes: means at -D/2 and +D/2 (default 6; two components only)")
    p.add_argument("--weights", metavar="W1,W2,...", help="mixture weights, summing to 1 (default 0.4,0.6)")
    p.add_argument("--means", metavar="M1,M2,...", help="component means (default -3,3); not with --separation")
    p.add_argument("--sds", metavar="S1,S2,...", help="component standard deviations, > 0 (default 0.8,1.2)")
    p.add_argument("--starts", type=int, default=8, metavar="N", help="starting points of the reverse fit (default 8)")
    p.add_argument("--sweep-points", type=int, default=31, metavar="N",
                   help="separations in the figure's sweep panel (default 31)")
    p.add_argument("--no-elbo", action="store_true", help="skip the 1c figure (ELBO on a bimodal posterior)")
    p.add_argument("--json", metavar="FILE", help="also write the table and numbers as JSON to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _floats(option: str, text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise ValueError(f"{option} must be numbers separated by commas, got {text!r}") from None
    if not values:
        raise ValueError(f"{option} is empty: give at least one number")
    return values


def build_target(separation: float | None, weights: str | None, means: str | None, sds: str | None):
    """The mixture the options describe; a ValueError naming the option otherwise."""
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from genverify.numerics.kl_fit import DEFAULT_MEANS, DEFAULT_SDS, DEFAULT_WEIGHTS, GaussianMixture1D

    w = _floats("--weights", weights)
    mu = _floats("--means", means)
    sd = _floats("--sds", sds)
    if separation is not None and mu is not None:
        raise ValueError("give either --separation or --means, not both")
    k = len(w) if w is not None else len(mu) if mu is not None else len(sd) if sd is not None else 2
    if separation is not None:
        if not separation >= 0:
            raise ValueError(f"--separation must be >= 0, got {separation}")
        if k != 2:
            raise ValueError(f"--separation places two components; the other options give {k}")
        mu = [-separation / 2, separation / 2]
    if k != 2 and (w is None or mu is None or sd is None):
        raise ValueError(f"a mixture of {k} components needs --weights, --means and --sds (the defaults have 2)")
    w = list(DEFAULT_WEIGHTS) if w is None else w
    mu = list(DEFAULT_MEANS) if mu is None else mu
    sd = list(DEFAULT_SDS) if sd is None else sd
    try:
        return GaussianMixture1D(w, mu, sd)
    except ValueError as exc:  # name the command-line option, not the Python argument
        msg = str(exc)
        for name in ("weights", "means", "sds"):
            msg = msg.replace(f"{name} ", f"--{name} ", 1) if msg.startswith(name) else msg
        raise ValueError(msg) from None


def run(args: argparse.Namespace) -> int:
    # The library is imported here, not at the top: `genverify --help` imports every command module.
    from rich.console import Console
    from rich.table import Table as RichTable

    from genverify.experiments.kl_fits import BIMODAL_MODEL, kl_fit_report
    from genverify.io import atomic_write_text

    if args.starts < 1:
        raise ValueError(f"--starts must be >= 1, got {args.starts}")
    if args.sweep_points < 2:
        raise ValueError(f"--sweep-points must be >= 2, got {args.sweep_points}")
    target = build_target(args.separation, args.weights, args.means, args.sds)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder")

    report = kl_fit_report(target, out, n_init=args.starts, model=None if args.no_elbo else BIMODAL_MODEL,
                           show_progress=not args.quiet, sweep_points=args.sweep_points)
    console = Console(width=None if Console().is_terminal else 120)
    console.print(f"target p = {target!r}: mean {target.mean():.4f}, sd {target.sd():.4f}", markup=False,
                  highlight=False)
    for key, tab in report.tables.items():
        table = RichTable(title=tab.caption, title_justify="left")
        for col in tab.columns:
            table.add_column(col, overflow="fold", justify="left" if col in ("fit", "q") else "right")
        for row in tab.rows:
            table.add_row(*[f"{v:.6f}" if isinstance(v, float) else str(v) for v in row])
        console.print(table)
    console.print(report.summary, markup=False, highlight=False)
    for stem in report.figures:
        console.print(f"wrote {out / stem}.pdf and {out / stem}.png", markup=False, highlight=False)
    if args.json:
        atomic_write_text(args.json, json.dumps(report.to_json(), indent=2))
    return 0
