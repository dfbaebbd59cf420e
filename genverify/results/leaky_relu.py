"""Registry entries for question 6: the Leaky-ReLU flow, its inverse and Jacobian."""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import integrate, stats

from genverify.checks import check, numeric_matches_derivation, symbolic_matches_hand
from genverify.derivations import leaky_relu as dl
from genverify.numerics import leaky_relu, leaky_relu_inverse, leaky_relu_inverse_abs_det, leaky_relu_log_abs_det
from genverify.core import Outcome, Param, Result

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []

_alpha = Param("alpha", dl.alpha, sp.Interval.open(0, 1), "negative slope", default=sp.Rational(1, 10),
               sample_range=(0.01, 0.99))
_n_neg = Param("n_neg", dl.n_neg, sp.Range(0, 9), "number of coordinates z_i <= 0 (of n = 8)",
               sample_range=(0, 8))
_N = 8


def _vectors_with(n_neg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random z in R^8 with exactly n_neg[i] non-positive coordinates in row i."""
    n_neg = np.asarray(n_neg, dtype=int)
    mag = rng.exponential(1.0, size=(n_neg.size, _N)) + 1e-3
    sign = np.where(np.arange(_N)[None, :] < n_neg[:, None], -1.0, 1.0)
    return rng.permuted(sign * mag, axis=1)


@check("f(f^{-1}(x)) = x and f^{-1}(f(z)) = z, incl. 0 and -0", "property")
def _inverse_roundtrip(result, rng):
    alpha = rng.uniform(0.01, 0.99)
    xs = np.concatenate([rng.normal(0, 10, 5000), [0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300]])
    e1 = np.max(np.abs(leaky_relu(leaky_relu_inverse(xs, alpha), alpha) - xs) / np.maximum(np.abs(xs), 1e-300))
    e2 = np.max(np.abs(leaky_relu_inverse(leaky_relu(xs, alpha), alpha) - xs) / np.maximum(np.abs(xs), 1e-300))
    return Outcome(bool(max(e1, e2) <= 4e-16), f"max rel err {max(e1, e2):.1e}")


@check("torch LeakyReLUTransform.inv agrees", "cross-library")
def _inverse_torch(result, rng):
    import torch

    from genverify.models.transforms import LeakyReLUTransform

    alpha = float(rng.uniform(0.01, 0.99))
    xs = rng.normal(0, 5, 2000)
    got = LeakyReLUTransform(alpha).inv(torch.as_tensor(xs, dtype=torch.float64)).numpy()
    err = np.max(np.abs(got - leaky_relu_inverse(xs, alpha)))
    return Outcome(bool(err == 0.0), f"max abs diff {err:.1e}")


RESULTS.append(Result(
    id="leaky-relu-inverse",
    statement="The inverse of LReLU(z) = z (z > 0), alpha z (z <= 0) is x (x > 0), x/alpha (x <= 0)",
    question="6",
    params=(Param("x", dl.x, sp.S.Reals, "output of the Leaky ReLU", sample_range=(-10, 10)), _alpha),
    derive=dl.derive_leaky_relu_inverse,
    numeric=leaky_relu_inverse,
    hand=lambda: sp.Piecewise((dl.x, dl.x > 0), (dl.x / dl.alpha, True)),
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-15), _inverse_roundtrip, _inverse_torch),
))


def _log_abs_det_from_symbols(values):
    rng = np.random.default_rng(0)
    n_neg = np.asarray(values["n_neg"])
    alpha = np.asarray(values["alpha"])
    z = _vectors_with(n_neg, rng)
    return np.array([leaky_relu_log_abs_det(z[i], alpha=float(alpha[i])) for i in range(n_neg.size)])


@check("log|det| = log|det autograd Jacobian| (torch)", "cross-library")
def _logdet_autograd(result, rng):
    import torch
    from torch.autograd.functional import jacobian
    from torch.distributions.transforms import IndependentTransform

    from genverify.models.transforms import LeakyReLUTransform

    worst = 0.0
    for _ in range(50):
        alpha = float(rng.uniform(0.01, 0.99))
        n = int(rng.integers(1, 7))
        z = torch.as_tensor(rng.normal(0, 2, n), dtype=torch.float64)
        t = LeakyReLUTransform(alpha)
        jac = jacobian(t, z)
        want = torch.linalg.slogdet(jac).logabsdet.item()
        got_np = float(leaky_relu_log_abs_det(z.numpy(), alpha))
        got_t = IndependentTransform(t, 1).log_abs_det_jacobian(z, t(z)).item()
        worst = max(worst, abs(got_np - want), abs(got_t - want))
    return Outcome(worst <= 1e-12, f"max abs diff {worst:.1e} (50 random z in R^1..R^6)")


@check("density of f(z), z ~ N(0, I_2), integrates to 1", "quadrature")
def _logdet_density_integrates(result, rng):
    alpha = 0.1

    def density(x2, x1):
        z = leaky_relu_inverse(np.array([x1, x2]), alpha)
        # p_x(x) = p_z(f^{-1}(x)) |det df/dz|^{-1} at z = f^{-1}(x)
        return float(np.prod(stats.norm.pdf(z)) * leaky_relu_inverse_abs_det(z, alpha))

    total = 0.0
    # Integrate quadrant by quadrant: the density jumps across the axes.
    for (a1, b1) in ((-np.inf, 0.0), (0.0, np.inf)):
        for (a2, b2) in ((-np.inf, 0.0), (0.0, np.inf)):
            val, _ = integrate.dblquad(density, a1, b1, a2, b2, epsabs=1e-11, epsrel=1e-11)
            total += val
    return Outcome(abs(total - 1) <= 1e-7, f"∫p = {total:.10f} (alpha = 0.1)")


RESULTS.append(Result(
    id="leaky-relu-log-abs-det",
    statement="For x = LReLU(z) elementwise on R^n, log|det ∂f/∂z| = n_neg log(alpha), n_neg = #{i : z_i <= 0}",
    question="6",
    params=(_n_neg, _alpha),
    derive=dl.derive_leaky_relu_log_abs_det,
    numeric=leaky_relu_log_abs_det,
    numeric_from_symbols=_log_abs_det_from_symbols,
    hand=lambda: dl.n_neg * sp.log(dl.alpha),
    checks=(symbolic_matches_hand(), numeric_matches_derivation(n=300, rtol=1e-14), _logdet_autograd,
            _logdet_density_integrates),
))


def _inverse_abs_det_from_symbols(values):
    rng = np.random.default_rng(1)
    n_neg = np.asarray(values["n_neg"])
    alpha = np.asarray(values["alpha"])
    z = _vectors_with(n_neg, rng)
    return np.array([leaky_relu_inverse_abs_det(z[i], alpha=float(alpha[i])) for i in range(n_neg.size)])


@check("equals 1/|det J| of the explicit Jacobian (NumPy)", "numeric")
def _inv_det_explicit(result, rng):
    worst = 0.0
    for _ in range(200):
        alpha = float(rng.uniform(0.01, 0.99))
        z = rng.normal(0, 1, int(rng.integers(1, 9)))
        jac = np.diag(np.where(z > 0, 1.0, alpha))
        want = 1.0 / abs(np.linalg.det(jac))
        worst = max(worst, abs(float(leaky_relu_inverse_abs_det(z, alpha)) / want - 1))
    return Outcome(worst <= 1e-13, f"max rel err {worst:.1e}")


RESULTS.append(Result(
    id="leaky-relu-inverse-abs-det",
    statement="|det ∂f/∂z|^{-1} = alpha^{-n_neg}; 10^{n_neg} for the homework's alpha = 0.1",
    question="6",
    params=(_n_neg, _alpha),
    derive=dl.derive_leaky_relu_inverse_abs_det,
    numeric=leaky_relu_inverse_abs_det,
    numeric_from_symbols=_inverse_abs_det_from_symbols,
    hand=lambda: 1 / dl.alpha**dl.n_neg,
    checks=(symbolic_matches_hand(), numeric_matches_derivation(n=300, rtol=1e-13), _inv_det_explicit),
))
