"""The registry of results: the spine of genverify.

A :class:`Result` ties together one mathematical claim of the homework:

* an ``id`` (``"lognormal-pdf"``) that users, the CLI and the report refer to,
* a one-line ``statement`` and the homework ``question`` it answers,
* its free symbols (:class:`Param`) with SymPy assumptions, domains and defaults,
* a SymPy ``derive`` function that *computes* the result from definitions and
  returns a :class:`Derivation` (the result and its steps),
* the float64 NumPy/SciPy ``numeric`` function users import from
  :mod:`genverify.numerics`, and optionally a ``torch`` counterpart,
* the ``checks`` that tie derivation and numerics together.

``genverify list``, ``derive``, ``verify``, ``check``, ``errata`` and ``report``
all walk this registry; adding a result means adding one :func:`register` call in
a module of :mod:`genverify.results`, which is discovered automatically.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import sympy as sp

__all__ = [
    "Param",
    "Step",
    "Derivation",
    "Outcome",
    "Check",
    "Result",
    "register",
    "get",
    "all_results",
    "ids",
    "UnknownResultError",
]


@dataclass(frozen=True)
class Param:
    """A free symbol of a result.

    ``domain`` is a SymPy set (usually an :class:`~sympy.sets.sets.Interval`);
    ``scale="log"`` asks samplers to draw log-uniformly (for scales such as
    sigma, whose interesting values span orders of magnitude). ``default`` is
    substituted when a claim does not mention the symbol (for example the
    Leaky-ReLU slope, fixed to 1/10 in the homework). ``integer`` marks a
    counting symbol.
    """

    name: str
    symbol: sp.Symbol
    domain: sp.Set
    description: str = ""
    default: sp.Expr | None = None
    scale: str = "linear"
    sample_range: tuple[float, float] | None = None

    @property
    def integer(self) -> bool:
        return bool(self.symbol.is_integer)

    def sampling_bounds(self) -> tuple[float, float]:
        """Finite bounds used when drawing random values of this symbol."""
        if self.sample_range is not None:
            return self.sample_range
        dom = self.domain
        lo = float(dom.inf) if dom.inf.is_finite else -10.0
        hi = float(dom.sup) if dom.sup.is_finite else 10.0
        if self.scale == "log":
            lo = max(lo, 1e-2)
            hi = min(hi, 1e2) if np.isfinite(hi) else 1e2
        return lo, hi

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values inside the domain (open at finite ends)."""
        lo, hi = self.sampling_bounds()
        if self.integer:
            return rng.integers(int(np.ceil(lo)), int(np.floor(hi)) + 1, size=size).astype(float)
        if self.scale == "log":
            vals = np.exp(rng.uniform(np.log(lo), np.log(hi), size=size))
        else:
            vals = rng.uniform(lo, hi, size=size)
        # Keep strictly inside open ends.
        return np.clip(vals, np.nextafter(lo, hi), np.nextafter(hi, lo))


@dataclass(frozen=True)
class Step:
    """One step of a derivation: a sentence and the expression it produced."""

    description: str
    expr: Any


@dataclass(frozen=True)
class Derivation:
    """What a ``derive`` function returns: the result and how it was reached."""

    result: sp.Expr
    steps: tuple[Step, ...]

    def latex(self) -> str:
        lines = []
        for step in self.steps:
            lines.append(f"% {step.description}\n{sp.latex(step.expr)}")
        return "\n".join(lines)


@dataclass
class Outcome:
    """The outcome of one check. ``figure`` is the headline number, as text."""

    passed: bool
    figure: str = ""
    detail: str = ""
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """A named check of a result. ``run(result, rng)`` returns an :class:`Outcome`.

    ``kind`` is one of ``symbolic``, ``numeric``, ``monte-carlo``,
    ``cross-library``, ``quadrature``, ``property``.
    """

    name: str
    kind: str
    run: Callable[["Result", np.random.Generator], Outcome]


@dataclass(frozen=True)
class Result:
    """One verified result of the homework (see the module docstring)."""

    id: str
    statement: str
    question: str
    params: tuple[Param, ...]
    derive: Callable[[], Derivation]
    numeric: Callable[..., Any] | None = None
    torch: Callable[..., Any] | None = None
    checks: tuple[Check, ...] = ()
    #: "density" / "cdf" / "pmf" / "value" / "expression": tells ``check``
    #: whether to test that a claimed density integrates to one.
    kind: str = "expression"
    #: The variable of a density or cdf (the others are parameters).
    variable: str | None = None
    #: Joint constraint on the params (e.g. ``a < b``), a SymPy boolean.
    constraint: Any = True
    #: Hand-written, independent form of the result (used by the symbolic check
    #: and by tests; never by the derivation).
    hand: Callable[[], sp.Expr] | None = None
    #: Adapter from a dict of symbol values (NumPy arrays) to the numeric
    #: function's output; default calls ``numeric(**values)``.
    numeric_from_symbols: Callable[[Mapping[str, np.ndarray]], Any] | None = None
    #: Free text shown by ``derive`` and the report.
    notes: str = ""
    references: tuple[str, ...] = ()

    # -- conveniences -----------------------------------------------------
    def symbols(self) -> dict[str, sp.Symbol]:
        return {p.name: p.symbol for p in self.params}

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def derivation(self) -> Derivation:
        """The (cached) derivation."""
        return _cached_derivation(self.id)

    @property
    def expr(self) -> sp.Expr:
        """The derived expression."""
        return self.derivation().result

    def evaluate_numeric(self, values: Mapping[str, np.ndarray]) -> Any:
        if self.numeric_from_symbols is not None:
            return self.numeric_from_symbols(values)
        if self.numeric is None:
            raise ValueError(f"result {self.id!r} has no numeric function")
        return self.numeric(**values)

    def sample_params(self, rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
        """Random symbol values satisfying the domains and the joint constraint."""
        names = [p.name for p in self.params]
        if self.constraint is True:
            return {p.name: p.sample(rng, size) for p in self.params}
        cons = sp.lambdify([p.symbol for p in self.params], self.constraint, "numpy")
        out: dict[str, list[np.ndarray]] = {n: [] for n in names}
        have = 0
        for _ in range(200):
            draw = {p.name: p.sample(rng, 4 * size) for p in self.params}
            ok = np.broadcast_to(np.asarray(cons(*[draw[n] for n in names]), dtype=bool), (4 * size,))
            for n in names:
                out[n].append(draw[n][ok])
            have += int(ok.sum())
            if have >= size:
                break
        if have < size:
            raise RuntimeError(f"could not sample parameters of {self.id!r} satisfying {self.constraint}")
        return {n: np.concatenate(v)[:size] for n, v in out.items()}


class UnknownResultError(KeyError, ValueError):
    """Raised for an id that is not in the registry (a ValueError, for the CLI)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, Result] = {}
_DISCOVERED = False


def register(result: Result) -> Result:
    """Add ``result`` to the registry (ids are unique)."""
    if result.id in _REGISTRY and _REGISTRY[result.id] is not result:
        raise ValueError(f"result id {result.id!r} is registered twice")
    _REGISTRY[result.id] = result
    return result


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    from genverify import results as pkg

    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    _DISCOVERED = True


def all_results() -> list[Result]:
    """Every registered result, in registration order."""
    _discover()
    return list(_REGISTRY.values())


def ids() -> list[str]:
    return [r.id for r in all_results()]


def get(result_id: str) -> Result:
    """The result called ``result_id``; a clear error listing the ids otherwise."""
    _discover()
    try:
        return _REGISTRY[result_id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(result_id, list(_REGISTRY), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownResultError(
            f"unknown result id {result_id!r}.{hint} Run `genverify list` for all ids."
        ) from None


def select(result_ids: Iterable[str] | None) -> list[Result]:
    if not result_ids:
        return all_results()
    return [get(i) for i in result_ids]


@functools.lru_cache(maxsize=None)
def _cached_derivation(result_id: str) -> Derivation:
    return get(result_id).derive()


def sequence(x: Sequence[Any] | Any) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)
