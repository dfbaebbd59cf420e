r"""Does a user's function implement a verified result? :func:`assert_implements`, and Hypothesis strategies.

:func:`assert_implements` draws points from the result's symbols, the way the
registry's own checks do (each :class:`~genverify.core.Param`'s sampling
bounds and scale, integer symbols as integers, the joint constraint), and the
edges of those bounds, calls the user's function there, and compares
with the verified float64 function (:meth:`~genverify.core.Result.evaluate_numeric`).
On a mismatch, Hypothesis shrinks the point to the simplest it can find, and
the ``AssertionError`` names the result, that point, the expected and the
returned values and the verified formula.

>>> import numpy as np
>>> def lognormal(z, mu, sigma):
...     return np.exp(-(np.log(z) - mu) ** 2 / (2 * sigma**2)) / (z * sigma * np.sqrt(2 * np.pi))
>>> assert_implements("lognormal-pdf", lognormal, max_examples=20)

:func:`strategies` and :func:`points` give the same draws to users' own
Hypothesis properties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from genverify import numerics, registry
from genverify.core import Param, ParameterError, Result
from genverify.testing._calls import (
    Caller,
    NotNumeric,
    agreement,
    bind,
    default_seed,
    describe,
    fmt,
    fmt_point,
    to_numpy,
)

__all__ = ["DEFAULT_ATOL", "DEFAULT_RTOL", "assert_implements", "edge_points", "points", "strategies"]

#: Default tolerances: float64 implementations of the same formula agree to ~1e-13;
#: 1e-7 admits a different but exact formula (scipy's, a log-space one) with a wide margin.
DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-12
#: Points of the vectorised call (drawn by the registry's sampler) after the Hypothesis phase.
BATCH_POINTS = 500
#: A verified formula longer than this is cut in messages.
FORMULA_CHARS = 600


# ----------------------------------------------------------------- strategies


def _pointwise(result: Result) -> None:
    """Refuse indexed results (sums over images and components): their checks are the EM helpers."""
    if any(isinstance(p.symbol, sp.IndexedBase) for p in result.params):
        raise ParameterError(
            "result_id",
            f"{{param}} {result.id!r} is an indexed formula (sums and products over images, components and "
            "pixels), not a function of scalars: check an E-step with genverify.testing.assert_e_step and an "
            "M-step with genverify.testing.assert_m_step (results em-responsibility, em-p-update, em-pi-update)")


def _inside(domain: sp.Set, value: float) -> bool:
    try:
        return bool(domain.contains(sp.Float(value)) == sp.true)
    except (TypeError, ValueError):  # pragma: no cover - a domain SymPy cannot decide
        return True


def _float_bounds(p: Param) -> tuple[float, float]:
    """The sampling bounds, moved one ulp inside where the domain is open there."""
    lo, hi = (float(v) for v in p.sampling_bounds())
    if not _inside(p.domain, lo):
        lo = float(np.nextafter(lo, hi))
    if not _inside(p.domain, hi):
        hi = float(np.nextafter(hi, lo))
    return lo, hi


def _finite_values(p: Param) -> list | None:
    if isinstance(p.domain, sp.FiniteSet):
        return [int(v) if p.integer else float(v) for v in sorted(p.domain, key=float)]
    return None


def param_strategy(p: Param) -> st.SearchStrategy:
    """Values of ``p`` as the registry's sampler draws them (:meth:`~genverify.core.Param.sample`)."""
    values = _finite_values(p)
    if values is not None:
        return st.sampled_from(values)
    if p.integer:
        lo, hi = p.sampling_bounds()
        return st.integers(math.ceil(lo), math.floor(hi))
    lo, hi = _float_bounds(p)
    if p.scale == "log" and lo > 0:
        # Uniform in log: shrinks towards e^0 = 1 when 1 is inside.
        return st.floats(math.log(lo), math.log(hi)).map(lambda u: min(max(math.exp(u), lo), hi))
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _center(p: Param) -> Any:
    values = _finite_values(p)
    if values is not None:
        return values[0]
    lo, hi = p.sampling_bounds()
    if p.integer:
        return int((math.ceil(lo) + math.floor(hi)) // 2)
    lo, hi = _float_bounds(p)
    if p.scale == "log" and lo > 0:
        return 1.0 if lo <= 1.0 <= hi else math.sqrt(lo * hi)
    return 0.0 if lo <= 0.0 <= hi else (lo + hi) / 2


def _edges(p: Param) -> list:
    values = _finite_values(p)
    if values is not None:
        return values
    if p.integer:
        lo, hi = p.sampling_bounds()
        return [math.ceil(lo), math.floor(hi)]
    return list(_float_bounds(p))


def _constraint(result: Result) -> Callable[[Mapping[str, Any]], bool] | None:
    if result.constraint is True or result.constraint == sp.true:
        return None
    names = [p.name for p in result.params]
    f = sp.lambdify([p.symbol for p in result.params], result.constraint, "numpy")
    return lambda point: bool(np.all(f(*[point[n] for n in names])))


def strategies(result_id: str) -> dict[str, st.SearchStrategy]:
    """Hypothesis strategies for each symbol of ``result_id``, drawn as the registry's checks draw them.

    Independent strategies ignore the result's joint constraint (``a < b`` for
    ``kl-uniform``); :func:`points` respects it.

    >>> from hypothesis import given
    >>> s = strategies("lognormal-pdf")
    >>> sorted(s)
    ['mu', 'sigma', 'z']
    """
    result = registry.get(result_id)
    return {p.name: param_strategy(p) for p in result.params}


def points(result_id: str, fixed: Mapping[str, Any] | None = None) -> st.SearchStrategy:
    """Hypothesis strategy of points ``{symbol: value}`` of ``result_id`` that satisfy its joint constraint.

    ``fixed`` holds symbols at given values (``{"alpha": 0.1}``).
    """
    result = registry.get(result_id)
    return _points(result, dict(fixed or {}))


def _points(result: Result, fixed: Mapping[str, Any]) -> st.SearchStrategy:
    unknown = [k for k in fixed if k not in {p.name for p in result.params}]
    if unknown:
        raise ParameterError("fixed", f"{{param}} names {', '.join(unknown)}, not a symbol of {result.id}")
    strategy = st.fixed_dictionaries({p.name: st.just(fixed[p.name]) if p.name in fixed else param_strategy(p)
                                      for p in result.params})
    allowed = _constraint(result)
    return strategy if allowed is None else strategy.filter(allowed)


def edge_points(result: Result, fixed: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Points at the edges of the sampling bounds: every symbol low, every symbol high, and each
    symbol alone at either edge with the others at a central value; only those satisfying the constraint."""
    fixed = dict(fixed or {})
    params = [p for p in result.params if p.name not in fixed]
    center = {p.name: _center(p) for p in params}
    out: list[dict[str, Any]] = []
    if params:
        edges = {p.name: _edges(p) for p in params}
        out.append({n: e[0] for n, e in edges.items()})
        out.append({n: e[-1] for n, e in edges.items()})
        for p in params:
            for value in edges[p.name]:
                out.append({**center, p.name: value})
    allowed = _constraint(result)
    unique: list[dict[str, Any]] = []
    for point in out:
        point = {p.name: fixed.get(p.name, point.get(p.name)) for p in result.params}
        if point not in unique and (allowed is None or allowed(point)):
            unique.append(point)
    return unique


# ----------------------------------------------------------------- the comparison


@dataclass(eq=False)  # an exception: compared and hashed by identity
class _Mismatch(Exception):
    """One point where the user's function disagrees with the result (raised inside Hypothesis's test)."""

    point: dict[str, Any]
    kind: str  # "value", "shape", "raised", "not-numeric"
    got: Any = None
    want: Any = None
    error: BaseException | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:  # shown only if it ever escapes
        return f"{self.kind} at {self.point}"


def _reference(result: Result, values: Mapping[str, Any]) -> np.ndarray:
    """The verified numeric function at one point (or a batch: arrays of one shape)."""
    batch = any(np.ndim(v) for v in values.values())
    arrays = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in values.items()}
    with np.errstate(all="ignore"):
        out = np.asarray(result.evaluate_numeric(arrays), dtype=float)
    if not batch and out.ndim >= 1 and out.shape[0] == 1:
        out = out[0]
    return out


class _Comparison:
    """Calls the user's function at a point and compares with the verified result."""

    def __init__(self, result: Result, caller: Caller, fixed: Mapping[str, Any], rtol: float, atol: float):
        self.result, self.caller, self.fixed = result, caller, dict(fixed)
        self.rtol, self.atol = rtol, atol

    def check(self, point: Mapping[str, Any], in_hypothesis: bool = False) -> None:
        values = {**point, **self.fixed}
        try:
            out = self.caller(values)
        except Exception as exc:  # noqa: BLE001 - the user's bug, reported with its point
            raise _Mismatch(dict(point), "raised", error=exc) from None
        try:
            got = to_numpy(out)
        except NotNumeric as exc:
            raise _Mismatch(dict(point), "not-numeric", note=str(exc)) from None
        want = _reference(self.result, values)
        if want.size and np.all(np.isnan(want)):
            if in_hypothesis:
                reject()  # not a point of the result
            return
        if got.shape != want.shape:
            if got.size != want.size:
                raise _Mismatch(dict(point), "shape", got, want)
            got = got.reshape(want.shape)
        if not np.all(agreement(got, want, self.rtol, self.atol)):
            raise _Mismatch(dict(point), "value", got, want)


def _check_settings(rtol: float, atol: float, max_examples: int) -> None:
    for name, value in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ParameterError(name, f"{{param}} must be a finite number >= 0, got {value!r}")
    if not (isinstance(max_examples, int) and max_examples >= 1):
        raise ParameterError("max_examples", f"{{param}} must be an integer >= 1, got {max_examples!r}")


def hypothesis_settings(max_examples: int) -> settings:
    """Quiet, no example database, no deadline: the user's test, not a Hypothesis test of ours."""
    return settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
                    verbosity=Verbosity.quiet, print_blob=False, report_multiple_bugs=False)


def assert_implements(result_id: str, fn: Callable, *, names=None, rtol: float = DEFAULT_RTOL,
                      atol: float = DEFAULT_ATOL, max_examples: int = 200, seed: int | None = None,
                      vectorized: bool | None = None, backend: str = "auto") -> None:
    r"""Assert that ``fn`` computes the verified result ``result_id``; an ``AssertionError`` with a counterexample if not.

    * ``fn`` takes the result's symbols as arguments, by name (``genverify list``
      shows them: ``lognormal-pdf`` has ``z, mu, sigma``). ``names`` maps other
      names to symbols, ``{"s": "sigma"}`` (your name -> symbol), or lists the
      symbols in the order ``fn`` takes them positionally. A symbol with a
      default (the Leaky ReLU's ``alpha = 1/10``) may be left out: it stays at
      its default.
    * ``fn`` may be scalar or vectorised, NumPy or torch: it is called with
      float64 scalars (0-d float64 tensors when it needs torch; ``backend``
      fixes the choice) and may return a number, an array or a tensor.
    * Agreement: ``|got - expected| <= atol + rtol * |expected|`` everywhere;
      NaN and infinities never agree, except an infinity the reference has too.
    * Points: ``max_examples`` drawn by Hypothesis (seeded by ``seed``: default
      the pytest plugin's ``--genverify-seed``, ``$GENVERIFY_SEED`` or 0), then
      the edges of each symbol's sampling bounds, then,
      unless ``vectorized=False``, one vectorised call at 500 points drawn as
      the registry's checks draw them (``vectorized=True``: ``fn`` must accept
      arrays; ``None``: a function that does not is only called with scalars).

    Raises ``AssertionError`` (a failure of the user's test) when ``fn``
    disagrees, returns something that is not a number, or raises (the point is
    named); :class:`~genverify.core.UnknownResultError` for an unknown id (with
    the closest ids) and :class:`~genverify.core.ParameterError` when ``fn``'s
    parameters cannot be matched to the symbols (the missing ones are named).
    """
    __tracebackhide__ = True  # pytest shows the user's line, not ours
    result = registry.get(result_id)
    _pointwise(result)
    _check_settings(rtol, atol, max_examples)
    if result.numeric is None and result.numeric_from_symbols is None:
        raise ParameterError("result_id", f"{{param}} {result.id!r} has no numeric function to compare with")
    symbols = [p.name for p in result.params]
    optional = {p.name for p in result.params if p.default is not None}
    binding = bind(fn, symbols, optional, names, result.id)
    fixed = {s: float(result.param(s).default) for s in binding.unused}
    caller = Caller(binding, {p.name for p in result.params if p.integer}, backend)
    comparison = _Comparison(result, caller, fixed, rtol, atol)
    seed = default_seed(seed)
    edges = edge_points(result, fixed)
    try:
        if not symbols:
            comparison.check({})
        else:
            # Hypothesis first (its counterexamples shrink to simple values), then the edges as they are.
            _hypothesis_phase(comparison, _points(result, fixed), max_examples, seed)
            for point in edges:
                comparison.check(point)
            if vectorized is not False:
                _batch_phase(comparison, seed, vectorized)
    except _Mismatch as mismatch:
        if not symbols:
            origin = "the result has no symbols: its one value"
        elif mismatch.point in edges:
            origin = "an edge of the sampled domain"
        else:
            origin = mismatch.extra.get("origin", "the simplest Hypothesis found")
        raise AssertionError(_message(result, fn, comparison, mismatch, origin)) from mismatch.error


def _hypothesis_phase(comparison: _Comparison, strategy, max_examples: int, seed: int) -> None:
    def test(point):
        comparison.check(point, in_hypothesis=True)

    run = hypothesis_seed(seed)(hypothesis_settings(max_examples)(given(point=strategy)(test)))
    try:
        run()
    except Flaky as exc:
        raise _Mismatch({}, "flaky", note=str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _batch_phase(comparison: _Comparison, seed: int, vectorized: bool | None) -> None:
    result = comparison.result
    rng = np.random.default_rng(seed)
    values = result.sample_params(rng, BATCH_POINTS)
    for name, value in comparison.fixed.items():
        values[name] = np.full(BATCH_POINTS, value)
    for p in result.params:
        if p.integer:
            values[p.name] = np.rint(values[p.name]).astype(np.int64)
    point_at = lambda i: {p.name: (int if p.integer else float)(values[p.name][i])
                          for p in result.params if p.name not in comparison.fixed}
    try:
        got = to_numpy(comparison.caller(values))
    except Exception as exc:  # noqa: BLE001 - a scalar-only function; or, when required, the user's bug
        if vectorized:
            raise _Mismatch(point_at(0), "raised", error=exc,
                            extra={"origin": f"a vectorised call at {BATCH_POINTS} points, the first shown"}) from None
        return
    want = _reference(result, values)
    if got.shape != want.shape:
        if vectorized:
            raise _Mismatch(point_at(0), "shape", got, want,
                            extra={"origin": f"a vectorised call at {BATCH_POINTS} points"})
        return
    ok = agreement(got, want, comparison.rtol, comparison.atol)
    ok = ok.reshape(ok.shape[0], -1).all(axis=1) if ok.ndim > 1 else ok
    if ok.all():
        return
    bad = np.flatnonzero(~ok)
    i = int(bad[0])
    point = point_at(i)
    origin = f"point {i} of a vectorised call at {BATCH_POINTS} points drawn by the registry's sampler " \
             f"({bad.size} disagree)"
    try:
        comparison.check(point)
    except _Mismatch as mismatch:
        mismatch.extra["origin"] = origin
        raise
    raise _Mismatch(point, "value", got[i], want[i], note="a scalar call at this point agrees: the function is "
                    "wrong only when given arrays (broadcasting, in-place updates, an `if` on an array?)",
                    extra={"origin": origin})


# ----------------------------------------------------------------- the message


def _reference_name(result: Result) -> str:
    fn = result.numeric
    if result.numeric_from_symbols is not None or fn is None:
        return f"the verified numeric function of {result.id}"
    name = getattr(fn, "__name__", "")
    if name and getattr(numerics, name, None) is fn:
        return f"genverify.numerics.{name}"
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', name)}"


def formula(result: Result) -> str:
    """The verified expression, as SymPy prints it (the statement when it cannot be derived)."""
    try:
        text = str(result.expr)
    except Exception:  # noqa: BLE001 - a message must not fail; the statement says it too
        return result.statement
    return text if len(text) <= FORMULA_CHARS else text[:FORMULA_CHARS] + " ..."


def _value_lines(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> list[str]:
    lines = [f"  expected: {fmt(want)}", f"  got:      {fmt(got)}"]
    bad = ~agreement(got, want, rtol, atol)
    g, w = np.asarray(got)[bad], np.asarray(want)[bad]
    if np.any(np.isnan(g)):
        lines.append("  NaN never counts as agreement: is there a 0/0, inf - inf, 0 * inf or a log of a negative "
                     "number in the function?")
    elif np.any(np.isinf(g) & ~np.isinf(w)):
        lines.append("  an infinity where the verified value is finite: an overflow or a division by zero?")
    elif np.any(np.isinf(w)):
        lines.append("  the verified value is infinite here; only the same infinity agrees")
    else:
        with np.errstate(all="ignore"):
            abs_err = np.abs(g - w)
            i = int(np.argmax(abs_err - (atol + rtol * np.abs(w))))
            rel = abs_err[i] / abs(w[i]) if w[i] != 0 else np.inf
        lines.append(f"  |got - expected| = {abs_err[i]:.3g} (relative {rel:.3g}) > atol + rtol*|expected| = "
                     f"{atol + rtol * abs(w[i]):.3g} (rtol = {rtol:g}, atol = {atol:g})")
    return lines


def _message(result: Result, fn: Callable, comparison: _Comparison, m: _Mismatch, origin: str) -> str:
    name = describe(fn)
    head = f"{result.id} (question {result.question}): {name} does not implement the verified result"
    fixed = comparison.fixed
    lines = [head, f"  counterexample ({origin}): {fmt_point(m.point, fixed) or '(no symbols)'}"]
    want = None
    if m.kind != "flaky" and m.point is not None:
        try:
            want = _reference(result, {**m.point, **fixed})
        except Exception:  # noqa: BLE001 - the message must not fail
            want = m.want
    if m.kind == "raised":
        lines.append(f"  {name} raised {type(m.error).__name__}: {m.error}")
        if want is not None:
            lines.append(f"  expected: {fmt(want)}")
    elif m.kind == "not-numeric":
        lines.append(f"  {name} returned {m.note}, not a number or an array of numbers")
        if want is not None:
            lines.append(f"  expected: {fmt(want)}")
    elif m.kind == "shape":
        lines.append(f"  {name} returned shape {tuple(np.shape(m.got))}, expected shape {tuple(np.shape(m.want))}")
        lines += [f"  expected: {fmt(m.want)}", f"  got:      {fmt(m.got)}"]
    elif m.kind == "flaky":
        lines = [head, f"  {name} gave different answers at the same point (is it random, or does it keep state?): "
                       f"{m.note}"]
    else:
        lines += _value_lines(np.asarray(m.got, dtype=float), np.asarray(m.want, dtype=float),
                              comparison.rtol, comparison.atol)
    if m.note and m.kind != "flaky" and m.kind != "not-numeric":
        lines.append(f"  {m.note}")
    lines.append(f"  verified formula: {formula(result)}")
    lines.append(f"  (statement: {result.statement})")
    lines.append(f"  reference: {_reference_name(result)}; the derivation: `genverify derive {result.id}`")
    return "\n".join(lines)
