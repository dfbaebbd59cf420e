"""The checks can fail: planted wrong variants of every result are rejected by that result's own checks.

For every registered result, wrong variants of its numeric function (a factor
1 + 1e-3, a small offset, two parameters swapped, the write-up's wrong forms,
a NaN) and of its derivation (a wrong step or result, a NaN) are swapped in
with ``dataclasses.replace`` and run through
:func:`genverify.verification.run_check`; at least one of the result's own
checks must reject each. A variant's checks run cheapest kind first and stop at
the first rejection; numeric variants skip the symbolic checks (they read only
the derivation). Rejection by ``TypeError`` would mean the variant itself is
broken, not that a check caught it: it does not count.

The write-up's wrong forms: the seed (shared/seeds/000_a053d5d572b4bf22.txt,
transcribed in genverify/claims/homework2.yaml) writes sums for the products of
2b-i, moves 1/z under the square root in 5b, drops z^2 from the acos term of
5c's second case, and gives 10^{n_neg}, right only at alpha = 0.1, in 6.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math

import numpy as np
import pytest
import sympy as sp

from genverify import registry
from genverify.checks import high_precision_equal, mc_outcome, numeric_matches_derivation, relative_error
from genverify.checks.indexed import indexed_matches_hand, numeric_matches_indexed
from genverify.core import Derivation, Step
from genverify.derivations import em as dem
from genverify.derivations import kl as dk
from genverify.derivations import kl_fit as dkf
from genverify.derivations import leaky_relu as dl
from genverify.numerics import kl_fit as nkf
from genverify.results.kl_fit import elbo_gap_from_symbols, forward_fit_from_symbols, reverse_gradient_from_symbols
from genverify.results.leaky_relu import det_from_symbols
from genverify.verification import run_check

#: Cheapest kinds first: a variant usually falls at its first numeric check.
KIND_ORDER = ("numeric", "symbolic", "property", "cross-library", "quadrature", "monte-carlo")


# ----------------------------------------------------------------- planting wrong functions


def _apply(out, op):
    """``op`` on every array of ``out`` (an array, or a tuple of them)."""
    if isinstance(out, tuple):
        return tuple(_apply(o, op) for o in out)
    return op(np.asarray(out, dtype=float))


def times(f, c=1 + 1e-3):
    return functools.wraps(f)(lambda *a, **k: _apply(f(*a, **k), lambda v: v * c))


def plus(f, c=1e-6):
    return functools.wraps(f)(lambda *a, **k: _apply(f(*a, **k), lambda v: v + c))


def nan_at_some(f):
    """``f`` with a NaN in (every third entry of) its output."""

    def bad(v):
        v = np.array(v, dtype=float)
        if v.ndim == 0:
            return np.float64(np.nan)
        v.reshape(-1)[::3] = np.nan
        return v

    return functools.wraps(f)(lambda *a, **k: _apply(f(*a, **k), bad))


def swapped(f, first: str, second: str):
    """``f`` with the values of two of its parameters exchanged (however they are passed)."""
    sig = inspect.signature(f)

    @functools.wraps(f)
    def g(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        bound.arguments[first], bound.arguments[second] = bound.arguments[second], bound.arguments[first]
        return f(*bound.args, **bound.kwargs)

    return g


def wrong_derivation(result, expr):
    """A derivation that ends in ``expr``: the correct steps, then a wrong last step."""
    good = result.derivation()
    return lambda: Derivation(expr, good.steps + (Step("A wrong last step", expr),))


# ----------------------------------------------------------------- the variants


def _numeric_variants(r):
    """Variants of the numeric function: {name: dataclasses.replace keyword arguments}."""
    f = r.numeric
    rid = r.id
    common = {"factor 1 + 1e-3": times(f), "offset 1e-6": plus(f), "NaN planted": nan_at_some(f)}
    if rid == "kl-uniform-forward":
        return {**common, "P and Q exchanged (the reverse KL)": lambda: np.float64(np.inf)}
    if rid == "kl-uniform-reverse":
        # inf (1 + 1e-3) and inf + 1e-6 are inf: the infinite value is varied to finite ones instead.
        return {"finite (the forward value)": lambda: np.log(4.0), "NaN planted": nan_at_some(f),
                "-inf": lambda: -np.inf, "large but finite": lambda: 1e300}
    if rid == "kl-uniform":
        def overlap_rule(a, b, c, d):  # finite whenever the supports overlap: the usual slip
            a, b, c, d = (np.asarray(v, dtype=float) for v in (a, b, c, d))
            return np.where((b > c) & (d > a), np.log(d - c) - np.log(b - a), np.inf)
        return {**common, "a and c swapped": swapped(f, "a", "c"), "finite when supports overlap": overlap_rule}
    if rid == "kl-gaussian":
        return {**common, "sigma1 and sigma2 swapped": swapped(f, "sigma1", "sigma2"),
                "without the -1/2": plus(f, 0.5)}
    if rid == "kl-vae":
        return {**common, "mu and sigma swapped": swapped(f, "mu", "sigma"),
                "log sigma for log sigma^2": lambda mu, sigma: 0.5 * (np.asarray(mu) ** 2 + np.asarray(sigma) ** 2 - 1
                                                                       - np.log(sigma))}
    if rid == "kl-forward-fit":
        within_only = lambda w, m, s: (np.sum(np.asarray(w) * m, -1), np.sum(np.asarray(w) * np.asarray(s) ** 2, -1))  # noqa: E731
        swapped_weights = lambda w, m, s: f(np.asarray(w)[..., ::-1], m, s)  # noqa: E731
        out = {**common, "weights of the components swapped": swapped_weights,
               "variance without the spread of the means": within_only}
        return {k: dict(numeric=v, numeric_from_symbols=forward_fit_from_symbols(v)) for k, v in out.items()}
    if rid == "kl-reverse-fit":
        grad = nkf.reverse_kl_grad
        shifted = lambda target, **kw: _shifted_fit(nkf.fit_reverse_kl(target, **kw))  # noqa: E731
        return {
            "the forward fit (forward and reverse exchanged)": dict(numeric=nkf.fit_forward_kl),
            "optimum moved by 1e-3": dict(numeric=shifted),
            "gradient x (1 + 1e-3)": dict(numeric_from_symbols=reverse_gradient_from_symbols(times(grad))),
            "gradient + 1e-6": dict(numeric_from_symbols=reverse_gradient_from_symbols(plus(grad))),
            "gradient in m and s swapped": dict(numeric_from_symbols=reverse_gradient_from_symbols(
                lambda t, m, s: grad(t, m, s)[::-1])),
            "gradient NaN planted": dict(numeric_from_symbols=reverse_gradient_from_symbols(nan_at_some(grad))),
        }
    if rid == "elbo-gap":
        reverse_direction = lambda x, mu, sigma, a=1.0, b=0.0, sigma_x=1.0: np.sum(  # noqa: E731
            nkf.kl_gaussian(*nkf.conjugate_posterior(x, a, b, sigma_x), mu, sigma), -1)
        out = {**common, "x and mu swapped": swapped(f, "x", "mu"), "sigma and sigma_x swapped":
               swapped(f, "sigma", "sigma_x"), "KL(p(z|x) || q), the other direction": reverse_direction}
        return {k: dict(numeric=v, numeric_from_symbols=elbo_gap_from_symbols(v)) for k, v in out.items()}
    if rid == "bernoulli-likelihood":
        flipped = lambda X, P: f(1 - np.asarray(X, dtype=float), P)  # noqa: E731 - p^(1-x) (1-p)^x
        return {**common, "x and 1 - x exchanged": flipped}
    if rid == "mixture-likelihood":
        uniform = lambda X, w, P: f(X, np.full_like(np.asarray(w, dtype=float), 1 / np.size(w)), P)  # noqa: E731
        return {**common, "uniform weights (pi dropped)": uniform}
    if rid == "mixture-log-likelihood":
        from genverify.numerics import em as nem

        def jensen(X, w, P):  # sum_i sum_k pi_k log P(x | p_k): the log moved inside the sum
            return float(np.sum(nem.bernoulli_log_likelihood(X, P) @ np.asarray(w)))
        return {**common, "log inside the sum over k": jensen}
    if rid == "latent-prior":
        def write_up(Z, w):  # the seed's P(z | pi) = sum_k pi_k^{z_k}
            return np.log(np.sum(np.asarray(w)[None, :] ** np.asarray(Z), axis=1))
        return {**common, "sum_k pi_k^z_k (the write-up)": write_up}
    if rid == "conditional-likelihood":
        from genverify.numerics import em as nem

        def write_up(X, Z, P):  # the seed's sum_k P(x | p_k)^{z_k}
            return np.log(np.sum(np.exp(nem.bernoulli_log_likelihood(X, P)) ** np.asarray(Z), axis=1))
        return {**common, "sum_k P(x|p_k)^z_k (the write-up)": write_up}
    if rid == "complete-data-likelihood":
        from genverify.numerics import em as nem
        return {**common, "prior factor dropped": lambda X, Z, w, P: nem.conditional_log_likelihood(X, Z, P).sum()}
    if rid == "em-responsibility":
        from genverify.numerics import em as nem

        def unnormalised(X, w, P):
            return np.exp(nem.bernoulli_log_likelihood(X, P)) * np.asarray(w)
        return {**common, "not normalised over k": unnormalised, "components relabelled": _swap_components(f)}
    if rid == "em-expected-complete-log-likelihood":
        from genverify.numerics import em as nem
        no_prior = lambda X, R, w, P: float(np.sum(np.asarray(R) * nem.bernoulli_log_likelihood(X, P)))  # noqa: E731
        return {**common, "log pi term dropped": no_prior}
    if rid == "em-p-update":
        def over_n(X, R, prior=None):  # divide by N instead of N_k
            w, P = f(X, R, prior=prior)
            return w, P * w
        return {"P x (1 + 1e-3)": _m_step_part(f, 1, lambda v: v * (1 + 1e-3)),
                "P + 1e-6": _m_step_part(f, 1, lambda v: v + 1e-6), "divided by N, not N_k": over_n,
                "NaN planted": _m_step_part(f, 1, lambda v: np.where(np.arange(v.size).reshape(v.shape) % 3, v, np.nan))}
    if rid == "em-pi-update":
        def over_k(X, R, prior=None):  # N_k / K instead of N_k / N
            w, P = f(X, R, prior=prior)
            return w * np.asarray(X).shape[0] / w.size, P
        return {"pi x (1 + 1e-3)": _m_step_part(f, 0, lambda v: v * (1 + 1e-3)),
                "pi + 1e-6": _m_step_part(f, 0, lambda v: v + 1e-6), "N_k / K": over_k,
                "NaN planted": _m_step_part(f, 0, lambda v: np.where(np.arange(v.size) % 3, v, np.nan))}
    if rid == "cauchy-reciprocal-pdf":
        def write_up(y):  # the seed's 1/(pi y^2 (y^-2 + 1)): NaN at y = 0
            y = np.asarray(y, dtype=float)
            with np.errstate(all="ignore"):
                return 1 / (np.pi * y**2 * (y**-2.0 + 1))
        return {**common, "1/(pi y^2 (y^-2 + 1)) (the write-up)": write_up}
    if rid == "lognormal-pdf":
        def write_up(z, mu=0.0, sigma=1.0):  # the seed: 1/(sigma sqrt(2 pi z)) exp(...)
            z = np.asarray(z, dtype=float)
            return np.exp(-((np.log(z) - mu) ** 2) / (2 * np.asarray(sigma) ** 2)) / (sigma * np.sqrt(2 * np.pi * z))
        return {**common, "1/z under the square root (the write-up)": write_up, "mu and sigma swapped":
                swapped(f, "mu", "sigma")}
    if rid == "square-distance-cdf":
        def write_up(z):  # the seed's case 2: (pi z^2 - 4 acos(1/z) + 4 sqrt(z^2 - 1)) / 4
            z = np.asarray(z, dtype=float)
            zc = np.clip(z, 1.0, np.sqrt(2))
            mid = (np.pi * zc**2 - 4 * np.arccos(1 / zc) + 4 * np.sqrt(zc**2 - 1)) / 4
            return np.where((z > 1) & (z < np.sqrt(2)), mid, f(z))
        return {**common, "z^2 dropped from the acos term (the write-up)": write_up}
    if rid == "square-distance-pdf":
        def write_up(z):  # d/dz of the write-up's case 2
            z = np.asarray(z, dtype=float)
            zc = np.clip(z, 1.0 + 1e-12, np.sqrt(2))
            mid = np.pi * zc / 2 - 1 / (zc * np.sqrt(zc**2 - 1)) + zc / np.sqrt(zc**2 - 1)
            return np.where((z > 1) & (z < np.sqrt(2)), mid, f(z))
        return {**common, "derivative of the write-up's cdf": write_up}
    if rid == "leaky-relu-inverse":
        times_alpha = lambda x, alpha=0.1: np.where(np.asarray(x) > 0, x, np.asarray(x) * alpha)  # noqa: E731
        return {**common, "x alpha for x / alpha": times_alpha, "x and alpha swapped": swapped(f, "x", "alpha")}
    if rid in ("leaky-relu-log-abs-det", "leaky-relu-inverse-abs-det"):
        log = rid == "leaky-relu-log-abs-det"

        def strict(z, alpha=0.1, axis=-1):  # counts z < 0: wrong exactly at the zeros
            n = np.sum(np.asarray(z) < 0, axis=axis)
            return n * np.log(alpha) if log else np.power(alpha, -n.astype(float))

        def positives(z, alpha=0.1, axis=-1):  # counts the positive coordinates
            n = np.sum(np.asarray(z) > 0, axis=axis)
            return n * np.log(alpha) if log else np.power(alpha, -n.astype(float))

        def ten(z, alpha=0.1, axis=-1):  # the seed's 10^{n_neg}, whatever alpha
            n = np.sum(np.asarray(z) <= 0, axis=axis)
            return n * np.log(10.0) * -1 if log else np.power(10.0, n.astype(float))

        out = {**common, "counts z < 0 (wrong at 0)": strict, "counts the positive coordinates": positives,
               "10^n_neg whatever alpha (the write-up)": ten}
        seed = 0 if log else 1
        return {k: dict(numeric=v, numeric_from_symbols=det_from_symbols(v, seed)) for k, v in out.items()}
    raise KeyError(f"no numeric variants for {rid!r}: add them here")


def _shifted_fit(fit):
    """A fitted KLGaussianFit with every optimum moved by 1e-3 (relative) in m."""
    moved = tuple(dataclasses.replace(o, m=o.m * (1 + 1e-3) + 1e-3) for o in fit.optima_)
    fit.optima_ = moved
    fit.m_ = moved[0].m
    return fit


def _m_step_part(f, part: int, op):
    def g(X, R, prior=None):
        out = list(f(X, R, prior=prior))
        out[part] = op(np.asarray(out[part], dtype=float))
        return tuple(out)

    return g


def _swap_components(f):
    """Responsibilities with the components' labels permuted (a cyclic shift of k)."""
    return lambda X, w, P: np.roll(f(X, w, P), 1, axis=-1)


def _z(expr):
    return next(s for s in expr.free_symbols if s.name == "z")


_a, _b, _c, _d = dk.a, dk.b, dk.c, dk.d
_i, _k, _dd = dem.i, dem.k, dem.d

#: The wrong results of each derivation, as functions of the correct one: {result id: {name: f(expr)}}.
WRONG_RESULTS = {
    "kl-uniform-forward": {"-log 4 (p log(q/p))": lambda e: -sp.log(4)},
    "kl-uniform-reverse": {"log 4 (the forward value)": lambda e: sp.log(4)},
    "kl-uniform": {"finite when the supports overlap": lambda e: sp.Piecewise(
        (sp.log((_d - _c) / (_b - _a)), (_b > _c) & (_d > _a)), (sp.oo, True))},
    "kl-gaussian": {"without the -1/2": lambda e: e + sp.Rational(1, 2)},
    "kl-vae": {"log sigma for log sigma^2": lambda e: (dk.mu**2 + dk.sigma**2 - 1 - sp.log(dk.sigma)) / 2},
    "kl-forward-fit": {"variance without the spread of the means": lambda e: sp.ImmutableMatrix(
        [e[0], dkf.w * dkf.sigma1**2 + (1 - dkf.w) * dkf.sigma2**2])},
    "kl-reverse-fit": {"d/dm with the wrong sign": lambda e: sp.ImmutableMatrix([-e[0], e[1]])},
    "elbo-gap": {"an extra log sigma": lambda e: e + sp.log(dkf.sigma)},
    "bernoulli-likelihood": {"(1 - p)^x for (1 - p)^(1 - x)": lambda e: sp.Product(
        dem.p[_dd] ** dem.x[_dd] * (1 - dem.p[_dd]) ** dem.x[_dd], (_dd, 1, dem.D))},
    "mixture-likelihood": {"pi dropped": lambda e: e.replace(lambda t: t.has(dem.pi) and isinstance(t, sp.Indexed),
                                                             lambda t: sp.S.One)},
    "mixture-log-likelihood": {"pi dropped": lambda e: e.replace(
        lambda t: t.has(dem.pi) and isinstance(t, sp.Indexed), lambda t: sp.S.One)},
    "latent-prior": {"sum_k pi_k^z_k (the write-up)": lambda e: sp.Sum(dem.pi[_k] ** dem.z[_i, _k], (_k, 1, dem.K))},
    "conditional-likelihood": {"sum for product (the write-up)": lambda e: sp.Sum(e.function, *e.limits)},
    "complete-data-likelihood": {"prior factor dropped": lambda e: e.replace(
        lambda t: isinstance(t, sp.Indexed) and t.base == dem.pi, lambda t: sp.S.One)},
    "em-responsibility": {"not normalised": lambda e: sp.numer(e)},
    "em-expected-complete-log-likelihood": {"log pi dropped": lambda e: e.replace(
        lambda t: isinstance(t, sp.log) and t.has(dem.pi), lambda t: sp.S.Zero)},
    "em-p-update": {"divided by N, not N_k": lambda e: sp.numer(e) / dem.N},
    "em-pi-update": {"divided by K, not N": lambda e: sp.Sum(dem.eta[_i, _k], (_i, 1, dem.N)) / dem.K},
    "cauchy-reciprocal-pdf": {"y^2 / (pi (1 + y^2))": lambda e: e * next(iter(e.free_symbols)) ** 2},
    "lognormal-pdf": {"1/z under the square root (the write-up)": lambda e: e * sp.sqrt(_z(e))},
    "square-distance-cdf": {"z^2 dropped from the acos term (the write-up)": lambda e: sp.Piecewise(
        (0, _z(e) < 0), (sp.pi * _z(e)**2 / 4, _z(e) <= 1),
        ((sp.pi * _z(e)**2 - 4 * sp.acos(1 / _z(e)) + 4 * sp.sqrt(_z(e)**2 - 1)) / 4, _z(e) < sp.sqrt(2)),
        (1, True))},
    "square-distance-pdf": {"the inner and middle pieces exchanged": lambda e: sp.Piecewise(
        e.args[0], (e.args[2][0], e.args[1][1]), (e.args[1][0], e.args[2][1]), *e.args[3:])},
    "leaky-relu-inverse": {"x alpha for x / alpha": lambda e: sp.Piecewise((dl.x, dl.x > 0), (dl.x * dl.alpha, True))},
    "leaky-relu-log-abs-det": {"log(1/alpha) per coordinate": lambda e: -e},
    "leaky-relu-inverse-abs-det": {"10^n_neg (the write-up)": lambda e: 10**dl.n_neg},
}


def _planted(e, value):
    return e.applyfunc(lambda t: t * value) if isinstance(e, sp.MatrixBase) else e * value


#: Variants of every derivation: NaN and infinity planted, a factor 1 + 1/1000, and the wrong results above.
GENERIC_WRONG = {
    "NaN planted": lambda e: _planted(e, sp.nan),
    "complex infinity planted": lambda e: _planted(e, sp.zoo),
    "factor 1 + 1/1000": lambda e: _planted(e, 1 + sp.Rational(1, 1000)),
}


#: Results whose value is infinite: a factor leaves it unchanged, so it is not a wrong variant there.
INFINITE = {"kl-uniform-reverse"}


def _derivation_variants(rid: str) -> dict:
    generic = {k: v for k, v in GENERIC_WRONG.items() if not (rid in INFINITE and k.startswith("factor"))}
    return {**generic, **WRONG_RESULTS.get(rid, {})}


ALL = registry.all_results()


#: Checks tried first for a result's variants (substrings of their names): cheap and to the point.
PREFERRED = {"kl-reverse-fit": ("one local optimum per mode", "derived gradient")}


def _rejecting_check(bad, checks) -> tuple[str, str] | None:
    """(name, figure) of the first check that rejects ``bad`` (preferred checks, then by kind); None if all pass."""
    first = PREFERRED.get(bad.id, ())

    def order(c):
        hits = [n for n, sub in enumerate(first) if sub in c.name]
        return (0, hits[0]) if hits else (1, KIND_ORDER.index(c.kind))

    for chk in sorted(checks, key=order):
        rec = run_check(bad, chk)
        if not rec.passed and not rec.figure.startswith("error: TypeError"):
            return chk.name, rec.figure
    return None


@pytest.mark.parametrize("result", ALL, ids=lambda r: r.id)
def test_every_planted_wrong_variant_is_rejected_by_the_results_own_checks(result):
    escaped = []
    for name, change in _numeric_variants(result).items():
        bad = dataclasses.replace(result, **(change if isinstance(change, dict) else {"numeric": change}))
        bad.__dict__["_derivation"] = result.derivation()  # the same derive: reuse its (cached) derivation
        # Symbolic checks read only the derivation, which this variant leaves alone.
        if _rejecting_check(bad, [c for c in result.checks if c.kind != "symbolic"]) is None:
            escaped.append(f"numeric: {name}")
    for name, wrong in _derivation_variants(result.id).items():
        bad = dataclasses.replace(result, derive=wrong_derivation(result, wrong(result.expr)))
        if _rejecting_check(bad, result.checks) is None:
            escaped.append(f"derivation: {name}")
    assert not escaped, f"no check of {result.id} rejects: " + "; ".join(escaped)


def test_every_result_has_a_write_up_or_hand_made_wrong_derivation():
    assert {r.id for r in ALL} <= set(WRONG_RESULTS)


# ----------------------------------------------------------------- non-finite values never pass


def test_relative_error_counts_nan_and_unshared_infinities_as_infinite():
    err = relative_error([np.nan, np.inf, np.inf, -np.inf, 1.0, np.nan], [np.nan, np.inf, 1.0, np.inf, np.inf, 1.0])
    assert err.tolist() == [np.inf, 0.0, np.inf, np.inf, np.inf, np.inf]


def test_mc_outcome_fails_on_any_non_finite_input():
    assert mc_outcome(1.0, 0.1, 1.0).passed
    for est, se, truth in [(np.nan, 0.1, 1.0), (1.0, np.nan, 1.0), (1.0, 0.1, np.nan), (np.inf, 0.1, np.inf),
                           (1.0, np.inf, 1.0), (1.0, 0.0, np.nan)]:
        assert not mc_outcome(est, se, truth).passed, (est, se, truth)


def test_high_precision_equal_rejects_nan_and_complex_infinity_even_on_both_sides():
    result = registry.get("lognormal-pdf")
    expr = result.expr
    rng = np.random.default_rng(0)
    assert high_precision_equal(result, expr, expr, rng)[0]
    for a, b in [(expr * sp.nan, expr * sp.nan), (expr * sp.nan, expr), (sp.zoo * expr, sp.zoo * expr),
                 (expr + sp.oo, expr)]:
        assert not high_precision_equal(result, a, b, rng)[0], (a, b)


def test_high_precision_equal_accepts_the_same_real_infinity():
    result = registry.get("kl-uniform")
    assert high_precision_equal(result, result.expr, result.hand(), np.random.default_rng(0), n=10)[0]


@pytest.mark.parametrize("planted", [sp.nan, sp.oo, sp.zoo], ids=str)
def test_indexed_comparison_rejects_a_non_finite_derivation(planted):
    # The bug this guards: max(worst, nan) kept worst, so a derivation times nan passed.
    good = registry.get("em-pi-update")
    bad = dataclasses.replace(good, derive=wrong_derivation(good, good.expr * planted))
    assert not run_check(bad, indexed_matches_hand(problems=2)).passed
    assert not run_check(bad, numeric_matches_indexed(lambda f, prob, ix: f(prob.X, prob.R)[0][ix["k"] - 1],
                                                      problems=2)).passed


def _times(v, c):
    with np.errstate(invalid="ignore"):  # 0 * inf is the NaN being planted
        return np.asarray(v) * c


@pytest.mark.parametrize("planted", [np.nan, np.inf], ids=str)
def test_numeric_comparison_rejects_non_finite_values_on_either_side(planted):
    good = registry.get("lognormal-pdf")
    check = numeric_matches_derivation(n=50, rtol=1e-10)
    bad_numeric = dataclasses.replace(good, numeric=lambda z, mu, sigma: _times(good.numeric(z, mu, sigma), planted))
    assert not run_check(bad_numeric, check).passed
    bad_derivation = dataclasses.replace(good, derive=wrong_derivation(good, good.expr * sp.sympify(planted)))
    assert not run_check(bad_derivation, check).passed
    # NaN on both sides is not agreement either.
    both = dataclasses.replace(bad_derivation, numeric=lambda z, mu, sigma: _times(good.numeric(z, mu, sigma), np.nan))
    assert not run_check(both, check).passed


def test_matching_infinities_of_the_same_sign_are_agreement():
    good = registry.get("kl-uniform-reverse")
    assert all(run_check(good, c).passed for c in good.checks if c.kind == "numeric")
    assert math.isinf(float(good.numeric()))



def test_orthant_quadrature_integrates_a_jumping_density_and_flags_a_divergent_integral():
    from genverify.checks import orthant_quadrature

    # Twice a density that jumps across the axes: half-normals of scale 0.1 below 0 and 3 above, on each axis.
    def twice(x):
        s = np.where(x < 0, 0.1, 3.0)
        return 2 * np.prod(np.exp(-0.5 * (x / s) ** 2) / (np.sqrt(2 * np.pi) * s), axis=-1)

    total, error = orthant_quadrature(twice, dim=2)
    assert abs(total - 2) <= 1e-12 and error <= 1e-8
    # 1 / (1 + |x|) on the line diverges: the two rules disagree.
    _, error = orthant_quadrature(lambda x: 1 / (1 + np.abs(x[..., 0])), dim=1)
    assert error > 1
