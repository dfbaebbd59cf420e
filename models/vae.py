r"""Variational autoencoders with a Bernoulli decoder (Kingma & Welling 2014; question 4b).

Both models share one objective, the evidence lower bound per image (nats):

.. math::
    \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x)\,\|\,N(0, I)), \qquad
    \mathrm{KL} = \sum_j \tfrac12(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2)

with q(z|x) = N(mu(x), diag sigma^2(x)) sampled by reparameterisation
z = mu + sigma * eps, and log p(x|z) = sum_pixels [x log pi + (1-x) log(1-pi)],
pi = sigmoid(logits(z)). The KL term is the registry's ``kl-vae`` (question 1c)
summed over latents. The importance-weighted bound (Burda et al. 2016)

.. math:: \log p(x) \ge \mathcal{L}_k = \mathbb{E}\log\frac1k\sum_{i=1}^k \frac{p(x|z_i)p(z_i)}{q(z_i|x)}

satisfies ELBO = L_1 <= L_k <= L_{k+1} -> log p(x); ``iwae_log_likelihood``
estimates it.

* :class:`ConvVAE`: the reference implementation's architecture and defaults
  (EugenHotaj/pytorch-generative): one residual conv stage per stride,
  strides [2, 2, 2, 2], 64 hidden and 32 residual channels, 16 latent
  channels, 28 x 28 images zero-padded to 32 x 32 (so a 16 x 2 x 2 = 64-dim
  latent). The encoder outputs log sigma^2 where the reference outputs
  log sigma: the same model, parameterised differently.
* :class:`MLPVAE`: a small fully connected VAE for quick runs and tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .functional import kl_vae_torch
from .images import mlp, validate_images, validate_int

__all__ = ["BiasAfterConvTranspose2d", "ConvVAE", "MLPVAE", "ResidualBlock", "VAEBase"]

_LOG_2PI = math.log(2 * math.pi)


class VAEBase(nn.Module):
    """ELBO, loss, sampling and the IWAE estimate on top of ``encode`` / ``decode``.

    Subclasses set ``image_shape`` and ``latent_shape`` and implement
    ``encode(x) -> (mu, log_var)`` (each ``(N, *latent_shape)``) and
    ``decode(z) -> logits`` (``(N, *image_shape)``).
    """

    image_shape: tuple[int, ...]
    latent_shape: tuple[int, ...]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---------------------------------------------------------------- pieces

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        return validate_images(x, self.image_shape, name="x")

    def log_likelihood(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        r"""log p(x|z) = sum over pixels of x log pi + (1 - x) log(1 - pi), pi = sigmoid(logits); shape (N,)."""
        # Under bf16 autocast the decoder's logits are bf16: sum the per-pixel
        # terms in x's precision (bf16 values near 120 nats are spaced 0.5 apart).
        return -F.binary_cross_entropy_with_logits(logits.to(x.dtype), x, reduction="none").flatten(1).sum(1)

    @staticmethod
    def kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per image: registry ``kl-vae`` summed over latent dimensions."""
        return kl_vae_torch(mu, log_var).flatten(1).sum(1)

    def _noise(self, shape, like: torch.Tensor, generator):
        return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)

    # ---------------------------------------------------------------- objective

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Single-sample ELBO in nats per image, shape (N,); x in [0, 1] (binarised for a true likelihood)."""
        x = self._check(x)
        return self._elbo(x, generator)

    def _elbo(self, x, generator=None):
        mu, log_var = (t.to(x.dtype) for t in self.encode(x))
        z = mu + torch.exp(0.5 * log_var) * self._noise(mu.shape, mu, generator)
        return self.log_likelihood(x, self.decode(z)) - self.kl(mu, log_var)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative ELBO averaged over the batch (nats per image), the training objective."""
        return -self.elbo(x, generator).mean()

    @torch.no_grad()
    def iwae_log_likelihood(self, x: torch.Tensor, k: int = 100, generator: torch.Generator | None = None,
                            chunk: int | None = None) -> torch.Tensor:
        r"""Importance-weighted estimate of log p(x) per image (nats), shape (N,).

        .. math:: \log\frac1k\sum_{i=1}^k \exp\big(\log p(x|z_i) + \log N(z_i; 0, I) - \log q(z_i|x)\big)

        Its expectation is the bound L_k (L_1 = ELBO, increasing in k). The k
        samples are processed ``chunk`` at a time (default: all) to bound memory.
        """
        x = self._check(x)
        k = validate_int("k", k)
        chunk = k if chunk is None else validate_int("chunk", chunk)
        mu, log_var = self.encode(x)
        std = torch.exp(0.5 * log_var)
        n = x.shape[0]
        log_w = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = self._noise((m, *mu.shape), mu, generator)
            z = mu + std * eps                                                    # (m, N, *latent)
            log_q = (-0.5 * (eps ** 2 + _LOG_2PI) - 0.5 * log_var).flatten(2).sum(2)
            log_prior = (-0.5 * (z ** 2 + _LOG_2PI)).flatten(2).sum(2)
            logits = self.decode(z.reshape(m * n, *self.latent_shape))
            x_rep = x.expand(m, *x.shape).reshape(m * n, *self.image_shape)
            log_px = self.log_likelihood(x_rep, logits).reshape(m, n)
            log_w.append(log_px + log_prior - log_q)
        return torch.logsumexp(torch.cat(log_w, 0), dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, mean: bool = False) -> torch.Tensor:
        """n images from z ~ N(0, I): Bernoulli draws, or with ``mean=True`` the pixel probabilities."""
        n = validate_int("n", n)
        p = next(self.parameters())
        z = torch.randn((n, *self.latent_shape), generator=generator, device=p.device, dtype=p.dtype)
        probs = torch.sigmoid(self.decode(z))
        if mean:
            return probs
        return (torch.rand(probs.shape, generator=generator, device=p.device, dtype=p.dtype) < probs).to(p.dtype)


# -------------------------------------------------------------------- conv VAE


class ResidualBlock(nn.Module):
    """x + conv1x1(relu(conv3x3(relu(x)))): the reference's residual unit (residual_channels in the middle)."""

    def __init__(self, channels: int, residual_channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, residual_channels, 3, padding=1),
            nn.ReLU(), nn.Conv2d(residual_channels, channels, 1))

    def forward(self, x):
        return x + self.net(x)


class BiasAfterConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` with the bias added after the convolution: the same function and parameters.

    Why: in PyTorch 2.13 on the CPU (oneDNN, bfloat16, channels_last) the
    fused backward of a transposed convolution spends about twice as long on
    the bias gradient as on the weight gradient (15 ms vs 7.5 ms for the
    VAE's 64 -> 64 channel 8 -> 16 layer at batch 256; see
    ``benchmarks/bench_train.py``); as a separate addition its gradient is a
    plain sum. The bias is cast to the output's
    dtype so bfloat16 autocast keeps the output bfloat16.
    """

    def forward(self, x, output_size=None):
        if output_size is not None or self.bias is None:
            return super().forward(x, output_size)
        y = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding, self.output_padding, self.groups,
                               self.dilation)
        return y + self.bias.to(y.dtype).view(1, -1, 1, 1)


def _residual_stack(channels, residual_channels, n_blocks):
    return nn.Sequential(*[ResidualBlock(channels, residual_channels) for _ in range(n_blocks)], nn.ReLU())


def _encoder_stage(c_in, c_out, stride, hidden_channels, residual_channels, n_residual_blocks):
    """Downsample by 2 per (stride / 2) convs of kernel 4, then residual blocks, then a 3x3 conv to c_out."""
    layers: list[nn.Module] = []
    n_down = stride // 2
    for i in range(n_down):
        first, last = i == 0, i == n_down - 1
        layers += [nn.Conv2d(c_in if first else hidden_channels // 2, hidden_channels if last else hidden_channels // 2,
                             4, stride=2, padding=1), nn.ReLU()]
    layers += [_residual_stack(hidden_channels, residual_channels, n_residual_blocks),
               nn.Conv2d(hidden_channels, c_out, 3, padding=1)]
    return nn.Sequential(*layers)


def _decoder_stage(c_in, c_out, stride, hidden_channels, residual_channels, n_residual_blocks):
    """A 3x3 conv to hidden channels, residual blocks, then (stride / 2) transposed convs upsampling by 2 each."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, hidden_channels, 3, padding=1),
                               _residual_stack(hidden_channels, residual_channels, n_residual_blocks)]
    n_up = stride // 2
    for i in range(n_up):
        first, last = i == 0, i == n_up - 1
        layers.append(BiasAfterConvTranspose2d(hidden_channels if first else hidden_channels // 2,
                                         c_out if last else hidden_channels // 2, 4, stride=2, padding=1))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ConvVAE(VAEBase):
    r"""Convolutional VAE with residual blocks (the reference's architecture and defaults), Bernoulli decoder.

    The image is zero-padded to P x P, P the next multiple of the total
    downsampling factor (28 -> 32 for strides [2, 2, 2, 2]). The encoder is one
    stage per stride s: s/2 convs (kernel 4, stride 2, ReLU), a stack of
    ``n_residual_blocks`` residual blocks x + conv1x1(relu(conv3x3(relu(x))))
    followed by a ReLU, and a 3x3 conv to ``hidden_channels`` (to
    2 x ``latent_channels``, mu and log sigma^2, in the last stage). So the
    defaults map 32 -> 16 -> 8 -> 4 -> 2 with residual blocks at every
    resolution and a 16 x 2 x 2 = 64-dimensional latent. The decoder mirrors
    it stage by stage (3x3 conv, residual stack, transposed convs) and the
    logits are cropped back to the image size. As in the reference, a stage
    ends in a linear conv and the next stage starts with another.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, latent_channels: int = 16,
                 strides: tuple[int, ...] = (2, 2, 2, 2), hidden_channels: int = 64,
                 residual_channels: int = 32, n_residual_blocks: int = 2):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("image_size", image_size),
                            ("latent_channels", latent_channels), ("residual_channels", residual_channels)):
            validate_int(name, value)
        validate_int("hidden_channels", hidden_channels, 2)
        validate_int("n_residual_blocks", n_residual_blocks, 0)
        strides = tuple(strides)
        if not strides or any(not isinstance(s, int) or isinstance(s, bool) or s < 2 or s % 2 for s in strides):
            raise ValueError(f"strides must be a non-empty sequence of even integers >= 2, got {strides!r}")
        self.config = dict(in_channels=in_channels, image_size=image_size, latent_channels=latent_channels,
                           strides=strides, hidden_channels=hidden_channels,
                           residual_channels=residual_channels, n_residual_blocks=n_residual_blocks)
        factor = 2 ** sum(s // 2 for s in strides)
        padded = -(-image_size // factor) * factor
        self.pad_lo = (padded - image_size) // 2
        self.pad_hi = padded - image_size - self.pad_lo
        self.image_shape = (in_channels, image_size, image_size)
        self.latent_shape = (latent_channels, padded // factor, padded // factor)
        widths = dict(hidden_channels=hidden_channels, residual_channels=residual_channels,
                      n_residual_blocks=n_residual_blocks)
        last = len(strides) - 1
        self.encoder = nn.Sequential(*[
            _encoder_stage(in_channels if i == 0 else hidden_channels,
                           2 * latent_channels if i == last else hidden_channels, s, **widths)
            for i, s in enumerate(strides)])
        self.decoder = nn.Sequential(*[
            _decoder_stage(latent_channels if i == 0 else hidden_channels,
                           in_channels if i == last else hidden_channels, s, **widths)
            for i, s in enumerate(reversed(strides))])

    def encode(self, x):
        h = F.pad(x, (self.pad_lo, self.pad_hi, self.pad_lo, self.pad_hi))
        mu, log_var = self.encoder(h).chunk(2, dim=1)
        return mu, log_var

    def decode(self, z):
        logits = self.decoder(z)
        size = self.image_shape[-1]
        return logits[:, :, self.pad_lo:self.pad_lo + size, self.pad_lo:self.pad_lo + size]


# -------------------------------------------------------------------- MLP VAE


class MLPVAE(VAEBase):
    """Small fully connected VAE: D -> hidden... -> (mu, log sigma^2) in R^latent_dim -> hidden... -> logits.

    ``hidden_features`` lists the encoder widths; the decoder uses them reversed.
    """

    def __init__(self, n_features: int = 784, hidden_features: tuple[int, ...] = (512, 256), latent_dim: int = 16,
                 image_shape: tuple[int, ...] | None = None):
        super().__init__()
        validate_int("n_features", n_features)
        validate_int("latent_dim", latent_dim)
        hidden_features = tuple(hidden_features)
        for h in hidden_features:
            validate_int("hidden_features", h)
        if image_shape is None:
            image_shape = (1, 28, 28) if n_features == 784 else (n_features,)
        image_shape = tuple(image_shape)
        if math.prod(image_shape) != n_features:
            raise ValueError(f"image_shape {image_shape} does not have n_features={n_features} pixels")
        self.config = dict(n_features=n_features, hidden_features=hidden_features, latent_dim=latent_dim,
                           image_shape=image_shape)
        self.image_shape = image_shape
        self.latent_shape = (latent_dim,)
        self.encoder = mlp([n_features, *hidden_features, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden_features), n_features])

    def encode(self, x):
        mu, log_var = self.encoder(x.flatten(1)).chunk(2, dim=1)
        return mu, log_var

    def decode(self, z):
        return self.decoder(z).reshape(z.shape[0], *self.image_shape)
