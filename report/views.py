"""The report as plain data, grouped by homework question: what every output format lays out.

:func:`assemble` turns the parts of a build (each result's derivation and check
records, the experiments' outputs, the errata :class:`~genverify.claims.verdict.Audit`)
into a :class:`ReportView`: one :class:`SectionView` per question of
:mod:`genverify.report.questions` (and one for any other question something is
registered for), each holding its results, experiments and the write-up's answers.

The view is the same for every renderer, so nothing in it is escaped for a format:

* text is plain text (a statement, a caption, a traceback);
* mathematics is LaTeX notation, what :func:`sympy.latex` prints (:class:`Math`: one line,
  and broken after whole terms for a page); the PDF typesets it, a browser renderer
  converts it (to MathML);
* verdicts are :class:`~genverify.claims.verdict.Verdict` values, numbers stay numbers,
  figures list every file format the experiment wrote (:class:`FigureView`).

Escaping, layout and the choice of figure format happen at the edge, in each renderer
(:mod:`genverify.report.render_latex`, :mod:`genverify.report.render_html`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genverify.claims.verdict import Audit, ErrataRow, Verdict
from genverify.report import latex as tex
from genverify.report.cache import Part, safe_name
from genverify.report.errata_part import ErrataRun
from genverify.report.experiment_part import ExpRun
from genverify.report.questions import ERRATA, QUESTIONS, Question, section_key

__all__ = ["Math", "Step", "ParamView", "CheckView", "ResultView", "FigureView", "TableView", "ExperimentView",
           "ErrataView", "SectionView", "ReportView", "assemble", "counts_phrase", "plain_value", "FIGURE_FORMATS"]

#: The figure files an experiment may write for a stem, in the order they are looked for.
FIGURE_FORMATS = (".pdf", ".png", ".jpg", ".svg")


@dataclass
class Math:
    """A formula in LaTeX notation: ``latex`` on one line, ``display`` broken into aligned lines to fit a page."""

    latex: str
    display: str


@dataclass
class Step:
    description: str
    math: Math


@dataclass
class ParamView:
    symbol: str  # LaTeX notation
    domain: str  # LaTeX notation
    description: str


@dataclass
class CheckView:
    name: str
    kind: str
    figure: str  # the evidence in one line ("max rel err 1e-15 (2000 pts)")
    passed: bool
    detail: str = ""  # the end of the error, for a failed check


@dataclass
class ResultView:
    id: str
    statement: str
    notes: str
    params: list[ParamView]
    steps: list[Step]
    boxed: Math | None  # the verified result
    derive_error: str  # a traceback when the derivation raised
    checks: list[CheckView]
    errata: list[ErrataRow] = field(default_factory=list)  # the write-up's answers about this result

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.checks)


@dataclass
class FigureView:
    stem: str
    caption: str
    name: str  # where the figure goes in the built report, without its suffix ("figures/em-00-means")
    sources: dict[str, Path]  # suffix -> the file the experiment wrote (none: the figure is missing)

    def source(self, suffixes: tuple[str, ...]) -> Path | None:
        """The first of ``suffixes`` the experiment wrote."""
        return next((self.sources[s] for s in suffixes if s in self.sources), None)


@dataclass
class TableView:
    name: str
    caption: str
    columns: list[str]
    rows: list[list[Any]]  # plain values, each row as long as ``columns``


@dataclass
class ExperimentView:
    id: str
    title: str
    question: str
    preset: str
    cached: bool
    seconds: float  # what running it took
    error: str  # the traceback's end, when it failed
    summary: str
    figures: list[FigureView]
    tables: list[TableView]
    numbers: list[tuple[str, Any]]


@dataclass
class ErrataView:
    """The audit of the write-up: every row, in the write-up's order."""

    title: str
    source: str
    rows: list[ErrataRow]
    counts: dict[Verdict, int]
    summary: str
    cached: bool
    seconds: float
    error: str = ""


@dataclass
class SectionView:
    question: Question
    results: list[ResultView] = field(default_factory=list)
    experiments: list[ExperimentView] = field(default_factory=list)
    errata: list[ErrataRow] = field(default_factory=list)  # answers to this question naming no registered result

    @property
    def is_errata(self) -> bool:
        return self.question.key == ERRATA

    @property
    def empty(self) -> bool:
        """Nothing is registered for the question yet."""
        return not (self.results or self.experiments)

    @property
    def checks(self) -> tuple[int, int]:
        """(passed, total) over the section's results."""
        return sum(r.passed for r in self.results), sum(len(r.checks) for r in self.results)

    def verdict_counts(self) -> dict[Verdict, int]:
        """The verdicts on the write-up's answers to this question (beside its results, or on their own)."""
        rows = [e for r in self.results for e in r.errata] + self.errata
        return {v: sum(e.verdict == v for e in rows) for v in Verdict}


@dataclass
class ReportView:
    preset: str
    sections: list[SectionView]  # in the order of the document; the errata section among them
    results: list[ResultView]
    experiments: list[ExperimentView]
    errata: ErrataView | None
    environment: list[tuple[str, str]]
    parts: list[Part]
    reproduce: list[str]  # shell lines

    @property
    def checks_total(self) -> int:
        return sum(len(r.checks) for r in self.results)

    @property
    def checks_passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed_experiments(self) -> list[str]:
        return [x.id for x in self.experiments if x.error]

    @property
    def errata_counts(self) -> dict[Verdict, int]:
        return dict(self.errata.counts) if self.errata else {v: 0 for v in Verdict}


# ---------------------------------------------------------------- from the parts


def _result_view(result, data: dict) -> ResultView:
    checks = []
    for r in data["records"]:
        detail = r.get("detail") or ""
        checks.append(CheckView(r["check"], r["kind"], r["figure"] or "-", bool(r["passed"]),
                                detail[-600:] if not r["passed"] else ""))
    boxed = data.get("boxed")
    return ResultView(
        id=result.id, statement=result.statement, notes=result.notes,
        params=[ParamView(tex.math(p.symbol), tex.math(p.domain), p.description) for p in result.params],
        steps=[Step(s["description"], Math(s["latex"], s["display"])) for s in data["steps"]],
        boxed=Math(boxed["latex"], boxed["display"]) if boxed else None,
        derive_error=data.get("derive_error", ""), checks=checks)


def _experiment_view(run: ExpRun, preset: str) -> ExperimentView:
    exp, out = run.exp, run.output
    view = ExperimentView(id=exp.id, title=exp.title, question=exp.question, preset=preset, cached=run.cached,
                          seconds=run.computed_seconds, error=run.error[-1500:] if run.error else "",
                          summary="", figures=[], tables=[], numbers=[])
    if out is None:
        return view
    view.summary = out.summary
    for i, (stem, caption) in enumerate(out.figures.items()):
        sources = {s: run.dir / f"{stem}{s}" for s in FIGURE_FORMATS if (run.dir / f"{stem}{s}").is_file()}
        name = f"figures/{safe_name(exp.id)}-{i:02d}-{safe_name(Path(stem).name)}"
        view.figures.append(FigureView(stem, caption, name, sources))
    for name, table in out.tables.items():
        n = len(table.columns)
        rows = [(list(r) + [""] * n)[:n] for r in table.rows]
        view.tables.append(TableView(name, table.caption or name, list(table.columns), rows))
    view.numbers = list(out.numbers.items())
    return view


def plain_value(v: Any) -> str:
    """A number or small structure as short plain text, as the PDF prints it (6 significant digits)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "∞" if v > 0 else "−∞"
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        if len(v) <= 8 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return "(" + ", ".join(plain_value(x) for x in v) + ")"
        return f"[{len(v)} values]"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {plain_value(x)}" for k, x in list(v.items())[:8])
    return "" if v is None else str(v)


def counts_phrase(counts: dict[Verdict, int], wrong: str = "") -> str:
    """ "13 are correct, 4 incorrect (``wrong``) and 2 not checkable" (every verdict, in Verdict's order)."""
    said = [f"{counts.get(v, 0)} {'are ' if i == 0 else ''}{v.value}"
            + (f" ({wrong})" if wrong and v == Verdict.INCORRECT else "") for i, v in enumerate(Verdict)]
    return ", ".join(said[:-1]) + " and " + said[-1]


def _errata_summary(audit: Audit) -> str:
    wrong = ", ".join(f"{r.question}{' (' + r.part + ')' if r.part else ''}"
                      for r in audit.rows if r.verdict == Verdict.INCORRECT)
    return f"Of {len(audit.rows)} transcribed formulas, {counts_phrase(audit.counts(), wrong)}."


def _errata_view(run: ErrataRun) -> ErrataView:
    if run.audit is None:
        return ErrataView(title="", source="", rows=[], counts={v: 0 for v in Verdict}, summary="",
                          cached=False, seconds=run.part.computed_seconds, error=run.error[-1500:])
    audit = run.audit
    return ErrataView(title=audit.title, source=audit.source, rows=list(audit.rows), counts=audit.counts(),
                      summary=_errata_summary(audit), cached=run.part.cached, seconds=run.part.computed_seconds)


def reproduce_commands(preset: str, data_dir: Any, seed: int) -> list[str]:
    cmd = f"genverify report --preset {preset} --fresh"
    if data_dir:
        cmd += f" --data-dir {data_dir}"
    if seed:
        cmd += f"  # seed {seed}"
    return ["# in a checkout of genverify:",
            "make report     # creates .venv, then builds report/build/report.pdf",
            f".venv/bin/{cmd}",
            ".venv/bin/genverify verify   # the checks, as a table",
            ".venv/bin/genverify errata   # the write-up audit, as a table"]


def assemble(results, result_data: dict[str, dict], runs: list[ExpRun], errata: ErrataRun | None, *,
             preset: str, data_dir: Any, seed: int, parts: list[Part],
             environment: list[tuple[str, str]]) -> ReportView:
    """The report's view: every result, experiment and errata row in the section of its question.

    An errata row sits beside the result it names (its ``id``); a row naming no result of the
    build goes to its question's section. The errata section holds the whole audit.
    """
    sections: dict[str, SectionView] = {}  # in the order of the document

    def section(key: str | None, label: str) -> SectionView:
        k = key or f"other:{label}"
        if k not in sections:
            q = next((q for q in QUESTIONS if q.key == key), None) or Question(
                label, f"Question {label}",
                "(not one of the homework's questions listed in genverify.report.questions)")
            sections[k] = SectionView(q)
        return sections[k]

    for q in QUESTIONS:
        section(q.key, q.key)
    result_views: dict[str, ResultView] = {}
    for r in results:
        view = _result_view(r, result_data[r.id])
        result_views[r.id] = view
        section(section_key(r.question), r.question).results.append(view)
    exp_views = []
    for run in runs:
        view = _experiment_view(run, preset)
        exp_views.append(view)
        section(section_key(view.question), view.question).experiments.append(view)
    errata_view = _errata_view(errata) if errata is not None else None
    for row in errata_view.rows if errata_view else ():
        if row.id in result_views:
            result_views[row.id].errata.append(row)
        else:
            key = section_key(row.question)
            if key is not None and key != ERRATA:
                section(key, row.question).errata.append(row)
    return ReportView(preset=preset, sections=list(sections.values()), results=list(result_views.values()),
                      experiments=exp_views, errata=errata_view, environment=environment, parts=list(parts),
                      reproduce=reproduce_commands(preset, data_dir, seed))
