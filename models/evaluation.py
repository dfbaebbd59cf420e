r"""Scoring trained NICE and VAE models on held-out images, and drawing their samples (question 4).

* :func:`held_out_binary` / :func:`held_out_input`: the images a model is
  scored on (one fixed binarisation, the same for every model compared);
* :func:`nice_nll_bound`: upper bounds on NICE's negative log-likelihood of
  discrete images (uniform dequantisation, Jensen and importance-weighted);
* :func:`vae_nll`: the VAE's IWAE estimate and negative ELBO;
* :func:`mean_se`: a mean over images with its standard error;
* :func:`n_parameters`: a model's parameter count;
* :func:`sample_panels`: labelled sample batches, for the figures of
  :mod:`genverify.experiments.training_runs`.

Everything is in nats per image and runs outside autocast, in the model's dtype.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .images import as_image_tensor, binarize, dequantize, validate_int
from .training import TrainConfig

__all__ = ["held_out_binary", "held_out_input", "mean_se", "n_parameters", "nice_nll_bound", "sample_panels",
           "vae_nll"]

_DECODE_IMAGES = 512  # images per decoder pass in vae_nll: enough for fast kernels, activations of tens of MB


def held_out_binary(x, split_seed: int = 0) -> torch.Tensor:
    """One fixed binarisation b ~ Bernoulli(x) of the held-out images, the same for every model compared.

    Drawn on the CPU from its own seed so it does not depend on the device or on training.
    """
    x = as_image_tensor(x, torch.device("cpu"), name="x")
    return binarize(x, torch.Generator().manual_seed(10_000 + int(split_seed)))


def held_out_input(cfg: TrainConfig, held_x) -> tuple[torch.Tensor, int]:
    """(images, grey levels per pixel) a model of ``cfg`` is scored on, on the CPU.

    NICE trained on grey levels: the held-out images as they are (256 levels);
    otherwise the fixed binarisation of :func:`held_out_binary` (2 levels).
    """
    if cfg.model == "nice" and cfg.nice_input == "grey":
        return as_image_tensor(held_x, torch.device("cpu")), 256
    return held_out_binary(held_x, cfg.split_seed), 2


@torch.no_grad()
def nice_nll_bound(model: nn.Module, x: torch.Tensor, levels: int, k: int = 1,
                   generator: torch.Generator | None = None, batch_size: int = 500) -> dict[str, torch.Tensor]:
    r"""Upper bounds on NICE's -log P(x) in nats for discrete images x with ``levels`` values per pixel.

    The flow's continuous density p turns into a distribution over discrete
    images by integrating over each pixel's bin, P(x) = \int_{bin(x)} p(y) dy
    (bins of width 1/L: y = ((L-1) x + u) / L, u in [0, 1)^D). With u uniform,
    P(x) = E_u[p(y)] L^{-D}, so with k draws

    .. math::
        -\log P(x) \le -\tfrac1k\sum_i \log p(y_i) + D\log L \quad(\text{``bound''}),\qquad
        -\log P(x) \lessapprox -\log\tfrac1k\sum_i p(y_i) + D\log L \quad(\text{``iw''})

    The first holds by Jensen for every draw; the second is the
    importance-weighted version, a bound in expectation that tightens as k
    grows (like the VAE's IWAE). Mass the flow puts outside [0, 1]^D is lost,
    which only makes the bounds more conservative. Returns per-image tensors.
    """
    validate_int("k", k)
    p = next(model.parameters())
    bound, iw = [], []
    for xb in x.split(batch_size):
        xb = xb.to(p.device, p.dtype)
        log_p = torch.stack([model.log_prob(dequantize(xb, levels, generator)) for _ in range(k)])  # (k, n)
        d_log_l = xb[0].numel() * math.log(levels)
        bound.append(-log_p.mean(0) + d_log_l)
        iw.append(-(torch.logsumexp(log_p, 0) - math.log(k)) + d_log_l)
    return {"bound": torch.cat(bound).cpu(), "iw": torch.cat(iw).cpu()}


@torch.no_grad()
def vae_nll(model: nn.Module, x: torch.Tensor, k: int = 64, generator: torch.Generator | None = None,
            batch_size: int = 250, chunk: int | None = None) -> dict[str, torch.Tensor]:
    """The VAE's -log p(x) estimates in nats for binary images: ``iw`` (IWAE, k samples) and ``elbo`` (-ELBO).

    ``chunk`` importance samples per image go through the decoder at a time;
    the default keeps each decoder pass near ``_DECODE_IMAGES`` images. The
    conv VAE's fp32 activations at 8,000 images a pass are 0.5 GB a tensor,
    which made the CPU spend more time faulting in pages than computing.
    """
    p = next(model.parameters())
    iw, elbo = [], []
    for xb in x.split(batch_size):
        xb = xb.to(p.device, p.dtype)
        m = max(1, _DECODE_IMAGES // len(xb)) if chunk is None else chunk
        elbo.append(-model.elbo(xb, generator))
        iw.append(-model.iwae_log_likelihood(xb, k, generator=generator, chunk=min(m, k)))
    return {"iw": torch.cat(iw).cpu(), "elbo": torch.cat(elbo).cpu()}


def mean_se(values) -> tuple[float, float]:
    r"""(mean, standard error) of per-image values: :math:`\bar v` and :math:`s / \sqrt n` (nan for one value)."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std() / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def n_parameters(model: nn.Module) -> int:
    """The number of parameters of ``model``: the elements of all its parameter tensors."""
    return int(sum(p.numel() for p in model.parameters()))


def sample_panels(model: nn.Module, cfg: TrainConfig, generator: torch.Generator | None = None,
                  temperatures=(1.0,), n: int = 64) -> list[tuple[str, torch.Tensor]]:
    """Labelled samples, one panel of ``n`` images each, drawn in this order from ``generator``.

    NICE: one panel per temperature, and for binary input the first panel's
    bins (y >= 1/2). VAE: Bernoulli draws, then the decoder's pixel probabilities.
    """
    if cfg.model == "vae":
        return [("Bernoulli samples", model.sample(n, generator=generator)),
                ("pixel probabilities", model.sample(n, generator=generator, mean=True))]
    panels = [(f"temperature {t:g}", model.sample(n, temperature=t, generator=generator)) for t in temperatures]
    if cfg.nice_input == "binary":
        panels.append(("binarised (y >= 1/2)", (panels[0][1] >= 0.5).float()))
    return panels
