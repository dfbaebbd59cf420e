"""``genverify report [--out DIR] [--preset quick|homework] [--format pdf,html] [--claims FILE] [--fresh]``: the report.

Walks the registry and the experiments, reuses cached parts, and writes the
report in every format asked for (default: every one this machine can build):
``report.html`` (one self-contained page, always possible), ``report.pdf``
(latexmk, when TeX is installed) and ``report.tex``, the PDF's source (see
:mod:`genverify.report.build`). Ends by printing the paths it wrote. Exit codes:
0 built, 1 built but a check failed, or not built (LaTeX error, failed
experiment or errata audit, PDF asked for without TeX; the previous report is
kept), 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from genverify import presets

ORDER = 50
#: Library parameters whose flag is not their argparse dest.
FLAGS = {"latexmk": "--tex-only", "keep_going": "--keep-going", "formats": "--format"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="regenerate the derivation report (report.pdf, report.html)",
        description="Derive and check every registered result, run every experiment (KL fits, EM, "
                    "NICE/VAE), audit the write-up's answers (errata), and write the report grouped by homework "
                    "question: "
                    "report.html (one self-contained page: MathML, inline figures, no network), report.pdf "
                    "when TeX (latexmk) is installed, and report.tex, the PDF's source. Parts whose code "
                    "and configuration did not change are reused from .genverify-cache/ beside the output "
                    "directory; the others (each result, each experiment, the errata audit) are computed side "
                    "by side, one process per core. The build happens in a temporary directory and replaces the "
                    "previous report only when it succeeded.",
        epilog="examples:\n  genverify report                       # report/build/report.{pdf,html}, quick preset\n"
               "  genverify report --format html         # the HTML page only (no TeX needed)\n"
               "  genverify report --preset homework --out /tmp/hw2\n"
               "  genverify report --fresh                # recompute everything\n"
               "  genverify report --claims alice.yaml --out report/alice   # another write-up's errata",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output directory (default report/build); replaced as a whole on success")
    p.add_argument("--preset", choices=presets.NAMES, default=presets.DEFAULT,
                   help="experiment settings: quick (minutes on 2 CPU cores, default) or homework "
                        "(the homework's epochs and sizes)")
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="MNIST IDX files for the experiments (default: the embedded MNIST-5k)")
    p.add_argument("--fresh", action="store_true", help="ignore the cache: recompute every part")
    p.add_argument("--seed", type=int, default=0, help="base seed of checks and experiments (default 0)")
    p.add_argument("--device", default="cpu", help="torch device for the experiments (default cpu)")
    p.add_argument("--format", dest="formats", metavar="LIST", default=None,
                   help="comma-separated output formats, of pdf and html (default: every format this machine "
                        "can build: html, and pdf when TeX is installed); report.tex is always written")
    p.add_argument("--tex-only", action="store_true", help="do not run LaTeX (no report.pdf)")
    p.add_argument("--keep-going", action="store_true",
                   help="build the report even if an experiment fails (the failure is shown in it)")
    p.add_argument("--claims", metavar="FILE", default=None,
                   help="audit this write-up (a claims file, see `genverify claims-template`) in the errata "
                        "instead of the packaged one")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="processes computing parts side by side (default: one per core; 1: one process)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Here, not at the top: the report pulls in SymPy, Jinja and the claim checker; `genverify --help` must not.
    from genverify.report.build import DEFAULT_OUT, TEX_INSTALL_HINT, ReportError, build_report

    out = args.out if args.out is not None else DEFAULT_OUT
    try:
        summary = build_report(out, preset=args.preset, data_dir=args.data_dir, fresh=args.fresh,
                               seed=args.seed, device=args.device, claims=args.claims, jobs=args.jobs,
                               latexmk=not args.tex_only, formats=args.formats, keep_going=args.keep_going)
    except ReportError as exc:
        print(f"genverify report: {exc.render(FLAGS)}", file=sys.stderr)
        return 1
    if summary.tex_missing and not args.tex_only and args.formats is None:
        print(f"{TEX_INSTALL_HINT} Missing: {', '.join(summary.tex_missing)}.")
    print(f"genverify report: {summary.checks_total - summary.checks_failed}/{summary.checks_total} checks passed "
          f"in {summary.seconds:.1f} s; wrote")
    for path in summary.written:
        shown = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
        print(f"  {shown}{'  (the LaTeX source of the PDF)' if path == summary.tex else ''}")
    if summary.checks_failed:
        print(f"genverify report: {summary.checks_failed} check(s) FAILED; see the report", file=sys.stderr)
        return 1
    if summary.experiments_failed:
        print(f"genverify report: experiment(s) failed: {', '.join(summary.experiments_failed)}", file=sys.stderr)
        return 1
    if summary.errata_failed:
        print("genverify report: the errata audit failed; see the report", file=sys.stderr)
        return 1
    return 0
