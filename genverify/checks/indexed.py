"""Checks for indexed results (sums and products over i = 1..N, k = 1..K, d = 1..D).

Question 2's results are formulas with symbolic sizes. These checks compare
expressions at concrete small sizes: the sizes and free indices are
substituted, every sum and product is written out (:func:`expand_concrete`), and random entries
(0/1 pixels, probabilities in (0, 1), mixing weights and responsibilities on
the simplex, one-hot codes) are filled in, then both sides are evaluated with
:data:`DIGITS` digits.
"""

from __future__ import annotations

import functools
import itertools
from typing import Callable

import numpy as np
import sympy as sp

from genverify.checks import expand_concrete, relative_error, sympy_relative_difference, worst
from genverify.core import Check, Outcome, Result
from genverify.derivations import em
from genverify.derivations.em import D, K, N, eta, p, pi, x, z

#: Digits used to evaluate derivations and hand forms at concrete sizes.
DIGITS = 30
#: Largest concrete size (N, K, D) used by the checks (the claim checker uses 4).
MAX_CHECK_SIZE = 3

# ----------------------------------------------------------------- concrete sizes


class Problem:
    """Random data and parameters of one concrete (N, K, D), as arrays and as SymPy entries."""

    def __init__(self, rng: np.random.Generator, N: int, K: int, D: int):
        self.N, self.K, self.D = N, K, D
        self.X = rng.integers(0, 2, size=(N, D)).astype(float)
        self.P = rng.uniform(0.05, 0.95, size=(K, D))
        self.w = rng.dirichlet(np.ones(K))
        self.R = rng.dirichlet(np.ones(K), size=N)
        self.Z = np.eye(K)[rng.integers(0, K, size=N)]

    def entries(self) -> dict:
        f = lambda v: sp.Float(float(v), DIGITS)  # noqa: E731 - the exact binary value of the float
        out = {}
        for a, b in itertools.product(range(self.N), range(self.D)):
            out[x[a + 1, b + 1]] = sp.Integer(int(self.X[a, b]))
        for a, b in itertools.product(range(self.K), range(self.D)):
            out[p[a + 1, b + 1]] = f(self.P[a, b])
        for a in range(self.K):
            out[pi[a + 1]] = f(self.w[a])
        for a, b in itertools.product(range(self.N), range(self.K)):
            out[eta[a + 1, b + 1]] = f(self.R[a, b])
            out[z[a + 1, b + 1]] = sp.Integer(int(self.Z[a, b]))
        # The one-image, one-component forms of 2a-i: x[d], p[d] are the first row.
        for b in range(self.D):
            out[x[b + 1]] = sp.Integer(int(self.X[0, b]))
            out[p[b + 1]] = f(self.P[0, b])
        return out

    def sizes(self) -> dict:
        return {N: sp.Integer(self.N), K: sp.Integer(self.K), D: sp.Integer(self.D)}

    def index_points(self, result: Result) -> list[dict]:
        """Every value of the result's free indices (i <= N, k <= K, d <= D)."""
        names = [prm.name for prm in result.params]
        ranges = {"i": self.N, "k": self.K, "d": self.D}
        free = [(em.i if n == "i" else em.k if n == "k" else em.d, ranges[n]) for n in ("i", "k", "d") if n in names]
        return [{s: sp.Integer(v) for (s, _), v in zip(free, combo)}
                for combo in itertools.product(*[range(1, hi + 1) for _, hi in free])]


def evaluate(expr: sp.Expr, problem: Problem, index: dict) -> sp.Float:
    """``expr`` at the problem's sizes, the given free indices and the problem's entries, to DIGITS digits."""
    concrete = _concrete(expr, tuple(problem.sizes().items()), tuple(index.items()))
    return sp.N(concrete.xreplace(problem.entries()), DIGITS)


@functools.lru_cache(maxsize=512)
def _concrete(expr: sp.Expr, sizes: tuple, index: tuple) -> sp.Expr:
    """``expr`` with concrete sizes and indices, every sum and product expanded (cached: the same
    derivation is evaluated at the same sizes by several checks)."""
    return expand_concrete(expr.xreplace({**dict(sizes), **dict(index)}))


def _as_float(value: sp.Expr) -> float:
    """A SymPy number as a float; NaN for complex infinity or anything non-real (never agreement)."""
    try:
        out = complex(value)
    except (TypeError, ValueError):
        return float("nan")
    return out.real if out.imag == 0 else float("nan")


def random_problems(rng: np.random.Generator, count: int, max_size: int = MAX_CHECK_SIZE) -> list[Problem]:
    """``count`` random problems, all sizes from (1, 1, 1) up to ``max_size`` covered first."""
    sizes = list(itertools.product(range(1, max_size + 1), repeat=3))
    rng.shuffle(sizes)
    sizes.sort(key=sum)  # small first: (1, 1, 1) is always checked
    chosen = [sizes[n % len(sizes)] for n in range(count)]
    return [Problem(rng, *s) for s in chosen]


# ----------------------------------------------------------------- check factories


def indexed_matches_hand(problems: int = 8, name: str = "derivation = hand form") -> Check:
    """The derived expression equals the hand-written form.

    A proof when ``simplify(derived - hand) == 0``; otherwise (and in any case,
    as a second line of evidence) a 30-digit comparison at concrete sizes up to
    :data:`MAX_CHECK_SIZE` with random entries, at every value of the free indices.
    """

    def run(result: Result, rng: np.random.Generator) -> Outcome:
        derived, hand = result.expr, result.hand()
        proved = derived == hand or sp.simplify(derived - hand) == 0
        largest, points = 0.0, 0
        for prob in random_problems(rng, problems):
            for index in prob.index_points(result):
                a, b = evaluate(derived, prob, index), evaluate(hand, prob, index)
                # NaN, zoo or an infinity the hand form lacks is an infinite difference, never agreement.
                largest = worst(largest, sympy_relative_difference(a, b))
                points += 1
        ok = largest < 1e-25 and points > 0
        how = "simplify(derived - hand) = 0" if proved else "not proved by simplify"
        return Outcome(ok, f"{how}; {DIGITS}-digit agreement at {points} concrete points "
                       f"(max rel diff {largest:.1e})", "" if ok else f"derived {derived} vs hand {hand}")

    return Check(name=name, kind="symbolic", run=run)


def numeric_matches_indexed(value: Callable[[Callable, Problem, dict], float], problems: int = 10,
                            rtol: float = 1e-12, name: str = "numeric = derivation at concrete sizes") -> Check:
    """The float64 function agrees with the derivation evaluated at random concrete sizes and entries.

    ``value(numeric, problem, indices)`` reads the result's value off ``numeric`` (the result's
    numeric function, so that a stand-in result with another function is checked) at a problem
    and the free indices (``{"i": 1, "k": 2}``, 1-based).
    """

    def run(result: Result, rng: np.random.Generator) -> Outcome:
        largest, points, detail = 0.0, 0, ""
        for prob in random_problems(rng, problems):
            for index in prob.index_points(result):
                want = _as_float(evaluate(result.expr, prob, index))
                got = float(value(result.numeric, prob, {str(s): int(v) for s, v in index.items()}))
                err = float(relative_error(got, want))  # inf for a NaN or an unshared infinity
                if err > largest:
                    largest = err
                    if err > rtol:
                        detail = (f"at N, K, D = {prob.N}, {prob.K}, {prob.D}, indices "
                                  f"{ {str(s): int(v) for s, v in index.items()} }: numeric {got!r}, derivation {want!r}")
                points += 1
        return Outcome(largest <= rtol and points > 0,
                       f"max rel err {largest:.1e} ({points} points, sizes up to {MAX_CHECK_SIZE})",
                       detail, {"max_rel_err": largest})

    return Check(name=name, kind="numeric", run=run)
