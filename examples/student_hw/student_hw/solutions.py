"""My answers to Homework 2 as code: the log-normal density (5b), EM (2-3) and the Leaky-ReLU flow (6)."""

import math

import numpy as np
import torch
from scipy.special import logsumexp
from torch import nn


def lognormal_pdf(z, mu, sigma):
    """5b: the density of e^Y for Y ~ N(mu, sigma^2)."""
    return np.exp(-((np.log(z) - mu) ** 2) / (2 * sigma**2)) / (z * sigma * np.sqrt(2 * np.pi))


def e_step(X, p, pi):
    """2b: responsibilities (N, K), in log space so that D = 784 does not underflow."""
    log_joint = np.log(pi) + X @ np.log(p).T + (1 - X) @ np.log1p(-p).T
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))


def m_step(X, resp):
    """2c: pi_k = N_k / N and p_k = sum_i resp_ik x_i / N_k."""
    n_k = resp.sum(axis=0)
    return n_k / X.shape[0], (resp.T @ X) / n_k[:, None]


def leaky_relu_inverse(x, alpha=0.1):
    """6: z = f^{-1}(x)."""
    return x if x > 0 else x / alpha


class LeakyReLUFlow(nn.Module):
    """6: x = f(z) elementwise; forward returns (x, log|det df/dz|)."""

    def __init__(self, alpha=0.1):
        super().__init__()
        self.alpha = alpha

    def forward(self, z):
        x = torch.where(z > 0, z, self.alpha * z)
        return x, (z <= 0).sum(dim=-1) * math.log(self.alpha)

    def inverse(self, x):
        return torch.where(x > 0, x, x / self.alpha)
