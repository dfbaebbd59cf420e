"""The same answers with the mistakes genverify should catch (each test of tests/test_buggy.py fails)."""

import math

import numpy as np
import torch
from torch import nn


def lognormal_pdf(z, mu, sigma):
    """5b as the write-up simplified it: the 1/z moved under the square root."""
    return 1 / (sigma * np.sqrt(2 * np.pi * z)) * np.exp(-((np.log(z) - mu) ** 2) / (2 * sigma**2))


def e_step(X, p, pi):
    """2b as the formula reads: a product of D pixel probabilities (underflows at D = 784)."""
    likelihood = np.prod(p[None] ** X[:, None] * (1 - p[None]) ** (1 - X[:, None]), axis=2)  # (N, K)
    joint = pi * likelihood
    with np.errstate(invalid="ignore"):
        return joint / joint.sum(axis=1, keepdims=True)


class LeakyReLUFlow(nn.Module):
    """6 with the inverse's log-determinant where the forward's belongs (question 6 asks for |det|^-1)."""

    def __init__(self, alpha=0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, z):
        x = torch.where(z > 0, z, self.alpha * z)
        return x, -(z <= 0).sum(dim=-1) * math.log(self.alpha)

    def inverse(self, x):
        return torch.where(x > 0, x, x / self.alpha)
