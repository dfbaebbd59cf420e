"""The report's view (:mod:`genverify.report.views`) as LaTeX: escaped here, laid out by the template.

:func:`render` turns a :class:`~genverify.report.views.ReportView` into the text of
``report.tex`` and the figure files it includes. Every plain text of the view goes
through :func:`genverify.report.latex.escape` (or :func:`~genverify.report.latex.lines`
for tracebacks) on its way into the template context; the view's mathematics is LaTeX
notation already and goes in as it is; the write-up's own formulas are typeset only when
:func:`~genverify.report.latex.claim_math` finds them safe. ``templates/report.tex.j2``
only lays the document out: it receives nothing unescaped.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2

from genverify.claims.verdict import ErrataRow, Verdict
from genverify.report import ReportError
from genverify.report import latex as tex
from genverify.report.views import (
    CheckView,
    ErrataView,
    ExperimentView,
    ReportView,
    ResultView,
    SectionView,
    TableView,
    counts_phrase,
)

__all__ = ["render", "context", "TEMPLATE_DIR", "TEMPLATE_NAME", "FIGURE_SUFFIXES"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.tex.j2"
#: The figure formats pdflatex includes, the one it takes first first.
FIGURE_SUFFIXES = (".pdf", ".png", ".jpg")
#: How each verdict looks: the macro the template defines for it, and its colour.
VERDICT_STYLE = {Verdict.CORRECT: (r"\vcorrect", "okgreen"), Verdict.INCORRECT: (r"\vincorrect", "badred"),
                 Verdict.NOT_CHECKABLE: (r"\vunchecked", "amber")}
# A verdict added later (undecided: the check ran out of time) gets a macro of its own, in amber.
VERDICT_STYLE.update({v: (r"\v" + re.sub(r"[^a-z]", "", v.name.lower()), "amber") for v in Verdict
                      if v not in VERDICT_STYLE})
#: The colour of a line of a step-by-step audit, by its status (others: amber).
_STEP_COLOR = {"fails": "badred", "follows": "okgreen", "start": "okgreen", "follows corrected": "okgreen"}
#: A list of numbers longer than this is set in two halves side by side.
_NUMBERS_PER_COLUMN = 12


def _step(step, first_error: int) -> dict:
    status = str(getattr(step.status, "value", step.status))
    claim = str(step.claim)
    more = [tex.breakable(tex.escape(step.evidence))] if step.evidence else []
    if step.diagnosis:
        more.append(r"\emph{Diagnosis:} " + tex.breakable(tex.escape(step.diagnosis)))
    if step.corrected:
        more.append(r"As it should be: \texttt{" + tex.breakable(tex.escape(step.corrected)) + "}")
    if step.versus_result:
        more.append(r"\textcolor{muted}{" + tex.breakable(tex.escape(step.versus_result)) + "}")
    return {"n": step.n, "first": step.n == first_error, "label": tex.escape(step.label),
            "claim_math": tex.claim_math(claim) if claim else None, "claim_text": tex.breakable(tex.escape(claim)),
            "where_math": None, "where_text": "", "relation": tex.breakable(tex.escape(step.relation)),
            "status": tex.escape(status), "color": _STEP_COLOR.get(status, "amber"),
            "evidence": r" \newline ".join(more)}


def _errata_row(row: ErrataRow) -> dict:
    claim, where = str(row.claim), str(row.where or "")
    macro, color = VERDICT_STYLE[row.verdict]
    # diagnosis, steps and first_error: what the claims package says beyond the verdict (absent in older audits)
    first_error = int(getattr(row, "first_error", 0) or 0)
    return {"question_tex": tex.escape(row.question), "part": tex.escape(row.part or ""),
            # The write-up's LaTeX is typeset when it uses only known-safe commands (tex.claim_math).
            "claim_math": tex.claim_math(claim) if claim not in ("", "(none)") else None,
            "claim_text": tex.breakable(tex.escape(claim)),
            "where_math": tex.claim_math(where) if where else None, "where_text": tex.escape(where),
            "verdict": macro, "color": color, "evidence": tex.breakable(tex.escape(row.evidence)),
            "diagnosis": tex.breakable(tex.escape(getattr(row, "diagnosis", "") or "")),
            "steps": [_step(st, first_error) for st in getattr(row, "steps", None) or []],
            "first_error": first_error}


def _check(c: CheckView) -> dict:
    return {"check": tex.escape(c.name), "kind": tex.escape(c.kind), "figure": tex.breakable(tex.escape(c.figure)),
            "passed": c.passed, "detail": tex.lines(c.detail) if not c.passed and c.detail else ""}


def _result(r: ResultView) -> dict:
    return {"id": tex.escape(r.id), "statement": tex.escape(r.statement), "notes": tex.escape(r.notes),
            "steps": [{"description": tex.escape(s.description), "math": s.math.display} for s in r.steps],
            "boxed": r"\boxed{" + r.boxed.display + "}" if r.boxed else "",
            "derive_error": tex.lines(r.derive_error), "checks": [_check(c) for c in r.checks],
            "passed": r.passed, "errata": [_errata_row(e) for e in r.errata],
            "params": [{"name": p.symbol, "text": tex.escape(p.description), "domain": p.domain} for p in r.params]}


def _table(t: TableView) -> dict:
    spec, size = tex.column_spec(t.columns, t.rows)
    return {"name": tex.escape(t.name), "caption": tex.escape(t.caption), "spec": spec, "size": size,
            "header": [tex.escape(c) for c in t.columns], "rows": [[tex.cell(v) for v in r] for r in t.rows]}


def _numbers(numbers: list[tuple[str, Any]]) -> list[list[str]]:
    rows = [[tex.escape(k), tex.fmt_value(v)] for k, v in numbers]
    if len(rows) <= _NUMBERS_PER_COLUMN:
        return rows
    half = (len(rows) + 1) // 2  # a long list reads better in two halves side by side
    left, right = rows[:half], rows[half:] + [["", ""]] * (2 * half - len(rows))
    return [a + b for a, b in zip(left, right)]


def _experiment(x: ExperimentView, assets: dict[str, Path]) -> dict:
    figures = []
    for f in x.figures:
        src = f.source(FIGURE_SUFFIXES)
        path = None
        if src is not None:
            path = f"{f.name}{src.suffix}"
            assets[path] = src
        figures.append({"caption": tex.escape(f.caption), "path": path, "stem": tex.escape(f.stem)})
    return {"id": tex.escape(x.id), "title": tex.escape(x.title), "error": tex.lines(x.error),
            "cached": x.cached, "seconds": x.seconds, "preset": tex.escape(x.preset),
            "summary": tex.escape(x.summary), "figures": figures, "tables": [_table(t) for t in x.tables],
            "numbers": _numbers(x.numbers)}


def _audit(a: ErrataView) -> dict:
    return {"title": tex.escape(a.title), "source": tex.escape(a.source), "summary": tex.escape(a.summary),
            "caption": tex.escape(f"Errata of the write-up ({a.title}): each transcribed answer checked "
                                  "against the registry."),
            "rows": [_errata_row(e) for e in a.rows], "cached": a.cached, "seconds": a.seconds,
            "error": tex.lines(a.error)}


def _section(s: SectionView, view: ReportView, assets: dict[str, Path]) -> dict:
    q = s.question
    return {"key": tex.escape(q.key), "title": tex.escape(q.title),
            "text": q.text,  # the questions' texts are LaTeX already
            "planned": tex.escape(q.planned), "results": [_result(r) for r in s.results],
            "experiments": [_experiment(x, assets) for x in s.experiments],
            "errata": [_errata_row(e) for e in s.errata], "is_errata": s.is_errata,
            "audit": _audit(view.errata) if s.is_errata and view.errata is not None else None}


def _overview(s: SectionView) -> dict:
    passed, total = s.checks
    verdicts = ", ".join(f"{n} {v.value}" for v, n in s.verdict_counts().items() if n)
    return {"key": tex.escape(s.question.key), "title": tex.escape(s.question.title), "results": len(s.results),
            "checks": f"{passed}/{total}" if total else "--", "experiments": len(s.experiments),
            "errata": tex.escape(verdicts) if verdicts else "--", "empty": s.empty}


def context(view: ReportView) -> tuple[dict, dict[str, Path]]:
    """The template's variables (every text escaped), and the figures: path in the report -> file."""
    assets: dict[str, Path] = {}
    n_errata = len(view.errata.rows) if view.errata else 0
    ctx = {
        "sections": [_section(s, view, assets) for s in view.sections],
        "overview": [_overview(s) for s in view.sections if not s.is_errata],
        "verdicts": [{"macro": m, "color": c, "word": tex.escape(v.value)} for v, (m, c) in VERDICT_STYLE.items()],
        "n_results": len(view.results), "n_experiments": len(view.experiments),
        "checks_total": view.checks_total, "checks_passed": view.checks_passed,
        "n_errata": n_errata, "errata_counts": tex.escape(counts_phrase(view.errata_counts)),
        "failed_experiments": [tex.escape(x) for x in view.failed_experiments],
        "errata_failed": bool(view.errata and view.errata.error),
        "environment": [{"name": tex.escape(n), "value": tex.escape(v)} for n, v in view.environment],
        "parts": [{"name": tex.escape(p.name), "seconds": f"{p.seconds:.2f}", "computed": f"{p.computed_seconds:.2f}",
                   "source": "cache" if p.cached else "computed"} for p in view.parts],
        "total_seconds": f"{sum(p.seconds for p in view.parts):.1f}",
        "preset": tex.escape(view.preset),
        "reproduce": view.reproduce,  # shown verbatim
    }
    return ctx, assets


@functools.lru_cache(maxsize=16)  # one per template folder: jinja compiles a template once per
# environment and reloads it when its file changes
def _environment(template_dir: Path | None) -> jinja2.Environment:
    # Delimiters LaTeX does not use: << value >>, <% statement %>, <# comment #>.
    # A template directory need not hold every format's template: ours are the fallback.
    loaders = [jinja2.FileSystemLoader(str(template_dir))] if template_dir else []
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders + [jinja2.FileSystemLoader(str(TEMPLATE_DIR))]),
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )


def render(view: ReportView, template_dir: str | Path | None = None) -> tuple[str, dict[str, Path]]:
    """The text of ``report.tex``, and the figures it includes (path relative to it -> source file).

    A broken template raises :class:`~genverify.report.ReportError`.
    """
    ctx, assets = context(view)
    try:
        text = _environment(Path(template_dir) if template_dir else None).get_template(TEMPLATE_NAME).render(**ctx)
    except jinja2.TemplateError as exc:
        raise ReportError(f"the report template is broken: {type(exc).__name__}: {exc}") from None
    return text, assets
