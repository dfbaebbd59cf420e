"""Registry entries for question 1a (KL of uniforms) and the Gaussian KL used by the VAE (1c)."""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import integrate

from genverify.checks import check, mc_outcome, numeric_matches_derivation, relative_error, symbolic_matches_hand
from genverify.derivations import kl as dk
from genverify.numerics import kl_gaussian, kl_uniform, kl_vae
from genverify.core import Outcome, Param, Result

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []

# ---------------------------------------------------------------- uniforms


def _torch_kl_uniform(a, b, c, d):
    import torch
    from torch.distributions import Uniform, kl_divergence

    t = lambda v: torch.as_tensor(np.asarray(v, dtype=float), dtype=torch.float64)  # noqa: E731
    return kl_divergence(Uniform(t(a), t(b)), Uniform(t(c), t(d))).numpy()


def _fixed_uniform_checks(p: tuple[float, float], q: tuple[float, float]):
    """Checks for KL(U[p] || U[q]) with concrete endpoints."""

    @check("numeric kl_uniform = derivation", "numeric")
    def numeric(result, rng):
        got, want = float(kl_uniform(*p, *q)), float(result.expr)
        return Outcome(bool(relative_error(got, want) <= 1e-15), f"{got:.12g} vs {want:.12g}")

    @check("torch.distributions.kl_divergence", "cross-library")
    def torch_check(result, rng):
        got, want = float(_torch_kl_uniform(*p, *q)), float(result.expr)
        return Outcome(bool(relative_error(got, want) <= 1e-12), f"torch {got:.12g} vs {want:.12g}")

    @check("quadrature of p log(p/q)", "quadrature")
    def quad(result, rng):
        dens_p, dens_q = 1 / (p[1] - p[0]), 1 / (q[1] - q[0])
        # Where p > 0 but q = 0 the integrand is +inf: measure that set first.
        lo, hi = max(p[0], q[0]), min(p[1], q[1])
        uncovered = (p[1] - p[0]) - max(0.0, hi - lo)
        if uncovered > 0:
            got = np.inf
            fig = f"P-mass where q = 0: {uncovered * dens_p:.3g} > 0 -> inf"
        else:
            got, _ = integrate.quad(lambda t: dens_p * np.log(dens_p / dens_q), *p)
            fig = f"quad {got:.12g}"
        want = float(result.expr)
        return Outcome(bool(relative_error(got, want) <= 1e-10), fig)

    return (symbolic_matches_hand(), numeric, torch_check, quad)


RESULTS.append(Result(
    id="kl-uniform-forward",
    statement="KL(U[0,1] || U[-2,2]) = log 4: finite, since supp U[0,1] lies inside [-2,2]",
    question="1a",
    params=(),
    derive=dk.derive_kl_uniform_forward,
    numeric=lambda: kl_uniform(0.0, 1.0, -2.0, 2.0),
    torch=lambda: _torch_kl_uniform(0.0, 1.0, -2.0, 2.0),
    kind="value",
    hand=lambda: 2 * sp.log(2),
    checks=_fixed_uniform_checks((0.0, 1.0), (-2.0, 2.0)),
))

RESULTS.append(Result(
    id="kl-uniform-reverse",
    statement="KL(U[-2,2] || U[0,1]) = +infinity: U[-2,2] puts mass where U[0,1] has none",
    question="1a",
    params=(),
    derive=dk.derive_kl_uniform_reverse,
    numeric=lambda: kl_uniform(-2.0, 2.0, 0.0, 1.0),
    torch=lambda: _torch_kl_uniform(-2.0, 2.0, 0.0, 1.0),
    kind="value",
    hand=lambda: sp.oo,
    checks=_fixed_uniform_checks((-2.0, 2.0), (0.0, 1.0)),
))


def _uniform_params():
    dom = sp.Interval(-3, 3)
    return tuple(Param(n, s, dom, f"endpoint {n}") for n, s in zip("abcd", (dk.a, dk.b, dk.c, dk.d)))


@check("torch kl_divergence at random (a,b,c,d)", "cross-library")
def _uniform_torch(result, rng):
    vals = result.sample_params(rng, 2000)
    got = _torch_kl_uniform(vals["a"], vals["b"], vals["c"], vals["d"])
    want = kl_uniform(**vals)
    err = relative_error(got, want)
    n_inf = int(np.isinf(want).sum())
    return Outcome(bool(np.max(err) <= 1e-12), f"max rel err {np.max(err):.1e}, {n_inf}/2000 infinite")


@check("quadrature at random covered (a,b,c,d)", "quadrature")
def _uniform_quad(result, rng):
    vals = result.sample_params(rng, 4000)
    covered = (vals["a"] >= vals["c"]) & (vals["b"] <= vals["d"])
    idx = np.flatnonzero(covered)[:50]
    worst = 0.0
    for i in idx:
        a, b, c, d = (vals[k][i] for k in "abcd")
        got, _ = integrate.quad(lambda t: np.log((d - c) / (b - a)) / (b - a), a, b)
        worst = max(worst, float(relative_error(got, kl_uniform(a, b, c, d))))
    return Outcome(worst <= 1e-10 and len(idx) >= 20, f"max rel err {worst:.1e} ({len(idx)} covered pts)")


RESULTS.append(Result(
    id="kl-uniform",
    statement="KL(U[a,b] || U[c,d]) = log((d-c)/(b-a)) if [a,b] ⊆ [c,d], else +infinity",
    question="1a",
    params=_uniform_params(),
    derive=dk.derive_kl_uniform,
    numeric=kl_uniform,
    torch=_torch_kl_uniform,
    constraint=(dk.a < dk.b) & (dk.c < dk.d),
    hand=lambda: sp.Piecewise((sp.log(dk.d - dk.c) - sp.log(dk.b - dk.a), (dk.c <= dk.a) & (dk.b <= dk.d)),
                              (sp.oo, True)),
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-12), _uniform_torch, _uniform_quad),
))

# ---------------------------------------------------------------- Gaussians


def _torch_kl_gaussian(mu1, sigma1, mu2, sigma2):
    import torch
    from torch.distributions import Normal, kl_divergence

    t = lambda v: torch.as_tensor(np.asarray(v, dtype=float), dtype=torch.float64)  # noqa: E731
    return kl_divergence(Normal(t(mu1), t(sigma1)), Normal(t(mu2), t(sigma2))).numpy()


def _gaussian_torch_check(args_of):
    @check("torch.distributions.kl_divergence", "cross-library")
    def run(result, rng):
        vals = result.sample_params(rng, 2000)
        got = _torch_kl_gaussian(*args_of(vals))
        want = result.evaluate_numeric(vals)
        # Compare absolutely at the scale of the terms: torch's formula cancels for
        # nearly equal distributions, ours does not.
        err = np.abs(got - want) / np.maximum(np.abs(want), 1e-8)
        return Outcome(bool(np.max(err) <= 1e-8), f"max rel err {np.max(err):.1e} (2000 pts)")

    return run


def _gaussian_mc_check(args_of, n_params: int = 6, n: int = 200_000):
    @check("Monte Carlo E_p[log p - log q]", "monte-carlo")
    def run(result, rng):
        from scipy import stats

        vals = result.sample_params(rng, n_params)
        worst = None
        for i in range(n_params):
            m1, s1, m2, s2 = (float(np.asarray(v)[i]) if np.ndim(v) else float(v) for v in args_of(vals))
            xs = rng.normal(m1, s1, n)
            ratio = stats.norm.logpdf(xs, m1, s1) - stats.norm.logpdf(xs, m2, s2)
            est, se = ratio.mean(), ratio.std(ddof=1) / np.sqrt(n)
            truth = float(kl_gaussian(m1, s1, m2, s2))
            out = mc_outcome(est, se, truth)
            if worst is None or out.data["z"] > worst.data["z"]:
                worst = out
        worst.figure = f"worst of {n_params}: " + worst.figure
        return worst

    return run


_mu_dom = sp.Interval(-5, 5)
_sigma_dom = sp.Interval.open(0, sp.oo)

RESULTS.append(Result(
    id="kl-gaussian",
    statement="KL(N(mu1,sigma1^2) || N(mu2,sigma2^2)) = log(sigma2/sigma1) + (sigma1^2 + (mu1-mu2)^2)/(2 sigma2^2) - 1/2",
    question="1c",
    params=(
        Param("mu1", dk.mu1, sp.S.Reals, "mean of P", sample_range=(-5, 5)),
        Param("sigma1", dk.sigma1, _sigma_dom, "standard deviation of P", scale="log", sample_range=(0.05, 20)),
        Param("mu2", dk.mu2, sp.S.Reals, "mean of Q", sample_range=(-5, 5)),
        Param("sigma2", dk.sigma2, _sigma_dom, "standard deviation of Q", scale="log", sample_range=(0.05, 20)),
    ),
    derive=dk.derive_kl_gaussian,
    numeric=kl_gaussian,
    torch=_torch_kl_gaussian,
    hand=lambda: (sp.log(dk.sigma2) - sp.log(dk.sigma1)
                  + (dk.sigma1**2 + (dk.mu1 - dk.mu2) ** 2) / (2 * dk.sigma2**2) - sp.Rational(1, 2)),
    checks=(
        symbolic_matches_hand(),
        numeric_matches_derivation(rtol=1e-9),
        _gaussian_torch_check(lambda v: (v["mu1"], v["sigma1"], v["mu2"], v["sigma2"])),
        _gaussian_mc_check(lambda v: (v["mu1"], v["sigma1"], v["mu2"], v["sigma2"])),
    ),
))

KL_VAE = Result(
    id="kl-vae",
    statement="KL(N(mu,sigma^2) || N(0,1)) = (mu^2 + sigma^2 - 1 - log sigma^2)/2, the VAE's KL term per latent",
    question="1c",
    params=(
        Param("mu", dk.mu, sp.S.Reals, "encoder mean", sample_range=(-5, 5)),
        Param("sigma", dk.sigma, _sigma_dom, "encoder standard deviation", scale="log", sample_range=(0.01, 10)),
    ),
    derive=dk.derive_kl_vae,
    numeric=kl_vae,
    torch=lambda mu, sigma: _torch_kl_gaussian(mu, sigma, 0.0, 1.0),
    hand=lambda: (dk.mu**2 + dk.sigma**2 - 1 - sp.log(dk.sigma**2)) / 2,
    checks=(
        symbolic_matches_hand(),
        numeric_matches_derivation(rtol=1e-9),
        _gaussian_torch_check(lambda v: (v["mu"], v["sigma"], 0.0, 1.0)),
        _gaussian_mc_check(lambda v: (v["mu"], v["sigma"], 0.0, 1.0)),
    ),
)
RESULTS.append(KL_VAE)
