"""Invertible transforms in the style of ``torch.distributions.transforms`` (question 6)."""

from __future__ import annotations

import math

import torch
from torch.distributions import constraints
from torch.distributions.transforms import Transform


class LeakyReLUTransform(Transform):
    r"""Elementwise Leaky ReLU as a bijection of the real line.

    .. math::
        x = f(z) = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}, \qquad
        f^{-1}(x) = \begin{cases} x & x > 0 \\ x/\alpha & x \le 0 \end{cases}, \qquad
        \log\left|\frac{df}{dz}\right| = \begin{cases} 0 & z > 0 \\ \log\alpha & z \le 0 \end{cases}

    ``log_abs_det_jacobian`` is elementwise (event_dim 0), as for every
    scalar transform in torch; for the map on R^n (homework question 6) wrap it
    as ``IndependentTransform(LeakyReLUTransform(), 1)``, which sums it to
    n_neg log(alpha). The slope at 0 is alpha, as in torch's leaky_relu gradient.

    Reference: Prince, *Understanding Deep Learning*, ch. 16 (normalizing flows).

    >>> import torch
    >>> from torch.distributions import Normal, TransformedDistribution
    >>> d = TransformedDistribution(Normal(0.0, 1.0), [LeakyReLUTransform(0.1)])
    >>> bool(torch.isclose(d.log_prob(torch.tensor(-0.1)), Normal(0.0, 1.0).log_prob(torch.tensor(-1.0)) - math.log(0.1)))
    True
    """

    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1

    def __init__(self, alpha: float = 0.1, cache_size: int = 0):
        if not (isinstance(alpha, (int, float)) and 0.0 < float(alpha) < 1.0 and math.isfinite(alpha)):
            raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
        super().__init__(cache_size=cache_size)
        self.alpha = float(alpha)

    def __eq__(self, other):
        return isinstance(other, LeakyReLUTransform) and other.alpha == self.alpha

    def __hash__(self):
        return hash((type(self), self.alpha))

    def with_cache(self, cache_size: int = 1):
        if self._cache_size == cache_size:
            return self
        return LeakyReLUTransform(self.alpha, cache_size=cache_size)

    def _call(self, z: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, z, self.alpha * z)

    def _inverse(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x > 0, x, x / self.alpha)

    def log_abs_det_jacobian(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.where(z > 0, torch.zeros_like(z), torch.full_like(z, math.log(self.alpha)))
