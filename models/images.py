"""Batched image checks and preprocessing shared by the generative models (question 4).

Everything here works on whole batches already on the device: no per-image
Python, which is where a DataLoader with per-image transforms spends its time.
Also the models' shared pieces: the integer-argument check and the MLP block.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

#: One MNIST image: (channels, height, width).
IMAGE_SHAPE = (1, 28, 28)


def validate_int(name: str, value, low: int = 1) -> int:
    """Return ``value`` after checking it is an int (not a bool) >= ``low``; ValueError naming ``name`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def mlp(widths) -> nn.Sequential:
    """Linear layers between consecutive ``widths``, a ReLU after every one but the last."""
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def validate_images(x: torch.Tensor, shape: tuple[int, ...], name: str = "x", check_range: bool = True) -> torch.Tensor:
    """Return ``x`` viewed as ``(N, *shape)`` after checking it is a batch of images in [0, 1].

    Accepts ``(N, *shape)`` or the flattened ``(N, prod(shape))``. Raises
    ``ValueError`` naming ``name`` for a non-tensor, a wrong shape, non-finite
    values, or (with ``check_range``) values outside [0, 1].
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    n_features = math.prod(shape)
    if x.dim() >= 1 and tuple(x.shape[1:]) == tuple(shape):
        pass
    elif x.dim() == 2 and x.shape[1] == n_features:
        x = x.reshape(x.shape[0], *shape)
    else:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}) or (N, {n_features}), "
                         f"got {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    if check_range and x.numel() and (bool((x < 0).any()) or bool((x > 1).any())):
        raise ValueError(f"{name} must have values in [0, 1], got range [{float(x.min()):.4g}, {float(x.max()):.4g}]")
    return x


def as_image_tensor(data, device: torch.device, name: str = "data",
                    shape: tuple[int, ...] = IMAGE_SHAPE) -> torch.Tensor:
    """A checked float32 tensor (N, *shape) on ``device`` from an array or tensor of images in [0, 1]."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    x = validate_images(data, shape, name=name)
    if len(x) == 0:
        raise ValueError(f"{name} must contain at least one image")
    return x.to(device=device, dtype=torch.float32)


def dequantize(x: torch.Tensor, levels: int = 256, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Uniform dequantisation of pixels in [0, 1] with ``levels`` grey levels (question 4, NICE input).

    .. math:: y = \frac{(L-1)\,x + u}{L}, \qquad u \sim U(0, 1)

    so each discrete value k/(L-1) is spread over the bin [k/L, (k+1)/L).
    With L = 2 this dequantises binarised images. A density p on [0, 1]^D
    then bounds the discrete likelihood: log P(x) >= E_u[log p(y)] - D log L.
    """
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels!r}")
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return ((levels - 1) * x + u) / levels


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarisation: each pixel is 1 with probability equal to its intensity (question 4, VAE input)."""
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (u < x).to(x.dtype)


def image_grid(x: torch.Tensor, nrow: int = 8, pad: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile a batch of single-channel images (N, 1, H, W) or (N, H, W) into one (rows*(H+pad)+pad, ...) image.

    Values are clipped to [0, 1] (flow samples can leave it); empty cells at the end are ``pad_value``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4) or (x.dim() == 4 and x.shape[1] != 1):
        raise ValueError(f"x must be a tensor of shape (N, 1, H, W) or (N, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be a positive integer, got {nrow!r}")
    x = x.detach().float().cpu().reshape(x.shape[0], x.shape[-2], x.shape[-1]).clamp(0.0, 1.0)
    n, h, w = x.shape
    cols = min(nrow, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    grid = torch.full((rows * (h + pad) + pad, cols * (w + pad) + pad), float(pad_value))
    for i in range(n):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = x[i]
    return grid
