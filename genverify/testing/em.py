r"""Check a user's EM for a mixture of Bernoullis (questions 2-3): E-step and M-step, stability at D = 784.

Conventions (the homework's, and :mod:`genverify.numerics.em`'s): ``X`` is the
``(N, D)`` matrix of 0/1 pixels, ``p`` the ``(K, D)`` pixel probabilities
:math:`p^{(k)}_d`, ``pi`` the ``(K,)`` mixing weights and ``resp`` the
``(N, K)`` responsibilities :math:`\eta(z^{(i)}_k)` (rows sum to 1).

* :func:`assert_e_step` checks ``e_step(X, p, pi) -> resp`` against
  ``em-responsibility`` on random small problems (Hypothesis shrinks a failure
  to the smallest problem it can find), then at MNIST size, D = 784, where the
  literal quotient of products underflows to 0/0 = nan: a product-form E-step
  fails there with a message that says so and names the log-space fix.
* :func:`assert_m_step` checks ``m_step(X, resp) -> (pi, p)`` (either order, or
  a dict) against ``em-pi-update`` and ``em-p-update``.
* :func:`random_problem`, :func:`mnist_sized_problems` and the Hypothesis
  strategy :func:`em_problems` build valid problems for users' own tests.

The references are the verified log-space functions
:func:`genverify.numerics.responsibilities` and :func:`genverify.numerics.m_step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from genverify import registry
from genverify.core import ParameterError
from genverify.numerics import em as nem
from genverify.testing._calls import Caller, NotNumeric, agreement, bind, default_seed, describe, fmt, to_numpy
from genverify.testing.implements import formula, hypothesis_settings

__all__ = [
    "E_STEP_SYMBOLS",
    "M_STEP_SYMBOLS",
    "EMProblem",
    "assert_e_step",
    "assert_m_step",
    "em_problems",
    "mnist_sized_problems",
    "random_problem",
]

#: The arguments of an E-step and of an M-step, by name (``names`` maps others to these).
E_STEP_SYMBOLS = ("X", "p", "pi")
M_STEP_SYMBOLS = ("X", "resp")
#: MNIST's pixels per image.
MNIST_D = 784
DEFAULT_RTOL = 1e-7
#: Responsibilities below this may come back as 0 (a partial underflow costs nothing).
DEFAULT_ATOL = 1e-10


@dataclass(frozen=True)
class EMProblem:
    """A valid EM problem: binary ``X`` (N, D), ``p`` (K, D) inside (0, 1), ``pi`` (K,) and ``resp`` (N, K) on the simplex."""

    X: np.ndarray
    p: np.ndarray
    pi: np.ndarray
    resp: np.ndarray
    label: str = ""

    @property
    def N(self) -> int:
        return self.X.shape[0]

    @property
    def K(self) -> int:
        return self.p.shape[0]

    @property
    def D(self) -> int:
        return self.X.shape[1]

    def sizes(self) -> str:
        plural = lambda n, word: f"{n} {word}{'' if n == 1 else 's'}"
        return f"N = {plural(self.N, 'image')}, K = {plural(self.K, 'component')}, D = {plural(self.D, 'pixel')}"


def random_problem(rng: np.random.Generator | int | None = None, N: int = 20, K: int = 3,
                   D: int = MNIST_D, p_range: tuple[float, float] = (0.0, 1.0), label: str = "") -> EMProblem:
    """A random problem: pixels fair coins, ``p ~ U(p_range)`` (kept strictly inside (0, 1)), ``pi`` and
    the rows of ``resp`` uniform on the simplex (Dirichlet(1)). The default ``p_range`` is a random
    initialisation, as EM starts."""
    rng = np.random.default_rng(rng)
    for name, value in (("N", N), ("K", K), ("D", D)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ParameterError(name, f"{{param}} must be an integer >= 1, got {value!r}")
    lo, hi = p_range
    if not (0.0 <= lo < hi <= 1.0):
        raise ParameterError("p_range", f"{{param}} must be (low, high) with 0 <= low < high <= 1, got {p_range!r}")
    X = rng.integers(0, 2, size=(N, D)).astype(float)
    p = np.clip(rng.uniform(lo, hi, size=(K, D)), 1e-9, 1 - 1e-9)
    pi = rng.dirichlet(np.ones(K))
    resp = rng.dirichlet(np.ones(K), size=N)
    return EMProblem(X, p, pi, resp, label)


def mnist_sized_problems(seed: int | None = None) -> list[EMProblem]:
    """Problems at D = 784: a random initialisation (``p ~ U(0, 1)``; every image's likelihood is about
    e^-784 under every component, so the product form is 0/0) and a later iterate (``p`` in (0.05, 0.95),
    K = 10; some components underflow, others not)."""
    rng = np.random.default_rng([default_seed(seed), MNIST_D])
    return [random_problem(rng, N=10, K=3, D=MNIST_D, label="p drawn from U(0, 1), as a random initialisation"),
            random_problem(rng, N=10, K=10, D=MNIST_D, p_range=(0.05, 0.95), label="p drawn from U(0.05, 0.95)")]


def em_problems(max_n: int = 5, max_k: int = 4, max_d: int = 6) -> st.SearchStrategy[EMProblem]:
    """Hypothesis strategy of small problems. Entries come from grids that shrink to simple values:
    ``p`` in {0.05, 0.10, ..., 0.95} (towards 0.5), weights and responsibilities from positive
    integers normalised (towards equal weights)."""
    return _problems(max_n, max_k, max_d)


@st.composite
def _problems(draw, max_n: int, max_k: int, max_d: int) -> EMProblem:
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, max_k))
    d = draw(st.integers(1, max_d))
    X = np.array(draw(st.lists(st.lists(st.sampled_from([1.0, 0.0]), min_size=d, max_size=d),
                               min_size=n, max_size=n)))
    grid = st.integers(-9, 9).map(lambda j: 0.5 + j / 20)
    p = np.array(draw(st.lists(st.lists(grid, min_size=d, max_size=d), min_size=k, max_size=k)))
    w = np.array(draw(st.lists(st.integers(1, 9), min_size=k, max_size=k)), dtype=float)
    r = np.array(draw(st.lists(st.lists(st.integers(1, 9), min_size=k, max_size=k), min_size=n, max_size=n)),
                 dtype=float)
    return EMProblem(X, p, w / w.sum(), r / r.sum(axis=1, keepdims=True))


# ----------------------------------------------------------------- failures


class _Failure(Exception):
    """Raised inside the Hypothesis test; becomes the AssertionError's message."""

    def __init__(self, lines: list[str], problem: EMProblem, error: BaseException | None = None):
        super().__init__("\n".join(lines))
        self.lines, self.problem, self.error = lines, problem, error


def _show_problem(problem: EMProblem, names: tuple[str, ...]) -> list[str]:
    if problem.D > 12 or problem.N > 8:
        return [f"    {problem.sizes()} ({problem.label or 'random'})"]
    width = max(len(n) for n in names)
    return [f"    {problem.sizes()}"] + [f"    {n.ljust(width)} = {fmt(getattr(problem, n))}" for n in names]


def _call(caller: Caller, values: dict[str, Any], problem: EMProblem, head: str, fn: Callable,
          shown: tuple[str, ...], origin: str) -> Any:
    try:
        return caller(values)
    except Exception as exc:  # noqa: BLE001 - the user's bug, reported with its problem
        lines = [head, f"  counterexample ({origin}):", *_show_problem(problem, shown),
                 f"  {describe(fn)} raised {type(exc).__name__}: {exc}"]
        raise _Failure(lines, problem, exc) from None


def _as_array(out: Any, head: str, fn: Callable, problem: EMProblem, shown, origin: str) -> np.ndarray:
    try:
        return to_numpy(out)
    except NotNumeric as exc:
        raise _Failure([head, f"  counterexample ({origin}):", *_show_problem(problem, shown),
                        f"  {describe(fn)} returned {exc}, not an array"], problem) from None


def _run(check: Callable[[EMProblem, str], None], max_examples: int, seed: int, stability: list[EMProblem]) -> None:
    __tracebackhide__ = True

    def test(problem):
        check(problem, "the smallest Hypothesis found")

    run = hypothesis_seed(seed)(hypothesis_settings(max_examples)(given(problem=em_problems())(test)))
    try:
        run()
        for problem in stability:
            check(problem, f"D = {problem.D}, the size of an MNIST image")
    except Flaky as exc:
        raise AssertionError(f"the function gave different answers for the same problem (is it random, or "
                             f"does it modify its inputs or keep state?): {exc}") from None
    except _Failure as failure:
        raise AssertionError(str(failure)) from failure.error


def _footer(result_id: str, reference: str) -> list[str]:
    result = registry.get(result_id)
    return [f"  verified formula ({result_id}): {formula(result)}",
            f"  reference: {reference}; the derivation: `genverify derive {result_id}`"]


# ----------------------------------------------------------------- E-step


def assert_e_step(e_step: Callable, *, names=None, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                  max_examples: int = 100, seed: int | None = None, stability: bool = True,
                  backend: str = "auto") -> None:
    r"""Assert that ``e_step(X, p, pi)`` returns the responsibilities (result ``em-responsibility``, 2b-iii).

    .. math:: \eta(z^{(i)}_k) = \frac{\pi_k \prod_d (p^{(k)}_d)^{x^{(i)}_d}(1-p^{(k)}_d)^{1-x^{(i)}_d}}
              {\sum_j \pi_j \prod_d (p^{(j)}_d)^{x^{(i)}_d}(1-p^{(j)}_d)^{1-x^{(i)}_d}}

    an ``(N, K)`` array (NumPy or torch). Arguments go by name (``X``, ``p``,
    ``pi``); ``names`` maps yours, ``{"weights": "pi", "P": "p"}``. First
    ``max_examples`` small random problems, then (``stability=True``) two at
    D = 784, where a product-form E-step returns 0/0 = nan. Raises
    ``AssertionError`` with the smallest failing problem, expected and got.
    """
    __tracebackhide__ = True
    binding = bind(e_step, E_STEP_SYMBOLS, set(), names, "an E-step")
    caller = Caller(binding, set(), backend)
    result = registry.get("em-responsibility")
    head = (f"{result.id} (question {result.question}): {describe(e_step)} does not compute the responsibilities "
            "eta(z_k^(i)) = P(z_k^(i) = 1 | x^(i), pi, p)")
    shown = ("X", "p", "pi")

    def check(problem: EMProblem, origin: str) -> None:
        out = _call(caller, {"X": problem.X, "p": problem.p, "pi": problem.pi}, problem, head, e_step, shown, origin)
        got = _as_array(out, head, e_step, problem, shown, origin)
        want = nem.responsibilities(problem.X, problem.pi, problem.p)
        if got.shape == want.shape and np.all(agreement(got, want, rtol, atol)):
            return
        lines = [head, f"  counterexample ({origin}):", *_show_problem(problem, shown)]
        if got.shape != want.shape:
            lines.append(f"  {describe(e_step)} returned shape {got.shape}, expected (N, K) = {want.shape}")
            if got.shape == want.T.shape:
                lines.append("  the transpose? Return one row per image and one column per component.")
            raise _Failure(lines + _footer(result.id, _E_REFERENCE), problem)
        if problem.D >= MNIST_D and not np.all(np.isfinite(got)):
            unstable = (f"{result.id} (question {result.question}): {describe(e_step)} is numerically unstable at "
                        f"D = {problem.D}, the size of an MNIST image")
            raise _Failure(_underflow_lines(unstable, problem, got, want, describe(e_step)), problem)
        lines += [f"  expected: {_rows(want)}", f"  got:      {_rows(got)}"]
        lines += _e_hints(got, want, rtol, atol)
        raise _Failure(lines + _footer(result.id, _E_REFERENCE), problem)

    _run(check, max_examples, default_seed(seed), mnist_sized_problems(seed) if stability else [])


_E_REFERENCE = "genverify.numerics.responsibilities (log space)"


def _rows(a: np.ndarray, limit: int = 3) -> str:
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[0] > limit:
        return f"{fmt(a[:limit])} (first {limit} of {a.shape[0]} rows)"
    return fmt(a)


def _e_hints(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> list[str]:
    if not np.all(np.isfinite(got)):
        return ["  NaN or inf never counts as agreement: is there a 0/0 or a log of 0 in the function?"]
    with np.errstate(all="ignore"):
        if np.all(agreement(np.exp(got), want, 1e-6, 1e-9)):
            return ["  these are log responsibilities: return their exponential (np.exp / torch.exp)"]
        sums = got.sum(axis=1, keepdims=True)
        if np.all(got >= 0) and np.all(sums > 0) and np.all(agreement(got / sums, want, 1e-6, 1e-9)):
            return ["  proportional to the responsibilities but rows do not sum to 1: divide each row by its sum "
                    "over the components (the denominator, sum_j pi_j P(x^(i) | p^(j)))"]
    if not np.allclose(got.sum(axis=1), 1.0, atol=1e-6):
        return ["  rows should sum to 1 (a posterior over the components for each image); they sum to "
                f"{fmt(got.sum(axis=1))}"]
    return []


def _underflow_lines(head: str, problem: EMProblem, got: np.ndarray, want: np.ndarray, name: str) -> list[str]:
    bad = int(np.sum(~np.isfinite(got)))
    product = nem.responsibilities_product_form(problem.X, problem.pi, problem.p)
    underflows = bool(np.all(np.isnan(product[~np.isfinite(got)])))
    log_joint = np.log(problem.pi)[None, :] + nem.bernoulli_log_likelihood(problem.X, problem.p)
    typical = float(np.median(log_joint))
    lines = [head,
             f"  {name} returned nan or inf for {bad} of {got.size} responsibilities "
             f"({problem.sizes()}; {problem.label})",
             f"  expected (first image): {fmt(want[0])}",
             f"  got (first image):      {fmt(got[0])}"]
    if underflows:
        lines.append(f"  why: the product pi_k prod_d p_kd^x_d (1 - p_kd)^(1 - x_d) of {problem.D} pixel "
                     f"probabilities is about e^{typical:.0f} here, below the smallest float64 (about 5e-324 = "
                     "e^-744): it underflows to 0 for every component, and the quotient is 0/0 = nan.")
    else:
        lines.append("  the verified log-space responsibilities are finite here: look for a 0/0, an overflow "
                     "or a log of 0 that only large D produces.")
    lines += ["  fix: work in log space (log-sum-exp). log pi_k + sum_d [x_d log p_kd + (1 - x_d) log(1 - p_kd)] "
              f"is about {typical:.0f}, a fine float; subtract its log-sum-exp over k and exponentiate:",
              "      log_joint = np.log(pi) + X @ np.log(p).T + (1 - X) @ np.log1p(-p).T   # (N, K)",
              "      resp = np.exp(log_joint - scipy.special.logsumexp(log_joint, axis=1, keepdims=True))",
              "  (torch: torch.logsumexp / torch.softmax(log_joint, dim=1))"]
    return lines + _footer("em-responsibility", _E_REFERENCE)


# ----------------------------------------------------------------- M-step


def _split_m(out: Any, got_shape_msg: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    """(pi, p) from a pair in either order (told apart by dimension) or a dict."""
    if isinstance(out, dict):
        keys = {str(k).lower(): k for k in out}
        pi_key = next((keys[k] for k in ("pi", "weights", "mixing_weights", "w") if k in keys), None)
        p_key = next((keys[k] for k in ("p", "probs", "means", "mu") if k in keys), None)
        if pi_key is None or p_key is None:
            got_shape_msg(f"a dict with keys {sorted(map(str, out))}; expected keys 'pi' and 'p'")
        return to_numpy(out[pi_key]), to_numpy(out[p_key])
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got_shape_msg(f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
                      + "; expected a pair (pi, p)")
    a, b = to_numpy(out[0]), to_numpy(out[1])
    if a.ndim == 1 and b.ndim == 2:
        return a, b
    if a.ndim == 2 and b.ndim == 1:
        return b, a
    got_shape_msg(f"a pair of arrays of shapes {a.shape} and {b.shape}; expected pi (K,) and p (K, D)")
    raise AssertionError  # unreachable: got_shape_msg raises


def assert_m_step(m_step: Callable, *, names=None, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                  max_examples: int = 100, seed: int | None = None, backend: str = "auto") -> None:
    r"""Assert that ``m_step(X, resp)`` returns the M-step updates (``em-pi-update``, ``em-p-update``, 2c).

    .. math:: \pi_k = \frac{N_k}{N}, \qquad p^{(k)}_d = \frac{\sum_i \eta^{(i)}_k x^{(i)}_d}{N_k},
              \qquad N_k = \sum_i \eta^{(i)}_k

    returned as a pair ``(pi, p)`` in either order (``pi`` is 1-D, ``p`` is
    ``(K, D)``) or a dict with keys ``pi`` and ``p``. Arguments go by name
    (``X``, ``resp``); ``names`` maps yours. Small random problems, then
    one at D = 784. Raises ``AssertionError`` naming the update that is wrong.
    """
    __tracebackhide__ = True
    binding = bind(m_step, M_STEP_SYMBOLS, set(), names, "an M-step")
    caller = Caller(binding, set(), backend)
    name = describe(m_step)
    shown = ("X", "resp")

    def check(problem: EMProblem, origin: str) -> None:
        where = [f"  counterexample ({origin}):", *_show_problem(problem, shown)]
        head = f"em-pi-update / em-p-update (question 2c): {name} does not compute the M-step"
        out = _call(caller, {"X": problem.X, "resp": problem.resp}, problem, head, m_step, shown, origin)

        def bad_shape(what: str) -> None:
            raise _Failure([head, *where, f"  {name} returned {what}"], problem)

        try:
            got_pi, got_p = _split_m(out, bad_shape)
        except NotNumeric as exc:
            bad_shape(f"{exc}, not arrays")
        want_pi, want_p = nem.m_step(problem.X, problem.resp)
        nk = problem.resp.sum(axis=0)
        if got_pi.shape != want_pi.shape or not np.all(agreement(got_pi, want_pi, rtol, atol)):
            result = registry.get("em-pi-update")
            lines = [f"{result.id} (question {result.question}): {name} does not compute the mixing weights "
                     "pi_k = N_k / N", *where]
            if got_pi.shape != want_pi.shape:
                lines.append(f"  pi has shape {got_pi.shape}, expected (K,) = {want_pi.shape}")
            else:
                lines += [f"  expected pi: {fmt(want_pi)}", f"  got pi:      {fmt(got_pi)}"]
                if np.allclose(got_pi, nk):
                    lines.append("  these are N_k = sum_i eta_ik: divide by N (the number of images)")
            raise _Failure(lines + _footer(result.id, "genverify.numerics.m_step"), problem)
        if got_p.shape != want_p.shape or not np.all(agreement(got_p, want_p, rtol, atol)):
            result = registry.get("em-p-update")
            lines = [f"{result.id} (question {result.question}): {name} does not compute the pixel probabilities "
                     "p_d^(k) = sum_i eta_ik x_id / N_k", *where]
            if got_p.shape != want_p.shape:
                lines.append(f"  p has shape {got_p.shape}, expected (K, D) = {want_p.shape}")
                if got_p.shape == want_p.T.shape:
                    lines.append("  the transpose? Return one row per component and one column per pixel.")
            else:
                lines += [f"  expected p: {_rows(want_p)}", f"  got p:      {_rows(got_p)}"]
                sums = problem.resp.T @ problem.X
                if np.allclose(got_p, sums):
                    lines.append("  these are sum_i eta_ik x_id: divide row k by N_k = sum_i eta_ik")
                elif np.allclose(got_p, sums / problem.N):
                    lines.append("  divided by N: divide row k by N_k = sum_i eta_ik instead")
            raise _Failure(lines + _footer(result.id, "genverify.numerics.m_step"), problem)

    rng = np.random.default_rng([default_seed(seed), MNIST_D, 2])
    large = [random_problem(rng, N=50, K=10, D=MNIST_D, label="random responsibilities")]
    _run(check, max_examples, default_seed(seed), large)
