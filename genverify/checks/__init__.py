"""Reusable checks that tie a result's derivation to its numerics.

Every factory returns a :class:`~genverify.registry.Check`. Result modules
combine the generic ones here with result-specific Monte Carlo and
cross-library checks written with :func:`check`.
"""

from __future__ import annotations

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


def lambdify_result(result: Result, expr: sp.Expr | None = None) -> Callable[..., np.ndarray]:
    """Vectorised float64 evaluation of ``expr`` (default: the derived result).

    A matrix (a vector-valued result) evaluates to its components stacked on the last axis.
    """
    expr = result.expr if expr is None else expr
    if isinstance(expr, sp.MatrixBase):
        parts = [lambdify_result(result, e) for e in expr]
        return lambda values: np.stack([f(values) for f in parts], axis=-1)
    f = sp.lambdify([p.symbol for p in result.params], expr, modules=["scipy", "numpy"])
    names = [p.name for p in result.params]

    def call(values: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = f(*[np.asarray(values[n], dtype=float) for n in names])
        shape = np.broadcast(*[np.asarray(values[n]) for n in names]).shape if names else ()
        return np.broadcast_to(np.asarray(out, dtype=float), shape)

    return call


def relative_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| / max(|b|, tiny), with equal infinities (and equal NaNs) counting as 0."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / np.maximum(np.abs(b), np.finfo(float).tiny)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err))


def high_precision_equal(result: Result, a: sp.Expr, b: sp.Expr, rng: np.random.Generator,
                         n: int = 60, digits: int = 30) -> tuple[bool, float]:
    """Compare two expressions at ``n`` random parameter points with ``digits`` digits."""
    vals = result.sample_params(rng, n)
    syms = [p.symbol for p in result.params]
    worst = 0.0
    for i in range(n):
        subs = {s: sp.Float(vals[p.name][i], digits) for s, p in zip(syms, result.params)}
        va = sp.N(a.subs(subs), digits)
        vb = sp.N(b.subs(subs), digits)
        if va == vb:
            continue
        if not (va.is_finite and vb.is_finite):
            return False, float("inf")
        scale = max(abs(vb), sp.Float(1e-300))
        worst = max(worst, float(abs(va - vb) / scale))
    return worst < 10.0 ** (-(digits - 5)), worst


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
        ok, worst = high_precision_equal(result, derived, hand, rng)
        return Outcome(ok, f"30-digit max rel diff {worst:.1e}",
                       "" if ok else f"derived {derived} differs from hand form {hand}")

    return Check(name=name, kind="symbolic", run=run)


def numeric_matches_derivation(n: int = 2000, rtol: float = 1e-10,
                               name: str = "numeric = lambdified derivation") -> Check:
    """The public float64 function agrees with the lambdified derivation at random points."""

    def run(result: Result, rng: np.random.Generator) -> Outcome:
        vals = result.sample_params(rng, n)
        want = lambdify_result(result)(vals)
        got = np.asarray(result.evaluate_numeric(vals), dtype=float)
        err = relative_error(got, want)
        worst = float(np.max(err)) if err.size else 0.0
        i = int(np.argmax(err)) if err.size else 0
        detail = ""
        if worst > rtol:
            row = np.unravel_index(i, err.shape)[0] if err.ndim else i  # a vector result: the point's row
            point = {k: float(v[row]) for k, v in vals.items()}
            detail = f"at {point}: numeric {got.flat[i]!r}, derivation {want.flat[i]!r}"
        return Outcome(worst <= rtol, f"max rel err {worst:.1e} ({n} pts)", detail, {"max_rel_err": worst})

    return Check(name=name, kind="numeric", run=run)


def mc_outcome(estimate: float, standard_error: float, truth: float, label: str = "") -> Outcome:
    """Pass when the estimate lies within :data:`MC_SIGMAS` standard errors of the truth."""
    z = abs(estimate - truth) / standard_error if standard_error > 0 else (0.0 if estimate == truth else np.inf)
    return Outcome(
        bool(z <= MC_SIGMAS),
        f"{label}{estimate:.5g} ± {standard_error:.2g} vs {truth:.5g} ({z:.1f} SE)",
        data={"estimate": estimate, "se": standard_error, "truth": truth, "z": z},
    )
