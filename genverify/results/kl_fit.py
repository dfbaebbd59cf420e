"""Registry entries for questions 1b (forward vs reverse KL fits) and 1c (the ELBO's gap).

Results: ``kl-forward-fit`` (moment matching, closed form for a two-component
mixture), ``kl-reverse-fit`` (the stationary equations of reverse KL, solved
numerically: one local optimum per mode), ``elbo-gap`` (log p(x) - ELBO(q) =
KL(q || p(z|x)) for a conjugate Gaussian model). Experiment ``kl-fits``: the
figures that answer 1b at a glance and show the 1c consequence.

``kl-forward-fit`` and ``kl-reverse-fit`` are vector-valued (a SymPy column
matrix): ``genverify derive`` prints them, the checks compare them component
by component against hand forms, and ``genverify check`` (scalar claims)
declines them.

About 600 lines, on purpose: the three results share the 1b target, the fits
(every check reaches them through ``result.numeric``, so that a planted wrong
variant is seen), the derived reverse-KL gradient and the conjugate model;
split apart, each part would re-import the others' helpers.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy  # its submodules load on first use (scipy.stats alone takes ~0.4 s)
import sympy as sp

from genverify.checks import (
    check,
    lambdify_result,
    least,
    mc_outcome,
    numeric_matches_derivation,
    symbolic_matches_hand,
    worst,
)
from genverify.core import Experiment, Outcome, Param, Result
from genverify.derivations import kl_fit as dkf
from genverify.experiments.kl_fits import BIMODAL_MODEL, DEFAULT_TARGET
from genverify.numerics.kl import kl_vae
from genverify.numerics.kl_fit import (
    GaussianMixture1D,
    bimodal,
    conjugate_log_evidence,
    conjugate_posterior,
    distinct_optima,
    elbo_conjugate,
    elbo_gap,
    fit_forward_kl,
    fit_reverse_kl,
    forward_kl,
    maximize_elbo,
    mixture_moments,
    reverse_kl,
    reverse_kl_grad,
)
from genverify.results.kl import KL_VAE

#: The results of this topic, registered by genverify.registry in this order.
RESULTS: list[Result] = []


# torch is heavy: the torch counterparts import it on first use.
def _torch_forward_fit(target: GaussianMixture1D):
    from genverify.models.kl_fit_torch import fit_forward_kl_torch

    return fit_forward_kl_torch(target)


def _torch_reverse_fit(target: GaussianMixture1D | None = None):
    from genverify.models.kl_fit_torch import fit_reverse_kl_torch

    return fit_reverse_kl_torch(DEFAULT_TARGET if target is None else target)


def _torch_elbo(x, mu, log_var, a=1.0, b=0.0, sigma_x=1.0):
    from genverify.models.kl_fit_torch import elbo_conjugate_torch

    return elbo_conjugate_torch(x, mu, log_var, a, b, sigma_x)


# ================================================================ kl-forward-fit


def hand_forward_fit() -> sp.ImmutableMatrix:
    """Independent hand form: mean = Σ w_k mu_k; variance = within-component + between-component (total variance)."""
    w, mu1, mu2, s1, s2 = dkf.w, dkf.mu1, dkf.mu2, dkf.sigma1, dkf.sigma2
    mean = w * mu1 + (1 - w) * mu2
    within = w * s1**2 + (1 - w) * s2**2
    between = w * (mu1 - mean) ** 2 + (1 - w) * (mu2 - mean) ** 2
    return sp.ImmutableMatrix([mean, within + between])


def hand_forward_fit_general() -> sp.ImmutableMatrix:
    """Moment matching for any p: (E_p[x], E_p[x^2] - E_p[x]^2)."""
    return sp.ImmutableMatrix([dkf.E1, dkf.E2 - dkf.E1**2])


def _mixture_from_symbols(v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = np.asarray(v["w"], dtype=float)
    return (np.stack([w, 1.0 - w], -1), np.stack([v["mu1"], v["mu2"]], -1), np.stack([v["sigma1"], v["sigma2"]], -1))


def forward_fit_from_symbols(numeric=mixture_moments):
    """The adapter from symbol values to (m*, s*^2) stacked on the last axis, for the moments function ``numeric``."""

    def adapter(v) -> np.ndarray:
        mean, var = numeric(*_mixture_from_symbols(v))
        return np.stack([mean, var], -1)

    return adapter


@check("derivation = hand form (each component)", "symbolic")
def _forward_symbolic(result, rng):
    out = []
    for derived, hand in ((result.expr, hand_forward_fit()), (dkf.derive_forward_fit_general().result,
                                                             hand_forward_fit_general())):
        diffs = [sp.simplify(sp.expand(d - h)) for d, h in zip(derived, hand)]
        out.append(all(d == 0 for d in diffs))
    ok = all(out)
    return Outcome(ok, "simplify(derived - hand) = 0 for m*, s*^2 (mixture and general p)",
                   "" if ok else f"mixture ok: {out[0]}, general ok: {out[1]}")


def _random_mixtures(result, rng, n: int) -> list[GaussianMixture1D]:
    vals = result.sample_params(rng, n)
    w, mu, sd = _mixture_from_symbols(vals)
    mixes = [GaussianMixture1D(w[i], mu[i], sd[i]) for i in range(n)]
    # A three-component mixture too: the numerics are not limited to K = 2.
    k = rng.dirichlet(np.ones(3))
    mixes.append(GaussianMixture1D(k, rng.uniform(-4, 4, 3), np.exp(rng.uniform(np.log(0.3), np.log(2), 3))))
    return mixes


def _fit_error(result, fit_m: float, fit_s: float, target: GaussianMixture1D) -> float:
    """Distance of a fitted (m, s) from the result's closed form (``result.numeric``), in units of s*."""
    mean, var = (float(v) for v in result.numeric(target.weights, target.means, target.sds))
    if not (np.isfinite(mean) and np.isfinite(var) and var > 0):
        return float("inf")
    sd = math.sqrt(var)
    return worst(abs(fit_m - mean) / sd, abs(fit_s / sd - 1.0))


@check("scipy route: quadrature + BFGS optimum = closed form", "quadrature")
def _forward_scipy(result, rng):
    largest = 0.0
    mixes = _random_mixtures(result, rng, 6)
    for target in mixes:
        fit = fit_forward_kl(target)
        largest = worst(largest, _fit_error(result, fit.m_, fit.s_, target))
    return Outcome(largest <= 1e-6, f"max |Δm|/s*, |s/s* - 1| = {largest:.1e} ({len(mixes)} mixtures, one with K = 3)")


@check("torch route: LBFGS + autograd optimum = closed form", "cross-library")
def _forward_torch(result, rng):
    # torch on first use: loading the registry must not import it.
    from genverify.models.kl_fit_torch import fit_forward_kl_torch

    largest = 0.0
    mixes = _random_mixtures(result, rng, 3)
    for target in mixes:
        fit = fit_forward_kl_torch(target)
        largest = worst(largest, _fit_error(result, fit.m, fit.s, target))
    return Outcome(largest <= 1e-6, f"max |Δm|/s*, |s/s* - 1| = {largest:.1e} ({len(mixes)} mixtures)")


@check("Monte Carlo sample mean and variance", "monte-carlo")
def _forward_mc(result, rng):
    vals = result.sample_params(rng, 4)
    w, mu, sd = _mixture_from_symbols(vals)
    n = 200_000
    outs = []
    for i in range(4):
        target = GaussianMixture1D(w[i], mu[i], sd[i])
        x = target.sample(n, rng)
        mean, var = result.numeric(w[i], mu[i], sd[i])
        c = x - x.mean()
        # SE of the sample variance: sqrt((mu_4 - var^2)/n), mu_4 estimated from the sample.
        for est, se, truth in ((x.mean(), x.std(ddof=1) / math.sqrt(n), float(mean)),
                               (c.var(ddof=1), math.sqrt(max(np.mean(c**4) - c.var() ** 2, 0.0) / n), float(var))):
            outs.append(mc_outcome(float(est), float(se), truth))
    bad = max(outs, key=lambda o: o.data["z"])
    bad.figure = "worst of 4 mixtures x (mean, var): " + bad.figure
    return bad


_real = sp.S.Reals
_pos = sp.Interval.open(0, sp.oo)

RESULTS.append(Result(
    id="kl-forward-fit",
    statement="argmin over q = N(m, s^2) of KL(p || q) is moment matching: m = E_p x, s^2 = Var_p x; "
              "for w N(mu1, sigma1^2) + (1-w) N(mu2, sigma2^2) that is (w mu1 + (1-w) mu2, "
              "w sigma1^2 + (1-w) sigma2^2 + w(1-w)(mu1-mu2)^2)",
    question="1b",
    params=(
        Param("w", dkf.w, sp.Interval.open(0, 1), "weight of the first component", sample_range=(0.05, 0.95)),
        Param("mu1", dkf.mu1, _real, "mean of the first component", sample_range=(-5, 5)),
        Param("sigma1", dkf.sigma1, _pos, "sd of the first component", scale="log", sample_range=(0.1, 5)),
        Param("mu2", dkf.mu2, _real, "mean of the second component", sample_range=(-5, 5)),
        Param("sigma2", dkf.sigma2, _pos, "sd of the second component", scale="log", sample_range=(0.1, 5)),
    ),
    derive=dkf.derive_forward_fit,
    numeric=mixture_moments,
    numeric_from_symbols=forward_fit_from_symbols(),
    torch=_torch_forward_fit,
    kind="expression",
    notes="Vector-valued (m*, s*^2); hand form in hand_forward_fit() (law of total variance). "
          "Forward KL is mass-covering: q spreads over every mode of p.",
    checks=(_forward_symbolic, numeric_matches_derivation(name="mixture_moments = lambdified derivation"),
            _forward_scipy, _forward_torch, _forward_mc),
))

# ================================================================ kl-reverse-fit

#: The 1b target: 0.4 N(-3, 0.8^2) + 0.6 N(3, 1.2^2).


@functools.lru_cache(maxsize=4)
def _compiled_reverse_gradient(expr: sp.ImmutableMatrix):
    """The derived gradient ``expr`` as NumPy functions: per component, (outside(m, s, *integrals),
    [integrand(x, m, s, L)]) with L standing for log p(x)."""
    L = sp.Symbol("L")
    compiled = []
    for comp in expr:
        integrals = sorted(comp.atoms(sp.Integral), key=str)
        holders = sp.symbols(f"I0:{len(integrals)}")
        outside = sp.lambdify((dkf.m, dkf.s, *holders), comp.xreplace(dict(zip(integrals, holders))), "numpy")
        inner = []
        for integral in integrals:
            if integral.limits != ((dkf.x, -sp.oo, sp.oo),):
                raise ValueError(f"unexpected integral {integral}")
            body = integral.function.xreplace({sp.log(dkf.p(dkf.x)): L})
            inner.append(sp.lambdify((dkf.x, dkf.m, dkf.s, L), body, "numpy"))
        compiled.append((outside, inner))
    return compiled


def derived_reverse_gradient(target, m: float, s: float, expr: sp.ImmutableMatrix | None = None) -> np.ndarray:
    """Evaluate the *derived* gradient (``expr``, default ``kl-reverse-fit``'s expression) for a concrete target.

    log p(x) in the derived integrals becomes ``target.logpdf`` and each
    integral is computed by adaptive quadrature (``scipy.integrate.quad``), a
    different rule from the fits' composite Gauss-Legendre.
    """
    expr = KL_REVERSE_FIT.expr if expr is None else expr
    lo, hi = m - 14.0 * s, m + 14.0 * s
    means = getattr(target, "means", np.array([]))
    points = sorted({float(m)} | {float(v) for v in means if lo < v < hi})
    out = []
    for outside, inner in _compiled_reverse_gradient(sp.ImmutableMatrix(expr)):
        vals = [scipy.integrate.quad(lambda t, f=f: float(f(t, m, s, target.logpdf(t))), lo, hi, points=points,
                               epsabs=1e-13, epsrel=1e-12, limit=400)[0] for f in inner]
        out.append(float(outside(m, s, *vals)))
    return np.array(out)


@functools.lru_cache(maxsize=4)
def _reverse_fit(numeric):
    """``numeric(DEFAULT_TARGET)``, the reverse fit of the 1b target (deterministic), shared by the checks."""
    return numeric(DEFAULT_TARGET)


def reverse_gradient_from_symbols(numeric=reverse_kl_grad):
    """The adapter from symbol values (m, s) to the score-form gradient for the 1b target, stacked on the last axis."""

    def adapter(v) -> np.ndarray:
        return np.stack(numeric(DEFAULT_TARGET, v["m"], v["s"]), -1)

    return adapter


@check("derived gradient = score-form gradient = finite differences", "numeric")
def _reverse_numeric(result, rng):
    target = DEFAULT_TARGET
    n = 8
    ms = rng.uniform(-5, 6, n)
    ss = np.exp(rng.uniform(np.log(0.3), np.log(4), n))
    h = 1e-5
    e_score = e_fd = 0.0
    scores = np.asarray(result.evaluate_numeric({"m": ms, "s": ss}), dtype=float)  # the score form, (n, 2)
    for (m, s), score in zip(zip(ms, ss), scores):
        derived = derived_reverse_gradient(target, m, s, result.expr)
        fd = np.array([(reverse_kl(target, m + h, s) - reverse_kl(target, m - h, s)) / (2 * h),
                       (reverse_kl(target, m, s + h) - reverse_kl(target, m, s - h)) / (2 * h)], dtype=float)
        scale = 1.0 + np.abs(derived)
        e_score = worst(e_score, np.abs(derived - score) / scale)
        e_fd = worst(e_fd, np.abs(derived - fd) / scale)
    # Central differences carry O(h^2) truncation and O(eps/h) rounding: ~1e-10 here.
    ok = e_score <= 1e-8 and e_fd <= 1e-6
    return Outcome(ok, f"at {n} random (m, s): vs score form {e_score:.1e}, vs central differences {e_fd:.1e}")


@check("one local optimum per mode, each near its component", "quadrature")
def _reverse_optima(result, rng):
    target = DEFAULT_TARGET
    fit = _reverse_fit(result.numeric)
    problems = []
    if len(fit.optima_) != target.n_components:
        problems.append(f"{len(fit.optima_)} optima for {target.n_components} modes")
    figs = []
    for o in fit.optima_:
        k = int(np.argmin(np.abs(target.means - o.m)))
        mu_k, sd_k, w_k = target.means[k], target.sds[k], target.weights[k]
        grad = derived_reverse_gradient(target, o.m, o.s, result.expr)
        # The separated-mode limit of the derivation: m = mu_k, s = sigma_k, KL = -log w_k.
        near = (abs(o.m - mu_k) <= 0.1 * sd_k and abs(o.s / sd_k - 1) <= 0.05
                and abs(o.reverse_kl + math.log(w_k)) <= 0.02)
        h = 1e-4
        f = lambda a, b: float(reverse_kl(target, a, b))  # noqa: E731
        cross = (f(o.m + h, o.s + h) - f(o.m + h, o.s - h) - f(o.m - h, o.s + h) + f(o.m - h, o.s - h)) / (4 * h * h)
        hess = np.array([[(f(o.m + h, o.s) - 2 * f(o.m, o.s) + f(o.m - h, o.s)) / h**2, cross],
                         [cross, (f(o.m, o.s + h) - 2 * f(o.m, o.s) + f(o.m, o.s - h)) / h**2]])
        minimum = bool(np.all(np.linalg.eigvalsh(hess) > 0))
        if not (near and minimum and np.max(np.abs(grad)) <= 1e-7 and o.converged):
            problems.append(f"optimum (m={o.m:.4g}, s={o.s:.4g}): near component {near}, minimum {minimum}, "
                            f"|derived grad| {np.max(np.abs(grad)):.1e}")
        figs.append(f"m={o.m:.3f} s={o.s:.3f} (mu={mu_k:g}, sigma={sd_k:g}; "
                    f"KL={o.reverse_kl:.4f} vs -log w={-math.log(w_k):.4f})")
    return Outcome(not problems, "; ".join(figs), "; ".join(problems))


@check("torch route (LBFGS + autograd) finds the same optima from the same starts", "cross-library")
def _reverse_torch(result, rng):
    from genverify.models.kl_fit_torch import fit_reverse_kl_torch

    target = DEFAULT_TARGET
    fit = _reverse_fit(result.numeric)
    runs_t = fit_reverse_kl_torch(target, [r.start for r in fit.runs_])
    # Compare the sets of distinct optima: from one start the two optimisers may take
    # different first steps, but the optima they can end in must be the same.
    distinct = distinct_optima(sorted(runs_t, key=lambda r: r.reverse_kl), m_tol=1e-4, s_tol=1e-4)
    if len(distinct) != len(fit.optima_):
        return Outcome(False, f"torch: {len(distinct)} optima, scipy: {len(fit.optima_)}")
    pairs = list(zip(fit.optima_, distinct))
    dm = worst(*[abs(a.m - b.m) for a, b in pairs])
    ds = worst(*[abs(a.s - b.s) for a, b in pairs])
    dkl = worst(*[abs(a.reverse_kl - b.reverse_kl) for a, b in pairs])
    ok = dm <= 1e-6 and ds <= 1e-6 and dkl <= 1e-9 and all(r.converged for r in runs_t)
    return Outcome(ok, f"{len(runs_t)} starts, {len(distinct)} optima each: max |Δm| {dm:.1e}, |Δs| {ds:.1e}, "
                       f"|ΔKL| {dkl:.1e}")


@check("best optimum under-covers p and beats moment matching on reverse KL", "property")
def _reverse_undercovers(result, rng):
    target = DEFAULT_TARGET
    fit = _reverse_fit(result.numeric)
    m_mm, s_mm = target.mean(), target.sd()
    rev_mm, fwd_mm = float(reverse_kl(target, m_mm, s_mm)), float(forward_kl(target, m_mm, s_mm))
    ok = fit.s_ < s_mm and fit.reverse_kl_ <= rev_mm and fit.forward_kl_ >= fwd_mm
    return Outcome(ok, f"s {fit.s_:.3f} < sd(p) {s_mm:.3f}; KL(q||p) {fit.reverse_kl_:.4f} <= {rev_mm:.4f} "
                       f"(moment-matched); KL(p||q) {fit.forward_kl_:.3f} >= {fwd_mm:.4f}")


@check("number of optima follows the modes as they separate", "property")
def _reverse_count(result, rng):
    counts = {}
    for sep in (0.0, 1.0, 6.0, 10.0):
        counts[sep] = len(result.numeric(bimodal(sep), n_init=6).optima_)
    # Merged (unimodal) mixtures at 0 and 1: one optimum; separated at 6 and 10: one per mode.
    ok = counts == {0.0: 1, 1.0: 1, 6.0: 2, 10.0: 2}
    return Outcome(ok, "separation -> optima: " + ", ".join(f"{k:g} -> {v}" for k, v in counts.items()))


def _separation_bound():
    """The derivation's bound on -log w_k - KL(N_k || p) (the E_q[sqrt(r)] step), as a NumPy function."""
    for step in KL_REVERSE_FIT.derivation().steps:
        if isinstance(step.expr, sp.Eq) and step.expr.lhs == sp.Symbol("E_q[sqrt(r)]"):
            args = (dkf.W_K, dkf.SIGMA_K, dkf.SIGMA_J, dkf.SEPARATION, dkf.MU_K)
            return sp.lambdify(args, step.expr.rhs, "numpy")
    raise LookupError("the derivation has no E_q[sqrt(r)] step")


@check("as the modes separate: KL(N_k || p) -> -log w_k within the derived bound; optima -> components",
       "quadrature")
def _reverse_separation(result, rng):
    bound = _separation_bound()
    problems, figs, last_gap, last_dm = [], [], np.inf, np.inf
    for sep in (6.0, 9.0, 12.0):
        target = bimodal(sep)
        fit = result.numeric(target, n_init=6)
        for k in range(2):
            j = 1 - k
            w_k, mu_k, sd_k = target.weights[k], target.means[k], target.sds[k]
            # At q = N_k: 0 <= -log w_k - KL(N_k || p) <= sqrt(w_j / w_k) * overlap(N_k, N_j).
            gap = -math.log(w_k) - float(reverse_kl(target, mu_k, sd_k))
            b = float(bound(w_k, sd_k, target.sds[j], abs(target.means[j] - mu_k), mu_k))
            if not (-1e-12 <= gap <= b + 1e-12):
                problems.append(f"separation {sep:g}, mode {k}: gap {gap:.3g} outside [0, {b:.3g}]")
        gaps = [-math.log(w) - float(reverse_kl(target, m, s))
                for w, m, s in zip(target.weights, target.means, target.sds)]
        dm = worst(*[min(abs(o.m - mu) for o in fit.optima_) / sd if fit.optima_ else np.inf
                     for mu, sd in zip(target.means, target.sds)])
        if not (max(gaps) <= last_gap and dm <= last_dm and len(fit.optima_) == 2):
            problems.append(f"separation {sep:g}: gap {max(gaps):.3g}, optimum offset {dm:.3g} sd, "
                            f"{len(fit.optima_)} optima (must shrink with 2 optima)")
        last_gap, last_dm = max(gaps), dm
        figs.append(f"{sep:g}: gap {max(gaps):.1e}, |m - mu_k|/sigma_k {dm:.1e}")
    return Outcome(not problems and last_dm <= 1e-3, "; ".join(figs), "; ".join(problems))


KL_REVERSE_FIT = Result(
    id="kl-reverse-fit",
    statement="argmin over q = N(m, s^2) of KL(q || p) solves the derived stationary equations; for the bimodal "
              "0.4 N(-3, 0.8^2) + 0.6 N(3, 1.2^2) there is one local optimum per mode, each near its component, "
              "and the best (the heavier mode) under-covers p (s < sd of p): mode-seeking",
    question="1b",
    params=(
        Param("m", dkf.m, _real, "mean of q", sample_range=(-6, 6)),
        Param("s", dkf.s, _pos, "standard deviation of q", scale="log", sample_range=(0.2, 5)),
    ),
    derive=dkf.derive_reverse_fit_gradient,
    numeric=fit_reverse_kl,
    numeric_from_symbols=reverse_gradient_from_symbols(),
    torch=_torch_reverse_fit,
    kind="expression",
    notes="Vector-valued: the gradient (d/dm, d/ds) of reverse KL for any target p; the optima are numeric. "
          "Reverse KL is mode-seeking: q sits on one mode.",
    checks=(_reverse_numeric, _reverse_optima, _reverse_torch, _reverse_undercovers, _reverse_count,
            _reverse_separation),
)
RESULTS.append(KL_REVERSE_FIT)

# ================================================================ elbo-gap


def hand_elbo_gap() -> sp.Expr:
    """KL(N(mu, sigma^2) || N(mean, sd^2)) with the posterior's mean and variance written by hand."""
    a, b, x, sx, mu, sigma = dkf.a, dkf.b, dkf.xo, dkf.sigma_x, dkf.mu, dkf.sigma
    post_mean = a * (x - b) / (a**2 + sx**2)
    post_var = sx**2 / (a**2 + sx**2)
    return sp.log(sp.sqrt(post_var) / sigma) + (sigma**2 + (mu - post_mean) ** 2) / (2 * post_var) - sp.Rational(1, 2)


def _elbo_args(v):
    keys = ("x", "mu", "sigma", "a", "b", "sigma_x")
    return [np.asarray(v[k], dtype=float)[..., None] for k in keys]


def elbo_gap_from_symbols(numeric=elbo_gap):
    """The adapter from symbol values to ``numeric(x, mu, sigma, a, b, sigma_x)`` with one latent dimension."""

    def adapter(v) -> np.ndarray:
        return numeric(*_elbo_args(v))

    return adapter


@check("elbo_gap = lambdified derivation", "numeric")
def _elbo_numeric(result, rng):
    vals = result.sample_params(rng, 2000)
    x, mu, sigma, a, b, sx = _elbo_args(vals)
    got = np.asarray(result.numeric(x, mu, sigma, a, b, sx), dtype=float)
    want = lambdify_result(result)(vals)
    if got.shape != want.shape:
        return Outcome(False, f"shape {got.shape} vs {want.shape}")
    # elbo_gap is a difference of log p(x) and the ELBO: judge it at their scale.
    scale = 1.0 + np.abs(conjugate_log_evidence(x, a, b, sx))
    err = np.abs(got - want) / (scale + np.abs(want))
    return Outcome(bool(worst(err) <= 1e-12), f"max scaled err {worst(err):.1e} (2000 pts)")


@check("KL term = kl-vae summed over dims = torch.distributions; torch ELBO = NumPy ELBO", "cross-library")
def _elbo_torch(result, rng):
    # torch on first use: loading the registry must not import it.
    import torch

    from genverify.models.kl_fit_torch import elbo_conjugate_torch

    n, D = 500, 4
    x, mu = rng.uniform(-4, 4, (n, D)), rng.uniform(-3, 3, (n, D))
    sigma = np.exp(rng.uniform(np.log(0.05), np.log(4), (n, D)))
    a, b = rng.uniform(-2, 2, (n, 1)), rng.uniform(-2, 2, (n, 1))
    sx = np.exp(rng.uniform(np.log(0.2), np.log(3), (n, 1)))
    t = lambda v: torch.as_tensor(v, dtype=torch.float64)  # noqa: E731
    kl_ours = kl_vae(mu, sigma).sum(-1)
    kl_torch = KL_VAE.torch(mu, sigma).sum(-1)  # torch.distributions.kl_divergence
    e_np = elbo_conjugate(x, mu, sigma, a, b, sx)
    e_t = elbo_conjugate_torch(t(x), t(mu), t(np.log(sigma**2)), t(a), t(b), t(sx)).numpy()
    e1 = worst(np.abs(kl_ours - kl_torch) / (1 + np.abs(kl_torch)))
    e2 = worst(np.abs(e_np - e_t) / (1 + np.abs(e_t)))
    # The KL term is the ELBO's regulariser: recover it as E_q[log p(x|z)] - ELBO, with the
    # reconstruction term integrated over z by Gauss-Hermite quadrature (torch's Normal.log_prob
    # for the decoder density): nothing of the closed forms is reused.
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)  # ∫ f(u) exp(-u^2/2) du ≈ Σ w f(u)
    z = mu[..., None] + sigma[..., None] * nodes  # (n, D, 40)
    dec = torch.distributions.Normal(t(a[..., None] * z + b[..., None]), t(sx[..., None]).expand(z.shape))
    log_lik = dec.log_prob(t(x[..., None]).expand(z.shape)).numpy()
    recon_quad = np.sum(log_lik @ weights / math.sqrt(2 * math.pi), -1)
    e3 = worst(np.abs((recon_quad - e_np) - kl_ours) / (1 + np.abs(kl_ours)))
    ok = worst(e1, e2, e3) <= 1e-10
    return Outcome(ok, f"KL term vs torch {e1:.1e}, ELBO vs torch {e2:.1e}, "
                       f"E_q[log p(x|z)] (quadrature) - ELBO vs Σ kl_vae {e3:.1e} (D = {D})")


@check("Monte Carlo gap: log p(x) - mean of log p(x, z) - log q(z) over z ~ q", "monte-carlo")
def _elbo_mc(result, rng):
    n, D = 200_000, 3
    outs = []
    for _ in range(4):
        x, mu = rng.uniform(-3, 3, D), rng.uniform(-2, 2, D)
        sigma = np.exp(rng.uniform(np.log(0.2), np.log(2), D))
        a, b, sx = rng.uniform(-2, 2), rng.uniform(-1, 1), float(np.exp(rng.uniform(np.log(0.3), np.log(2))))
        z = mu + sigma * rng.standard_normal((n, D))
        log_joint = (-0.5 * np.log(2 * np.pi) - 0.5 * z**2 - 0.5 * np.log(2 * np.pi * sx**2)
                     - (x - a * z - b) ** 2 / (2 * sx**2))
        log_q = -0.5 * np.log(2 * np.pi * sigma**2) - (z - mu) ** 2 / (2 * sigma**2)
        # log p(x) - ELBO estimated as log p(x) - mean(log p(x, z) - log q(z)); the log evidence is the
        # marginal N(b, a^2 + sigma_x^2) per dimension, written out here.
        v = a * a + sx * sx
        log_px = float(np.sum(-0.5 * np.log(2 * np.pi * v) - (x - b) ** 2 / (2 * v)))
        terms = log_px - np.sum(log_joint - log_q, -1)
        # 4 comparisons at 5 SE: family-wise false-alarm rate <= 4 * 5.7e-7.
        outs.append(mc_outcome(float(terms.mean()), float(terms.std(ddof=1) / math.sqrt(n)),
                               float(np.sum(result.numeric(x, mu, sigma, a, b, sx)))))
    bad = max(outs, key=lambda o: o.data["z"])
    bad.figure = "worst of 4 (D = 3): " + bad.figure
    return bad


def _gauss(x, m, s):
    """N(x | m, s^2), written out (no shared code with the numerics under test)."""
    return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))


@check("quadrature: log p(x) = log ∫ p(x|z) p(z) dz and gap = ∫ q log(q / p(z|x))", "quadrature")
def _elbo_quad(result, rng):
    largest = 0.0
    for _ in range(15):
        x, a, b = rng.uniform(-3, 3), rng.uniform(-2, 2), rng.uniform(-1, 1)
        sx, mu = math.exp(rng.uniform(np.log(0.3), np.log(2))), rng.uniform(-2, 2)
        sigma = math.exp(rng.uniform(np.log(0.2), np.log(2)))
        ev, _ = scipy.integrate.quad(lambda z: _gauss(x, a * z + b, sx) * _gauss(z, 0.0, 1.0), -40, 40, points=[0.0],
                               epsabs=0, epsrel=1e-12, limit=200)
        pm, psd = (float(v) for v in conjugate_posterior(x, a, b, sx))

        def integrand(z):
            q = _gauss(z, mu, sigma)
            # log q - log posterior, written out (no shared code with elbo_gap)
            return q * (math.log(psd / sigma) - 0.5 * ((z - mu) / sigma) ** 2 + 0.5 * ((z - pm) / psd) ** 2)

        kl, _ = scipy.integrate.quad(integrand, mu - 30 * sigma, mu + 30 * sigma, points=[mu], epsabs=1e-13, epsrel=1e-11,
                               limit=200)
        gap = float(np.sum(result.numeric(x, mu, sigma, a, b, sx)))
        largest = worst(largest, abs(math.log(ev) - float(conjugate_log_evidence(x, a, b, sx))),
                        abs(kl - gap) / (1 + abs(gap)))
    return Outcome(largest <= 1e-9, f"max diff {largest:.1e} (15 random models and q)")


@check("ELBO <= log p(x) for random q; equality at q = p(z|x)", "property")
def _elbo_bound(result, rng):
    vals = result.sample_params(rng, 2000)
    x, mu, sigma, a, b, sx = _elbo_args(vals)
    gap = np.asarray(result.numeric(x, mu, sigma, a, b, sx), dtype=float)
    scale = 1.0 + np.abs(conjugate_log_evidence(x, a, b, sx))
    pm, psd = conjugate_posterior(x, a, b, sx)
    tight = np.abs(np.asarray(result.numeric(x, pm, psd, a, b, sx), dtype=float)) / scale
    lowest = least(gap / scale)
    ok = bool(lowest >= -1e-12 and worst(tight) <= 1e-13)
    return Outcome(ok, f"min gap {lowest:.2e} (scaled) over 2000 q; max |gap| at the posterior {worst(tight):.1e}")


#: 1c's toy model with a bimodal posterior: z ~ N(0, 1), x | z ~ N(z^2, 0.5^2), x = 3.


@check("bimodal posterior: argmax ELBO = reverse-KL fit; q locks onto one mode", "property")
def _elbo_mode_seeking(result, rng):
    model = BIMODAL_MODEL
    elbo_fits = maximize_elbo(model)
    rev = fit_reverse_kl(model)
    log_px = model.log_evidence()
    sd_post = math.sqrt(model.var())
    problems = []
    for f in elbo_fits:
        match = min(rev.optima_, key=lambda o: abs(o.m - f.m))
        if abs(match.m - f.m) > 1e-5 or abs(match.s - f.s) > 1e-5:
            problems.append(f"ELBO optimum ({f.m:.5f}, {f.s:.5f}) is not a reverse-KL optimum")
        elbo_val = float(model.elbo(f.m, f.s))
        if abs((log_px - elbo_val) - f.reverse_kl) > 1e-9:
            problems.append(f"log p(x) - ELBO = {log_px - elbo_val:.10f} != KL(q||p(z|x)) = {f.reverse_kl:.10f}")
    best = max(elbo_fits, key=lambda f: float(model.elbo(f.m, f.s)))
    best_elbo = float(model.elbo(best.m, best.s))
    mode = float(np.max(model.modes()))
    locked = abs(abs(best.m) - mode) <= 0.1 and best.s <= 0.25 * sd_post
    mm_elbo = float(model.elbo(model.mean(), sd_post))
    if not locked:
        problems.append(f"best q (m={best.m:.3f}, s={best.s:.3f}) is not on a mode (±{mode:.3f})")
    if not mm_elbo < best_elbo:
        problems.append("the moment-matched q has a higher ELBO")
    fig = (f"ELBO optima m = ±{abs(best.m):.4f} (modes ±{mode:.4f}), s = {best.s:.4f} vs posterior sd {sd_post:.3f}; "
           f"ELBO {best_elbo:.4f} vs moment-matched {mm_elbo:.4f}; "
           f"log p(x) - ELBO = KL(q||p(z|x)) = {best.reverse_kl:.4f}")
    return Outcome(not problems, fig, "; ".join(problems))


RESULTS.append(Result(
    id="elbo-gap",
    statement="z ~ N(0,1), x|z ~ N(a z + b, sigma_x^2), q = N(mu, sigma^2): log p(x) - ELBO(q) = KL(q || p(z|x)) >= 0, "
              "with ELBO = E_q log p(x|z) - KL(q || N(0,1)) (the kl-vae term); equality iff q is the posterior",
    question="1c",
    params=(
        Param("x", dkf.xo, _real, "observation", sample_range=(-5, 5)),
        Param("mu", dkf.mu, _real, "encoder mean", sample_range=(-5, 5)),
        Param("sigma", dkf.sigma, _pos, "encoder standard deviation", scale="log", sample_range=(0.05, 5)),
        Param("a", dkf.a, _real, "decoder slope", sample_range=(-3, 3)),
        Param("b", dkf.b, _real, "decoder offset", sample_range=(-3, 3)),
        Param("sigma_x", dkf.sigma_x, _pos, "decoder noise sd", scale="log", sample_range=(0.1, 5)),
    ),
    derive=dkf.derive_elbo_gap,
    numeric=elbo_gap,
    numeric_from_symbols=elbo_gap_from_symbols(),
    torch=_torch_elbo,
    hand=hand_elbo_gap,
    notes="The ELBO's KL term is kl-vae summed over latent dimensions. Maximising the ELBO over q is minimising "
          "KL(q || p(z|x)): reverse KL, so a Gaussian q locks onto one mode of a multimodal posterior.",
    checks=(symbolic_matches_hand(), _elbo_numeric, _elbo_torch, _elbo_mc, _elbo_quad, _elbo_bound,
            _elbo_mode_seeking),
))


#: The experiment of this topic: the figures that answer 1b at a glance and show the 1c consequence.
EXPERIMENTS = [Experiment(
    id="kl-fits",
    title="Forward vs reverse KL fits of a Gaussian (1b) and the ELBO on a bimodal posterior (1c)",
    question="1b",
    run="genverify.experiments.kl_fits:run",
)]
