"""Reusable checks that tie a result's derivation to its numerics.

Every factory returns a :class:`~genverify.registry.Check`. Result modules
combine the generic ones here with result-specific Monte Carlo and
cross-library checks written with :func:`check`.
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable, Mapping

import numpy as np
import sympy as sp

from genverify.core import Check, Outcome, Result

#: Monte Carlo checks accept |estimate - truth| <= MC_SIGMAS * standard error.
#: For a normal estimate the two-sided false-alarm rate of one comparison at
#: 5 SE is 5.7e-7, so a suite of a few hundred such comparisons alarms falsely
#: with probability below 1e-4 (and the seeds make every run identical anyway).
MC_SIGMAS = 5.0


def check(name: str, kind: str) -> Callable[[Callable[[Result, np.random.Generator], Outcome]], Check]:
    """Decorator turning ``f(result, rng) -> Outcome`` into a :class:`Check`."""

    def wrap(f: Callable[[Result, np.random.Generator], Outcome]) -> Check:
        return Check(name=name, kind=kind, run=f)

    return wrap


@functools.lru_cache(maxsize=256)
def _lambdify(symbols: tuple, expr: sp.Expr) -> Callable:
    """``sp.lambdify`` once per (symbols, expression): checks of stand-in results reuse it."""
    return sp.lambdify(list(symbols), expr, modules=["scipy", "numpy"])


def lambdify_result(result: Result, expr: sp.Expr | None = None) -> Callable[..., np.ndarray]:
    """Vectorised float64 evaluation of ``expr`` (default: the derived result).

    A matrix (a vector-valued result) evaluates to its components stacked on the last axis.
    """
    expr = result.expr if expr is None else expr
    if isinstance(expr, sp.MatrixBase):
        parts = [lambdify_result(result, e) for e in expr]
        return lambda values: np.stack([f(values) for f in parts], axis=-1)
    f = _lambdify(tuple(p.symbol for p in result.params), expr)
    names = [p.name for p in result.params]

    def call(values: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = f(*[np.asarray(values[n], dtype=float) for n in names])
        shape = np.broadcast(*[np.asarray(values[n]) for n in names]).shape if names else ()
        return np.broadcast_to(np.asarray(out, dtype=float), shape)

    return call


def relative_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|b|, tiny), elementwise; ``b`` is the reference.

    Non-finite values never pass by accident: a NaN on either side is an
    infinite error (NaN is never agreement, not even with a NaN reference),
    and so is an infinity the reference does not have. Equal infinities of
    the same sign agree (error 0): the reference itself may be infinite, as
    KL(U[-2,2] || U[0,1]) = +oo is.

    >>> relative_error([1.0, np.inf, np.inf, np.nan, 1.0], [1.0, np.inf, -np.inf, np.nan, np.inf]).tolist()
    [0.0, 0.0, inf, inf, inf]
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)
    same = a == b  # False wherever either side is NaN; True for equal infinities
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def worst(*values) -> float:
    """The largest of ``values`` (numbers or arrays), a NaN counting as +inf.

    Python's ``max(worst, nan)`` keeps ``worst`` and ``np.maximum`` keeps the NaN,
    which ``nan <= tol`` then rejects only by luck; here a NaN is the worst there is.

    >>> worst(1e-3, float("nan")), worst(np.array([1.0, 2.0]), 0.5)
    (inf, 2.0)
    """
    out = -np.inf
    for v in values:
        arr = np.asarray(v, dtype=float)
        if arr.size == 0:
            continue
        if np.isnan(arr).any():
            return np.inf
        out = max(out, float(np.max(arr)))
    return float(out)


def least(*values) -> float:
    """The smallest of ``values``, a NaN counting as -inf (for checks of a lower bound).

    >>> least(0.1, float("nan"))
    -inf
    """
    return -worst(*[-np.asarray(v, dtype=float) for v in values])


def sympy_relative_difference(va: sp.Expr, vb: sp.Expr) -> float:
    """|va - vb| / |vb| for two evaluated SymPy numbers; ``vb`` is the reference.

    0 for the same real infinity (oo and oo); +inf for NaN, complex infinity
    (zoo), a non-real or unevaluated value, or an infinity the reference does
    not share.
    """
    bad = (sp.nan, sp.zoo)
    if va in bad or vb in bad or not (va.is_extended_real and vb.is_extended_real):
        return float("inf")
    if va.is_infinite or vb.is_infinite:
        return 0.0 if va == vb else float("inf")
    if va == vb:
        return 0.0
    scale = max(abs(vb), sp.Float(1e-300))
    out = float(abs(va - vb) / scale)
    return out if np.isfinite(out) else float("inf")


def high_precision_equal(result: Result, a: sp.Expr, b: sp.Expr, rng: np.random.Generator,
                         n: int = 60, digits: int = 30) -> tuple[bool, float]:
    """Compare two expressions at ``n`` random parameter points with ``digits`` digits.

    ``b`` is the reference. A NaN, a complex infinity or an infinity that ``b``
    does not have at the same point is a failure (see :func:`sympy_relative_difference`).
    """
    vals = result.sample_params(rng, n)
    syms = [p.symbol for p in result.params]
    largest = 0.0
    for i in range(n):
        subs = {s: sp.Float(vals[p.name][i], digits) for s, p in zip(syms, result.params)}
        va = sp.N(a.subs(subs), digits)
        vb = sp.N(b.subs(subs), digits)
        largest = worst(largest, sympy_relative_difference(va, vb))
        if not np.isfinite(largest):
            return False, largest
    return largest < 10.0 ** (-(digits - 5)), largest


def symbolic_matches_hand(name: str = "derivation = hand form") -> Check:
    """The derived expression equals the independent hand-written form.

    Tries ``simplify(derived - hand) == 0`` first (a proof); for forms SymPy
    cannot reconcile (inverse trig identities inside ``Piecewise``, say) it
    falls back to a 30-digit comparison at random points and says so.
    """

    def run(result: Result, rng: np.random.Generator) -> Outcome:
        if result.hand is None:
            return Outcome(False, "no hand form", "result has no hand-written form")
        derived, hand = result.expr, result.hand()
        if derived == hand:
            return Outcome(True, "identical")
        try:
            diff = sp.simplify(sp.piecewise_fold(derived - hand))
        except Exception:  # pragma: no cover - SymPy internals
            diff = None
        if diff == 0:
            return Outcome(True, "simplify(derived - hand) = 0")
        ok, largest = high_precision_equal(result, derived, hand, rng)
        return Outcome(ok, f"30-digit max rel diff {largest:.1e}",
                       "" if ok else f"derived {derived} differs from hand form {hand}")

    return Check(name=name, kind="symbolic", run=run)


def numeric_matches_derivation(n: int = 2000, rtol: float = 1e-10,
                               name: str = "numeric = lambdified derivation") -> Check:
    """The public float64 function agrees with the lambdified derivation at random points."""

    def run(result: Result, rng: np.random.Generator) -> Outcome:
        vals = result.sample_params(rng, n)
        want = lambdify_result(result)(vals)
        got = np.asarray(result.evaluate_numeric(vals), dtype=float)
        if got.shape != want.shape:
            return Outcome(False, f"shape {got.shape} vs {want.shape}", "the numeric function returned another shape")
        err = relative_error(got, want)  # inf wherever either side is NaN or only one is infinite
        largest = worst(err) if err.size else 0.0
        i = int(np.argmax(err)) if err.size else 0
        detail = ""
        if largest > rtol:
            row = np.unravel_index(i, err.shape)[0] if err.ndim else i  # a vector result: the point's row
            point = {k: float(v[row]) for k, v in vals.items()}
            detail = f"at {point}: numeric {got.flat[i]!r}, derivation {want.flat[i]!r}"
        return Outcome(largest <= rtol, f"max rel err {largest:.1e} ({n} pts)", detail, {"max_rel_err": largest})

    return Check(name=name, kind="numeric", run=run)


def mc_outcome(estimate: float, standard_error: float, truth: float, label: str = "") -> Outcome:
    """Pass when the estimate lies within :data:`MC_SIGMAS` standard errors of the truth.

    Fails on a non-finite estimate, truth or standard error (a Monte Carlo
    estimate cannot agree with an infinite truth), and on a zero standard
    error unless the estimate equals the truth exactly.
    """
    estimate, standard_error, truth = float(estimate), float(standard_error), float(truth)
    if not (np.isfinite(estimate) and np.isfinite(standard_error) and np.isfinite(truth)) or standard_error < 0:
        z = float("inf")
    elif standard_error > 0:
        z = abs(estimate - truth) / standard_error
    else:
        z = 0.0 if estimate == truth else float("inf")
    return Outcome(
        bool(z <= MC_SIGMAS),
        f"{label}{estimate:.5g} ± {standard_error:.2g} vs {truth:.5g} ({z:.1f} SE)",
        data={"estimate": estimate, "se": standard_error, "truth": truth, "z": z},
    )


def orthant_quadrature(f: Callable[[np.ndarray], np.ndarray], dim: int = 2, order: int = 64) -> tuple[float, float]:
    r"""(∫_{R^dim} f, an error estimate): tensor Gauss–Legendre, orthant by orthant.

    On each half-line x = ±t/(1 − t), t ∈ [0, 1), so

    .. math:: \int_0^\infty g(x)\,dx = \int_0^1 g\!\left(\tfrac{t}{1-t}\right) \frac{dt}{(1-t)^2},

    and the orthants are integrated apart, so a density that jumps across the axes
    (a Leaky-ReLU flow's) is smooth on each piece. ``f`` takes points of shape
    (..., dim) and returns their values (vectorised: one call per orthant). The
    estimate is the difference between the rules of ``order`` and ``2 * order``
    nodes per axis; the value returned is the finer one's.
    """
    def rule(n: int) -> float:
        t, w = np.polynomial.legendre.leggauss(n)
        t, w = (t + 1) / 2, w / 2
        x, wx = t / (1 - t), w / (1 - t) ** 2
        weights = functools.reduce(np.multiply.outer, [wx] * dim)  # the same in every orthant
        total = 0.0
        for signs in itertools.product((-1.0, 1.0), repeat=dim):
            grid = np.stack(np.meshgrid(*[s * x for s in signs], indexing="ij"), axis=-1)
            total += float(np.sum(weights * np.asarray(f(grid), dtype=float)))
        return total

    coarse, fine = rule(order), rule(2 * order)
    return fine, abs(fine - coarse)


# ----------------------------------------------------------------- sums at concrete sizes


def expand_concrete(e: sp.Expr) -> sp.Expr:
    """``e`` with every sum and product over integer limits written out (``doit``, but far faster for the
    nested sums of the EM results: terms are built by substitution; an inner sum whose limits do not
    depend on the outer variable is written out once, then instantiated for each of its values)."""
    out = _expand(e)
    if out.has(sp.Sum, sp.Product, sp.Derivative):
        out = out.doit()
    return out


def _expand(e):
    if isinstance(e, (sp.Sum, sp.Product)):
        var, lo, hi = e.limits[-1]
        lo, hi = _expand(lo), _expand(hi)
        if not (lo.is_Integer and hi.is_Integer) or hi - lo > 10_000:
            return e.doit()
        inner = type(e)(e.function, *e.limits[:-1]) if len(e.limits) > 1 else e.function
        values = [sp.Integer(j) for j in range(int(lo), int(hi) + 1)]
        nested = inner.atoms(sp.Sum, sp.Product)
        if nested and not any(var in s.variables or var in sp.Tuple(*s.limits).free_symbols for s in nested):
            # var is free in the inner sums' bodies only: write them out once, then substitute.
            body = _expand(inner)
            if not body.has(sp.Sum, sp.Product):
                terms = [body.xreplace({var: j}) for j in values]
                return sp.Add(*terms) if isinstance(e, sp.Sum) else sp.Mul(*terms)
        terms = [_expand(_substitute_free(inner, var, j)) for j in values]
        return sp.Add(*terms) if isinstance(e, sp.Sum) else sp.Mul(*terms)
    if not e.args or not e.has(sp.Sum, sp.Product):
        return e
    return e.func(*[_expand(a) for a in e.args])


def _substitute_free(e, var, value):
    """``e`` with the free occurrences of ``var`` replaced (an inner sum over the same name keeps its own)."""
    if e == var:
        return value
    if not e.args or var not in e.free_symbols:
        return e
    if not any(var in s.variables for s in e.atoms(sp.Sum, sp.Product)):
        return e.xreplace({var: value})  # nothing binds var inside: the fast, cached substitution
    if isinstance(e, (sp.Sum, sp.Product)):
        body = e.function
        limits = []
        shadowed = False
        for v, lo, hi in e.limits:
            lo = lo if shadowed else _substitute_free(lo, var, value)
            hi = hi if shadowed else _substitute_free(hi, var, value)
            limits.append((v, lo, hi))
            shadowed = shadowed or v == var
        if not shadowed:
            body = _substitute_free(body, var, value)
        return type(e)(body, *limits)
    return e.func(*[_substitute_free(a, var, value) for a in e.args])
