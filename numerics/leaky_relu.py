"""The elementwise Leaky-ReLU flow in NumPy (question 6).

Convention at 0 (a null set): slope alpha, matching the gradient of
``torch.nn.functional.leaky_relu``; ``-0.0`` is treated as 0.
"""

from __future__ import annotations

import numpy as np

from genverify.numerics._validate import as_float, open_unit

DEFAULT_ALPHA = 0.1


def leaky_relu(z, alpha=DEFAULT_ALPHA) -> np.ndarray:
    r"""LReLU_alpha(z) = z for z > 0 and alpha z otherwise (elementwise)."""
    alpha = open_unit("alpha", alpha)
    z = as_float("z", z, allow_inf=True)
    return np.where(z > 0, z, alpha * z)


def leaky_relu_inverse(x, alpha=DEFAULT_ALPHA) -> np.ndarray:
    r"""Inverse of the Leaky ReLU, id ``leaky-relu-inverse``.

    .. math:: f^{-1}(x) = \begin{cases} x & x > 0 \\ x/\alpha & x \le 0 \end{cases}

    >>> leaky_relu_inverse([-0.1, 2.0]).tolist()
    [-1.0, 2.0]
    """
    alpha = open_unit("alpha", alpha)
    x = as_float("x", x, allow_inf=True)
    return np.where(x > 0, x, x / alpha)


def leaky_relu_log_abs_det(z, alpha=DEFAULT_ALPHA, axis=-1) -> np.ndarray:
    r"""log |det ∂f/∂z| of the elementwise map on R^n, id ``leaky-relu-log-abs-det``.

    The Jacobian is diagonal with entries 1 (z_i > 0) or alpha (z_i <= 0), so

    .. math:: \log\left|\det \frac{\partial f}{\partial z}\right| = n_{\le 0}(z)\,\log\alpha

    ``axis`` is the event axis (the coordinates of one vector).

    >>> bool(leaky_relu_log_abs_det([-1.0, 2.0, -3.0], alpha=0.1) == 2 * np.log(0.1))
    True
    """
    alpha = open_unit("alpha", alpha)
    z = as_float("z", z, allow_inf=True)
    if z.ndim == 0:
        raise ValueError("z must have at least one dimension (the coordinates of a vector)")
    return np.sum(z <= 0, axis=axis) * np.log(alpha)


def leaky_relu_inverse_abs_det(z, alpha=DEFAULT_ALPHA, axis=-1) -> np.ndarray:
    r"""|det ∂f/∂z|^{-1} = alpha^{-n_{\le 0}(z)}, id ``leaky-relu-inverse-abs-det``.

    For the homework's alpha = 0.1 this is 10^{n_neg}. Since z_i <= 0 exactly
    when x_i = f(z_i) <= 0, the count may be taken on x as well.

    >>> round(float(leaky_relu_inverse_abs_det([-1.0, -2.0, 3.0])), 9)
    100.0
    """
    alpha = open_unit("alpha", alpha)
    z = as_float("z", z, allow_inf=True)
    if z.ndim == 0:
        raise ValueError("z must have at least one dimension (the coordinates of a vector)")
    return np.power(alpha, -np.sum(z <= 0, axis=axis).astype(float))
