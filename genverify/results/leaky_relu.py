"""Registry entries for question 6: the Leaky-ReLU flow, its inverse and Jacobian."""

from __future__ import annotations

import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)
import sympy as sp

from genverify.checks import check, numeric_matches_derivation, orthant_quadrature, symbolic_matches_hand, worst
from genverify.core import Outcome, Param, Result
from genverify.derivations import leaky_relu as dl
from genverify.numerics import leaky_relu, leaky_relu_inverse, leaky_relu_inverse_abs_det, leaky_relu_log_abs_det

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
    scale = np.maximum(np.abs(xs), 1e-300)
    e1 = worst(np.abs(leaky_relu(result.numeric(xs, alpha), alpha) - xs) / scale)
    e2 = worst(np.abs(result.numeric(leaky_relu(xs, alpha), alpha) - xs) / scale)
    return Outcome(bool(worst(e1, e2) <= 4e-16), f"max rel err {worst(e1, e2):.1e}")


def _torch_leaky(alpha: float):
    """torch's own Leaky ReLU (``torch.nn.functional.leaky_relu``), not the project's transform."""
    # torch is imported when a check runs: loading the registry must not import it.
    import torch.nn.functional as F

    return lambda t: F.leaky_relu(t, negative_slope=alpha)


@check("torch.nn.functional.leaky_relu maps the inverse back to x", "cross-library")
def _inverse_torch(result, rng):
    import torch

    worst_err = 0.0
    for alpha in (0.1, float(rng.uniform(0.01, 0.99))):
        xs = np.concatenate([rng.normal(0, 5, 2000), [0.0, -0.0, -1e-3, 1e-3]])
        back = _torch_leaky(alpha)(torch.as_tensor(result.numeric(xs, alpha), dtype=torch.float64)).numpy()
        worst_err = worst(worst_err, np.abs(back - xs) / np.maximum(np.abs(xs), 1e-300))
    return Outcome(bool(worst_err <= 4e-16), f"max rel err {worst_err:.1e} (alpha = 0.1 and random)")


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


def det_from_symbols(numeric, seed: int):
    """The adapter from (n_neg, alpha) to ``numeric(z, alpha)`` at random z in R^8 with n_neg coordinates <= 0."""

    def adapter(values):
        rng = np.random.default_rng(seed)
        n_neg = np.asarray(values["n_neg"])
        alpha = np.asarray(values["alpha"])
        z = _vectors_with(n_neg, rng)
        return np.array([numeric(z[i], alpha=float(alpha[i])) for i in range(n_neg.size)])

    return adapter


def _autograd_log_abs_det(z: np.ndarray, alpha: float) -> float:
    """log |det| of the Jacobian of torch's leaky_relu at z, by autograd and ``torch.linalg.slogdet``."""
    import torch
    from torch.autograd.functional import jacobian

    jac = jacobian(_torch_leaky(alpha), torch.as_tensor(z, dtype=torch.float64))
    return float(torch.linalg.slogdet(jac).logabsdet)


def _random_points(rng, count: int = 60) -> list[tuple[np.ndarray, float]]:
    """Random (z, alpha): z in R^1..R^8, a fifth of the coordinates exactly 0 (the convention there matters)."""
    out = []
    for _ in range(count):
        z = rng.normal(0, 2, int(rng.integers(1, 9)))
        z[rng.random(z.size) < 0.2] = 0.0
        out.append((z, float(rng.uniform(0.01, 0.99))))
    out.append((np.array([-1.0, 2.0, -3.0]), 0.1))  # the homework's slope
    return out


@check("log|det| = log|det| of torch's leaky_relu Jacobian by autograd", "cross-library")
def _logdet_autograd(result, rng):
    largest = 0.0
    for z, alpha in _random_points(rng):
        largest = worst(largest, abs(float(result.numeric(z, alpha)) - _autograd_log_abs_det(z, alpha)))
    return Outcome(largest <= 1e-12, f"max abs diff {largest:.1e} (60 random z in R^1..R^8, zeros included)")


def _flow_density(inverse_abs_det, alpha: float):
    """p_x(x) = p_z(f^{-1}(x)) |det df/dz|^{-1} at z = f^{-1}(x), z ~ N(0, I_2); x of shape (..., 2)."""

    def density(x):
        z = leaky_relu_inverse(x, alpha)
        return np.prod(scipy.stats.norm.pdf(z), axis=-1) * inverse_abs_det(z, alpha)

    return density


@check("density of f(z), z ~ N(0, I_2), integrates to 1", "quadrature")
def _logdet_density_integrates(result, rng):
    alpha = 0.1
    density = _flow_density(lambda z, a: np.exp(-result.numeric(z, a)), alpha)
    # Quadrant by quadrant (the density jumps across the axes), Gauss–Legendre at 64 and 128 nodes per axis.
    total, error = orthant_quadrature(density, dim=2, order=64)
    return Outcome(bool(abs(total - 1) <= 1e-7 and error <= 1e-9),
                   f"∫p = {total:.10f} (alpha = 0.1; quadrature error ≈ {error:.1e})")


RESULTS.append(Result(
    id="leaky-relu-log-abs-det",
    statement="For x = LReLU(z) elementwise on R^n, log|det ∂f/∂z| = n_neg log(alpha), n_neg = #{i : z_i <= 0}",
    question="6",
    params=(_n_neg, _alpha),
    derive=dl.derive_leaky_relu_log_abs_det,
    numeric=leaky_relu_log_abs_det,
    numeric_from_symbols=det_from_symbols(leaky_relu_log_abs_det, seed=0),
    hand=lambda: dl.n_neg * sp.log(dl.alpha),
    checks=(symbolic_matches_hand(), numeric_matches_derivation(n=300, rtol=1e-14), _logdet_autograd,
            _logdet_density_integrates),
))


@check("1/|det| = 1/|det| of torch's leaky_relu Jacobian by autograd", "cross-library")
def _inv_det_autograd(result, rng):
    largest = 0.0
    for z, alpha in _random_points(rng):
        want = float(np.exp(-_autograd_log_abs_det(z, alpha)))
        largest = worst(largest, abs(float(result.numeric(z, alpha)) / want - 1))
    return Outcome(largest <= 1e-12, f"max rel err {largest:.1e} (60 random z in R^1..R^8, zeros included)")


@check("change of variables: ∫ over a box of p_z(f^{-1}(x)) |det|^{-1} = P(z in f^{-1}(box))", "quadrature")
def _inv_det_box_probability(result, rng):
    # The left side integrates the flow's density (this result's factor) over a box in x; the right side
    # is the probability of the preimage box under z ~ N(0, I_2), from the normal cdf alone.
    alpha = float(rng.uniform(0.05, 0.5))
    largest = 0.0
    for _ in range(4):
        lo = np.sort(rng.uniform(-1.5, 1.0, 2))
        hi = lo + rng.uniform(0.3, 1.5, 2)
        breaks = [[v for v in (0.0,) if lo[d] < v < hi[d]] for d in range(2)]
        edges = [[lo[d], *breaks[d], hi[d]] for d in range(2)]
        flow = _flow_density(result.numeric, alpha)
        density = lambda x2, x1: float(flow(np.array([x1, x2])))  # noqa: E731 - dblquad's argument order
        lhs = sum(scipy.integrate.dblquad(density, a1, b1, a2, b2, epsabs=1e-12, epsrel=1e-10)[0]
                  for a1, b1 in zip(edges[0], edges[0][1:]) for a2, b2 in zip(edges[1], edges[1][1:]))
        zl, zh = leaky_relu_inverse(lo, alpha), leaky_relu_inverse(hi, alpha)  # f^{-1} is increasing
        rhs = float(np.prod(scipy.stats.norm.cdf(zh) - scipy.stats.norm.cdf(zl)))
        largest = worst(largest, abs(lhs - rhs) / rhs)
    return Outcome(bool(largest <= 1e-8), f"max rel diff {largest:.1e} (4 random boxes, alpha = {alpha:.3f})")


RESULTS.append(Result(
    id="leaky-relu-inverse-abs-det",
    statement="|det ∂f/∂z|^{-1} = alpha^{-n_neg}; 10^{n_neg} for the homework's alpha = 0.1",
    question="6",
    params=(_n_neg, _alpha),
    derive=dl.derive_leaky_relu_inverse_abs_det,
    numeric=leaky_relu_inverse_abs_det,
    numeric_from_symbols=det_from_symbols(leaky_relu_inverse_abs_det, seed=1),
    hand=lambda: 1 / dl.alpha**dl.n_neg,
    checks=(symbolic_matches_hand(), numeric_matches_derivation(n=300, rtol=1e-13), _inv_det_autograd,
            _inv_det_box_probability),
))
