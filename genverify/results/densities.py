"""Registry entries for question 5: densities by change of variables and by geometry."""

from __future__ import annotations

import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)
import sympy as sp

from genverify.checks import (
    MC_SIGMAS,
    check,
    mc_outcome,
    numeric_matches_derivation,
    relative_error,
    symbolic_matches_hand,
    worst,
)
from genverify.core import Outcome, Param, Result
from genverify.derivations import change_of_variables as dcv
from genverify.derivations import square_distance as dsq
from genverify.numerics import (
    cauchy_reciprocal_pdf,
    lognormal_pdf,
    square_distance_cdf,
    square_distance_pdf,
)

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []

#: KS tests reject at p < 1e-4: a false alarm once in 10,000 seeds.
KS_ALPHA = 1e-4

# ---------------------------------------------------------------- 5a


@check("scipy.stats.cauchy.pdf", "cross-library")
def _cauchy_scipy(result, rng):
    y = np.concatenate([rng.standard_cauchy(2000), [0.0, -0.0, 1e-300, 1e300, -1e300]])
    err = relative_error(result.numeric(y), scipy.stats.cauchy.pdf(y))
    return Outcome(bool(worst(err) <= 1e-14), f"max rel err {worst(err):.1e}")


@check("KS test of sampled 1/X against the density", "monte-carlo")
def _cauchy_ks(result, rng):
    x = rng.standard_cauchy(100_000)
    y = 1.0 / x
    # The cdf of the checked density on [-50, 50] (the sample is compared there, conditioned on it):
    # 8-point Gauss–Legendre on each cell of a grid, summed, then interpolated.
    grid = np.linspace(-50, 50, 2001)
    t, w = np.polynomial.legendre.leggauss(8)
    half = np.diff(grid)[:, None] / 2
    nodes = (grid[:-1, None] + grid[1:, None]) / 2 + half * t
    cells = np.sum(w * np.asarray(result.numeric(nodes), dtype=float) * half, axis=1)
    grid_cdf = np.concatenate([[0.0], np.cumsum(cells)])
    inside = np.abs(y) < 50
    stat, p = scipy.stats.kstest(y[inside], lambda t: (np.interp(t, grid, grid_cdf) - grid_cdf[0]) / (grid_cdf[-1] - grid_cdf[0]))
    return Outcome(bool(p > KS_ALPHA), f"KS D={stat:.4f}, p={p:.3f} (n={inside.sum()})")


RESULTS.append(Result(
    id="cauchy-reciprocal-pdf",
    statement="If X is standard Cauchy, Y = 1/X has density 1/(pi (1 + y^2)): again standard Cauchy",
    question="5a",
    params=(Param("y", dcv.y, sp.S.Reals, "value of Y = 1/X", sample_range=(-20, 20)),),
    derive=dcv.derive_cauchy_reciprocal_pdf,
    numeric=cauchy_reciprocal_pdf,
    kind="density",
    variable="y",
    hand=lambda: 1 / (sp.pi * (1 + dcv.y**2)),
    notes="At y = 0 the change of variables is undefined; the continuous extension 1/pi is used.",
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-14), _cauchy_scipy, _cauchy_ks),
))

# ---------------------------------------------------------------- 5b


@check("scipy.stats.lognorm(s=sigma, scale=exp(mu))", "cross-library")
def _lognormal_scipy(result, rng):
    vals = result.sample_params(rng, 3000)
    got = result.numeric(**vals)
    want = scipy.stats.lognorm.pdf(vals["z"], s=vals["sigma"], scale=np.exp(vals["mu"]))
    err = relative_error(got, want)
    mask = want > 1e-250  # scipy underflows earlier in the far tail
    return Outcome(bool(worst(err[mask]) <= 1e-10), f"max rel err {worst(err[mask]):.1e}")


@check("integrates to 1", "quadrature")
def _lognormal_integral(result, rng):
    largest = 0.0
    for _ in range(20):
        mu, sigma = rng.uniform(-2, 2), np.exp(rng.uniform(np.log(0.1), np.log(3)))
        # Integrate in u = log z where the mass is, then map back: exact same integrand.
        total, _ = scipy.integrate.quad(lambda u: result.numeric(np.exp(u), mu, sigma) * np.exp(u),
                                  mu - 40 * sigma, mu + 40 * sigma, limit=200)
        largest = worst(largest, abs(total - 1.0))
    return Outcome(largest <= 1e-8, f"max |∫f - 1| = {largest:.1e} (20 (mu, sigma))")


@check("Monte Carlo P(a < e^Y < b)", "monte-carlo")
def _lognormal_mc(result, rng):
    n = 400_000
    bad = None
    for _ in range(5):
        mu, sigma = rng.uniform(-1, 1), rng.uniform(0.2, 1.5)
        zs = np.exp(rng.normal(mu, sigma, n))
        a, b = np.quantile(zs, [0.2, 0.7])
        a, b = float(a) * 0.9, float(b) * 1.1
        p_hat = np.mean((zs > a) & (zs < b))
        se = np.sqrt(p_hat * (1 - p_hat) / n)
        truth, _ = scipy.integrate.quad(lambda t: result.numeric(t, mu, sigma), a, b)
        out = mc_outcome(p_hat, se, truth)
        if bad is None or not out.data["z"] <= bad.data["z"]:
            bad = out
    bad.figure = "worst of 5: " + bad.figure
    return bad


RESULTS.append(Result(
    id="lognormal-pdf",
    statement="If Y ~ N(mu, sigma^2), Z = e^Y has density exp(-(ln z - mu)^2/(2 sigma^2)) / (z sigma sqrt(2 pi)), z > 0",
    question="5b",
    params=(
        Param("z", dcv.z, sp.Interval.open(0, sp.oo), "value of Z = e^Y", scale="log", sample_range=(1e-3, 1e3)),
        Param("mu", dcv.mu, sp.S.Reals, "mean of Y", sample_range=(-3, 3)),
        Param("sigma", dcv.sigma, sp.Interval.open(0, sp.oo), "standard deviation of Y", scale="log",
              sample_range=(0.05, 10)),
    ),
    derive=dcv.derive_lognormal_pdf,
    numeric=lognormal_pdf,
    kind="density",
    variable="z",
    hand=lambda: sp.exp(-((sp.log(dcv.z) - dcv.mu) ** 2) / (2 * dcv.sigma**2)) / (dcv.z * dcv.sigma * sp.sqrt(2 * sp.pi)),
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-11), _lognormal_scipy,
            _lognormal_integral, _lognormal_mc),
))

# ---------------------------------------------------------------- 5c


def _square_hand_cdf():
    z = dsq.z
    return sp.Piecewise((0, z < 0), (sp.pi * z**2 / 4, z <= 1),
                        (sp.pi * z**2 / 4 - z**2 * sp.acos(1 / z) + sp.sqrt(z**2 - 1), z < sp.sqrt(2)), (1, True))


def _square_hand_pdf():
    z = dsq.z
    return sp.Piecewise((0, z < 0), (sp.pi * z / 2, z <= 1),
                        (sp.pi * z / 2 - 2 * z * sp.acos(1 / z), z < sp.sqrt(2)), (0, True))


def _square_points(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.0, 2.0, size=(n, 2))


@check("Monte Carlo cdf at 60 points", "monte-carlo")
def _square_mc_cdf(result, rng):
    n = 400_000
    pts = _square_points(rng, n)
    dist = np.sqrt(((pts - 1.0) ** 2).sum(axis=1))
    zs = np.concatenate([np.linspace(0.02, 1.5, 56), [1 - 1e-6, 1 + 1e-6, np.sqrt(2) - 1e-6, 1.41]])
    p_hat = (dist[None, :] <= zs[:, None]).mean(axis=1)
    se = np.sqrt(np.maximum(p_hat * (1 - p_hat), 1.0 / n) / n)
    zscore = np.abs(p_hat - result.numeric(zs)) / se
    # 60 comparisons at 5 SE: family-wise false-alarm rate <= 60 * 5.7e-7 ≈ 3.4e-5.
    return Outcome(bool(worst(zscore) <= MC_SIGMAS), f"max |z| = {worst(zscore):.2f} SE over 60 points (n={n})")


@check("rv_continuous ppf/cdf round trip and rvs", "property")
def _square_rv(result, rng):
    from genverify.numerics import square_distance  # a scipy.stats distribution, made when first used

    q = rng.uniform(0, 1, 500)
    back = square_distance.cdf(square_distance.ppf(q))
    draws = square_distance.rvs(size=50_000, random_state=rng)
    stat, p = scipy.stats.kstest(draws, square_distance.cdf)
    ok = np.max(np.abs(back - q)) <= 1e-12 and p > KS_ALPHA
    return Outcome(bool(ok), f"max |cdf(ppf(q)) - q| = {np.max(np.abs(back - q)):.1e}; KS p = {p:.3f}")


RESULTS.append(Result(
    id="square-distance-cdf",
    statement="Z = |P - (1,1)|, P uniform on [0,2]^2: F(z) = pi z^2/4 on [0,1], pi z^2/4 - z^2 acos(1/z) + sqrt(z^2-1) on [1, sqrt 2], 1 beyond",
    question="5c",
    params=(Param("z", dsq.z, sp.S.Reals, "distance from the centre", sample_range=(-0.5, 2.0)),),
    derive=dsq.derive_square_distance_cdf,
    numeric=square_distance_cdf,
    kind="cdf",
    variable="z",
    hand=_square_hand_cdf,
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-11), _square_mc_cdf, _square_rv),
))


@check("integrates to 1", "quadrature")
def _square_pdf_integral(result, rng):
    total, _ = scipy.integrate.quad(result.numeric, 0.0, np.sqrt(2), points=[1.0], epsabs=1e-13, epsrel=1e-13)
    return Outcome(abs(total - 1) <= 1e-10, f"∫f = {total:.13f}")


@check("pdf = d/dz cdf (central differences)", "numeric")
def _square_pdf_is_derivative(result, rng):
    zs = np.concatenate([rng.uniform(0.01, 0.99, 200), rng.uniform(1.01, 1.40, 200)])
    h = 1e-6
    fd = (square_distance_cdf(zs + h) - square_distance_cdf(zs - h)) / (2 * h)
    err = np.max(np.abs(fd - result.numeric(zs)))
    return Outcome(bool(err <= 1e-7), f"max |FD - pdf| = {err:.1e}")


@check("Monte Carlo histogram vs pdf", "monte-carlo")
def _square_mc_pdf(result, rng):
    n = 1_000_000
    dist = np.sqrt(((_square_points(rng, n) - 1.0) ** 2).sum(axis=1))
    edges = np.linspace(0, np.sqrt(2), 41)
    counts, _ = np.histogram(dist, edges)
    probs = np.array([scipy.integrate.quad(result.numeric, lo, hi)[0] for lo, hi in zip(edges[:-1], edges[1:])])
    se = np.sqrt(np.maximum(probs * (1 - probs), 1.0 / n) / n)
    z = np.abs(counts / n - probs) / se
    # 40 bins at 5 SE: family-wise false-alarm rate <= 40 * 5.7e-7.
    return Outcome(bool(worst(z) <= MC_SIGMAS), f"max |z| = {worst(z):.2f} SE over 40 bins (n={n})")


RESULTS.append(Result(
    id="square-distance-pdf",
    statement="Z = |P - (1,1)|, P uniform on [0,2]^2: f(z) = pi z/2 on [0,1], pi z/2 - 2 z acos(1/z) on [1, sqrt 2], 0 elsewhere",
    question="5c",
    params=(Param("z", dsq.z, sp.S.Reals, "distance from the centre", sample_range=(-0.5, 2.0)),),
    derive=dsq.derive_square_distance_pdf,
    numeric=square_distance_pdf,
    kind="density",
    variable="z",
    hand=_square_hand_pdf,
    checks=(symbolic_matches_hand(), numeric_matches_derivation(rtol=1e-11), _square_pdf_integral,
            _square_pdf_is_derivative, _square_mc_pdf),
))
