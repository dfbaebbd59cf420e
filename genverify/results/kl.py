"""Registry entries for question 1a (KL of uniforms) and the Gaussian KL used by the VAE (1c)."""

from __future__ import annotations

import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)
import sympy as sp

from genverify.checks import (
    check,
    mc_outcome,
    numeric_matches_derivation,
    relative_error,
    symbolic_matches_hand,
    worst,
)
from genverify.core import Outcome, Param, Result
from genverify.derivations import kl as dk
from genverify.numerics import kl_gaussian, kl_uniform, kl_vae

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []

# ---------------------------------------------------------------- uniforms


def _torch_kl_uniform(a, b, c, d):
    # torch is imported on first use: loading the registry (every CLI command) must not import it.
    import torch
    from torch.distributions import Uniform, kl_divergence

    t = lambda v: torch.as_tensor(np.asarray(v, dtype=float), dtype=torch.float64)  # noqa: E731
    return kl_divergence(Uniform(t(a), t(b)), Uniform(t(c), t(d))).numpy()


#: Cut-offs of the quadrature of p log(p / max(q, eps)): the integral is finite exactly when it
#: stops growing as eps shrinks (it grows like P(q = 0) log(1/eps) otherwise).
CUTOFFS = (1e-2, 1e-4, 1e-8, 1e-16, 1e-32)


def cutoff_kl(p: tuple[float, float], q: tuple[float, float], eps: float) -> float:
    """∫ p log(p / max(q, eps)) dx over supp P, by ``scipy.integrate.quad`` with breaks at q's endpoints.

    Written from the densities alone (no support rule): where q = 0 the
    integrand is p log(p / eps), which grows without bound as eps -> 0.
    """
    dens_p = 1.0 / (p[1] - p[0])

    def q_pdf(t: float) -> float:
        return 1.0 / (q[1] - q[0]) if q[0] <= t <= q[1] else 0.0

    breaks = sorted({v for v in q if p[0] < v < p[1]})
    edges = [p[0], *breaks, p[1]]
    total = 0.0
    for lo, hi in zip(edges, edges[1:]):
        val, _ = scipy.integrate.quad(lambda t: dens_p * np.log(dens_p / max(q_pdf(t), eps)), lo, hi,
                                epsabs=1e-13, epsrel=1e-13)
        total += val
    return total


def _cutoff_verdict(p, q) -> tuple[float, float]:
    """(the quadrature at the smallest cut-off, its growth per unit of log(1/eps) over the last decades)."""
    vals = [cutoff_kl(p, q, eps) for eps in CUTOFFS]
    growth = (vals[-1] - vals[-2]) / np.log(CUTOFFS[-2] / CUTOFFS[-1])
    return vals[-1], growth


def _quadrature_agrees(value: float, p, q) -> tuple[bool, str]:
    """Does ``value`` (the claimed KL) agree with the cut-off quadrature?

    Finite: the quadrature has stopped growing and equals it. Infinite: the
    quadrature keeps growing, at the rate P(q = 0) > 0 per unit of log(1/eps).
    """
    last, growth = _cutoff_verdict(p, q)
    if np.isposinf(value):
        return bool(growth > 1e-9), f"quadrature grows {growth:.3g} per unit of log(1/eps): diverges"
    if not np.isfinite(value):
        return False, f"claimed {value!r}"
    ok = abs(growth) <= 1e-12 and float(relative_error(value, last)) <= 1e-10
    return ok, f"quadrature {last:.12g} (growth {growth:.1e}) vs {value:.12g}"


def _fixed_uniform_checks(p: tuple[float, float], q: tuple[float, float]):
    """Checks for KL(U[p] || U[q]) with concrete endpoints."""

    @check("numeric kl_uniform = derivation", "numeric")
    def numeric(result, rng):
        got, want = float(result.numeric()), float(result.expr)
        return Outcome(bool(relative_error(got, want) <= 1e-15), f"{got:.12g} vs {want:.12g}")

    @check("torch.distributions.kl_divergence", "cross-library")
    def torch_check(result, rng):
        got, want = float(_torch_kl_uniform(*p, *q)), float(result.numeric())
        return Outcome(bool(relative_error(got, want) <= 1e-12), f"torch {got:.12g} vs numeric {want:.12g}")

    @check("quadrature of p log(p / max(q, eps)) as eps -> 0", "quadrature")
    def quad(result, rng):
        ok_d, fig = _quadrature_agrees(float(result.expr), p, q)
        ok_n, _ = _quadrature_agrees(float(result.numeric()), p, q)
        # The derivation's length of supp P minus supp Q, times p's density, is the mass where q = 0:
        # the rate at which the quadrature grows per unit of log(1/eps).
        lengths = [s.expr.rhs for s in result.derivation().steps
                   if isinstance(s.expr, sp.Eq) and str(s.expr.lhs).startswith("|supp P")]
        _, growth = _cutoff_verdict(p, q)
        mass = float(lengths[0]) / (p[1] - p[0]) if lengths else float("nan")
        ok_m = abs(mass - growth) <= 1e-9
        return Outcome(ok_d and ok_n and ok_m, f"{fig}; derived P(q = 0) = {mass:.6g}",
                       "" if ok_n and ok_m else f"numeric {float(result.numeric())!r}, derived mass {mass!r}, "
                                                f"quadrature growth {growth!r}")

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
    want = result.evaluate_numeric(vals)
    err = relative_error(got, want)
    n_inf = int(np.isinf(want).sum())
    return Outcome(bool(worst(err) <= 1e-12), f"max rel err {worst(err):.1e}, {n_inf}/2000 infinite")


@check("cut-off quadrature at random (a,b,c,d), covered and not", "quadrature")
def _uniform_quad(result, rng):
    vals = result.sample_params(rng, 4000)
    covered = (vals["a"] >= vals["c"]) & (vals["b"] <= vals["d"])
    # Covered supports are rare at random: take 15 of each kind, plus touching endpoints.
    idx = list(np.flatnonzero(covered)[:15]) + list(np.flatnonzero(~covered)[:15])
    cases = [tuple(float(vals[k][i]) for k in "abcd") for i in idx]
    cases += [(0.0, 1.0, 0.0, 1.0), (0.0, 1.0, 0.0, 2.0), (0.0, 1.0, -1.0, 1.0), (0.0, 1.0, 1.0, 2.0)]
    bad = []
    for a, b, c, d in cases:
        ok, fig = _quadrature_agrees(float(result.numeric(a, b, c, d)), (a, b), (c, d))
        if not ok:
            bad.append(f"({a:.3g}, {b:.3g}, {c:.3g}, {d:.3g}): {fig}")
    return Outcome(not bad and int(covered[idx].sum()) >= 10,
                   f"{len(cases) - len(bad)}/{len(cases)} agree ({int(covered[idx].sum())} covered)", "; ".join(bad[:3]))


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
    # torch on first use, as above.
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
        return Outcome(bool(worst(err) <= 1e-8), f"max rel err {worst(err):.1e} (2000 pts)")

    return run


def _gaussian_mc_check(args_of, n_params: int = 6, n: int = 200_000):
    @check("Monte Carlo E_p[log p - log q]", "monte-carlo")
    def run(result, rng):
        vals = result.sample_params(rng, n_params)
        bad = None
        for i in range(n_params):
            m1, s1, m2, s2 = (float(np.asarray(v)[i]) if np.ndim(v) else float(v) for v in args_of(vals))
            xs = rng.normal(m1, s1, n)
            ratio = scipy.stats.norm.logpdf(xs, m1, s1) - scipy.stats.norm.logpdf(xs, m2, s2)
            est, se = ratio.mean(), ratio.std(ddof=1) / np.sqrt(n)
            truth = float(np.asarray(result.evaluate_numeric({k: np.asarray(v)[i:i + 1] for k, v in vals.items()}))[0])
            out = mc_outcome(est, se, truth)
            # 6 comparisons at 5 SE: family-wise false-alarm rate <= 6 * 5.7e-7.
            if bad is None or not out.data["z"] <= bad.data["z"]:
                bad = out
        bad.figure = f"worst of {n_params}: " + bad.figure
        return bad

    return run


@check("nearly equal distributions: within float64 conditioning of a 40-digit evaluation of the derivation",
       "numeric")
def _gaussian_near_equal(result, rng):
    # Where sigma1 ~ sigma2 and mu1 ~ mu2 the KL is tiny and the closed form cancels in float64; the
    # numeric function must still be accurate (its series branch for |(sigma1/sigma2)^2 - 1| < 1e-3).
    # The reference: the derived expression evaluated with 40 digits at the same float64 inputs.
    # Float64 inputs fix (sigma1/sigma2)^2 - 1 = t only to about 2.2e-16 absolute, which moves the KL by
    # about 1.1e-16 |t|: the tolerance is 1e-13 relative plus 1e-15 |t|. A wrong series coefficient
    # moves it by ~t^5 / 60, above both for |t| near 1e-3.
    syms = [p.symbol for p in result.params]
    largest = 0.0
    for _ in range(40):
        base = {"mu1": rng.uniform(-3, 3), "sigma1": float(np.exp(rng.uniform(-2, 2)))}
        t = float(rng.choice([-1, 1]) * 10.0 ** rng.uniform(-5, -3.05))  # (sigma1/sigma2)^2 - 1
        vals = {**base, "mu2": base["mu1"] + float(rng.normal(0, 1e-4)) * base["sigma1"],
                "sigma2": base["sigma1"] / float(np.sqrt(1 + t))}
        vals = {k: vals[k] for k in ("mu1", "sigma1", "mu2", "sigma2") if k in {p.name for p in result.params}}
        subs = {s: sp.Float(vals[p.name], 40) for s, p in zip(syms, result.params)}
        want = float(sp.N(result.expr.subs(subs), 40))
        got = float(np.asarray(result.evaluate_numeric({k: np.array([v]) for k, v in vals.items()}))[0])
        largest = worst(largest, abs(got - want) / (1e-13 * abs(want) + 1e-15 * abs(t)))
    return Outcome(bool(largest <= 1.0), f"max error {largest:.2f} x tolerance (40 points, "
                                         "|sigma1^2/sigma2^2 - 1| < 1e-3)")


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
        _gaussian_near_equal,
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
