"""The report's view (:mod:`genverify.report.views`) as one self-contained HTML page.

:func:`render` turns a :class:`~genverify.report.views.ReportView` into the text of
``report.html``: the same sections, derivations, boxed results, evidence tables,
figures, experiment tables, errata and appendix as the PDF
(:mod:`genverify.report.render_latex`), laid out by ``templates/report.html.j2``.

* Text goes into the template as plain text and Jinja escapes it (autoescape).
* Mathematics is MathML, converted from the view's LaTeX notation by
  :func:`genverify.report.mathml.to_mathml` (so from the same SymPy expressions the PDF
  typesets); browsers draw it natively, with no script. A formula that cannot be
  converted (a write-up's unusual LaTeX) is shown as its source, as the PDF does.
* Figures are inlined as ``data:`` URIs (PNG, or SVG where an experiment wrote one),
  sized so that a PNG shows at its physical size (its dpi), shrunk to the column.
* Nothing is loaded from elsewhere: no script, no web font, no stylesheet link.
"""

from __future__ import annotations

import base64
import functools
import re
import struct
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from genverify.claims.verdict import ErrataRow, Verdict
from genverify.report import ReportError
from genverify.report import latex as tex
from genverify.report.mathml import MathMLError, to_mathml
from genverify.report.views import (
    CheckView,
    ErrataView,
    ExperimentView,
    ReportView,
    ResultView,
    SectionView,
    TableView,
    counts_phrase,
    plain_value,
)

__all__ = ["render", "context", "math_markup", "TEMPLATE_DIR", "TEMPLATE_NAME", "FIGURE_SUFFIXES"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.html.j2"
#: The figure formats a browser shows, the one taken first first.
FIGURE_SUFFIXES = (".svg", ".png", ".jpg")
_MIME = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg"}
#: CSS pixels per inch: a PNG written at ``dpi`` shows at its physical size at ``px * 96 / dpi``.
_CSS_DPI = 96.0
#: Classes of the verdicts (the colours are in the template's stylesheet).
VERDICT_CLASS = {Verdict.CORRECT: "v-correct", Verdict.INCORRECT: "v-incorrect"}
#: Any other verdict or step status (not checkable, undecided) is amber.
OTHER_CLASS = "v-unchecked"
#: The step statuses that are wrong (red) and right (green).
_STEP_BAD, _STEP_GOOD = frozenset({"fails"}), frozenset({"follows", "start", "follows corrected"})
#: A list of numbers longer than this is set in two tables side by side.
_NUMBERS_PER_COLUMN = 12


def math_markup(latex: str, display: bool = False) -> Markup:
    """``latex`` as a ``<math>`` element, or (not convertible) its source as code."""
    try:
        return Markup(to_mathml(latex, display=display))
    except MathMLError:
        return Markup('<code class="latex-source">{}</code>').format(latex)


def text_with_math(text: str) -> Markup:
    """LaTeX text with inline maths in ``$...$`` (a question's text): escaped text and MathML."""
    parts = re.split(r"(?<!\\)\$", text)
    if len(parts) % 2 == 0:  # an unpaired $: all text
        parts = [text]
    out = [escape(tex.unescape(p)) if i % 2 == 0 else math_markup(p) for i, p in enumerate(parts)]
    return Markup("").join(out)


def _claim(formula: str) -> Markup | None:
    """The write-up's formula, in display style (fractions at full size, as in the PDF's tables)."""
    if not formula or formula == "(none)":
        return None
    try:
        return Markup(to_mathml(formula, displaystyle=True))
    except MathMLError:
        return Markup('<code class="latex-source">{}</code>').format(formula)


def _step(step, first_error: int) -> dict:
    status = str(getattr(step.status, "value", step.status))
    cls = "v-incorrect" if status in _STEP_BAD else "v-correct" if status in _STEP_GOOD else OTHER_CLASS
    return {"n": step.n, "label": step.label, "claim": _claim(str(step.claim)), "relation": step.relation,
            "status": status, "status_class": cls, "first": step.n == first_error, "evidence": step.evidence,
            "diagnosis": step.diagnosis, "versus_result": step.versus_result, "corrected": step.corrected}


def _errata_row(row: ErrataRow) -> dict:
    # diagnosis, steps and first_error: what the claims package says beyond the verdict (absent in older audits)
    first_error = int(getattr(row, "first_error", 0) or 0)
    return {"question": row.question, "part": row.part, "id": row.id, "claim": _claim(str(row.claim)),
            "where": _claim(str(row.where or "")), "verdict": row.verdict.value,
            "verdict_class": VERDICT_CLASS.get(row.verdict, OTHER_CLASS), "evidence": row.evidence,
            "note": row.note, "diagnosis": str(getattr(row, "diagnosis", "") or ""),
            "steps": [_step(st, first_error) for st in getattr(row, "steps", None) or []],
            "first_error": first_error}


def _check(c: CheckView) -> dict:
    return {"check": c.name, "kind": c.kind, "figure": c.figure, "passed": c.passed,
            "detail": c.detail if not c.passed else ""}


def _result(r: ResultView) -> dict:
    return {"id": r.id, "anchor": "r-" + _anchor(r.id), "statement": r.statement, "notes": r.notes,
            "params": [{"math": math_markup(rf"{p.symbol} \in {p.domain}"), "text": p.description}
                       for p in r.params],
            "steps": [{"description": s.description, "math": math_markup(s.math.display, display=True)}
                      for s in r.steps],
            "boxed": math_markup(r.boxed.display, display=True) if r.boxed else None,
            "derive_error": r.derive_error, "checks": [_check(c) for c in r.checks], "passed": r.passed,
            "errata": [_errata_row(e) for e in r.errata]}


def _png_size(data: bytes) -> tuple[int, int, float] | None:
    """(width, height, dots per inch) of a PNG, from its IHDR and pHYs chunks; None if not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    dpi, pos = 0.0, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"pHYs" and length == 9:
            ppu_x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            dpi = ppu_x * 0.0254 if unit == 1 else 0.0
            break
        if kind == b"IDAT":
            break
        pos += 12 + length
    return width, height, dpi


def _figure(source: Path) -> dict:
    """A figure file as a data URI, with the CSS size at which it shows at its physical size."""
    data = source.read_bytes()
    size = _png_size(data) if source.suffix == ".png" else None
    width = height = None
    if size:
        w, h, dpi = size
        scale = _CSS_DPI / dpi if dpi > 0 else 1.0
        width, height = round(w * scale), round(h * scale)
    uri = f"data:{_MIME[source.suffix]};base64,{base64.b64encode(data).decode('ascii')}"
    return {"uri": uri, "width": width, "height": height}


def _table(t: TableView) -> dict:
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in t.rows
                   if r[i] not in ("", None)) for i in range(len(t.columns))]
    return {"name": t.name, "caption": t.caption, "header": t.columns, "numeric": numeric,
            "rows": [[plain_value(v) for v in row] for row in t.rows]}


def _numbers(numbers: list[tuple[str, Any]]) -> list[list[tuple[str, str]]]:
    """The numbers as (name, value) rows, in one table, or two halves side by side when long."""
    rows = [(str(k), plain_value(v)) for k, v in numbers]
    if len(rows) <= _NUMBERS_PER_COLUMN:
        return [rows] if rows else []
    half = (len(rows) + 1) // 2
    return [rows[:half], rows[half:]]


def _experiment(x: ExperimentView) -> dict:
    figures = []
    for f in x.figures:
        src = f.source(FIGURE_SUFFIXES)
        figures.append({"caption": f.caption, "stem": f.stem, "image": _figure(src) if src else None})
    return {"id": x.id, "anchor": "x-" + _anchor(x.id), "title": x.title, "error": x.error, "cached": x.cached,
            "seconds": x.seconds, "preset": x.preset, "summary": x.summary, "figures": figures,
            "tables": [_table(t) for t in x.tables], "numbers": _numbers(x.numbers)}


def _audit(a: ErrataView) -> dict:
    return {"title": a.title, "source": a.source, "summary": a.summary, "rows": [_errata_row(e) for e in a.rows],
            "cached": a.cached, "seconds": a.seconds, "error": a.error}


def _anchor(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-") or "x"


def _section(s: SectionView, view: ReportView) -> dict:
    q = s.question
    return {"key": q.key, "anchor": "sec-errata" if s.is_errata else f"q-{_anchor(q.key)}",
            "heading": "Errata of the write-up" if s.is_errata else f"Question {q.key}: {q.title}",
            "text": text_with_math(q.text), "planned": q.planned,
            "results": [_result(r) for r in s.results], "experiments": [_experiment(x) for x in s.experiments],
            "errata": [_errata_row(e) for e in s.errata], "is_errata": s.is_errata,
            "audit": _audit(view.errata) if s.is_errata and view.errata is not None else None}


def _overview(s: SectionView, anchor: str) -> dict:
    passed, total = s.checks
    verdicts = ", ".join(f"{n} {v.value}" for v, n in s.verdict_counts().items() if n)
    return {"key": s.question.key, "anchor": anchor, "title": s.question.title, "results": len(s.results),
            "checks": f"{passed}/{total}" if total else "–", "experiments": len(s.experiments),
            "errata": verdicts or "–", "empty": s.empty}


def context(view: ReportView) -> dict:
    """The template's variables: plain text (escaped by Jinja), MathML and figures as :class:`Markup`/data."""
    sections = [_section(s, view) for s in view.sections]
    n_errata = len(view.errata.rows) if view.errata else 0
    return {
        "sections": sections,
        "overview": [_overview(s, d["anchor"]) for s, d in zip(view.sections, sections) if not s.is_errata],
        "n_results": len(view.results), "n_experiments": len(view.experiments),
        "checks_total": view.checks_total, "checks_passed": view.checks_passed,
        "n_errata": n_errata, "errata_counts": counts_phrase(view.errata_counts),
        "failed_experiments": view.failed_experiments,
        "errata_failed": bool(view.errata and view.errata.error),
        "environment": view.environment,
        "parts": [{"name": p.name, "seconds": f"{p.seconds:.2f}", "computed": f"{p.computed_seconds:.2f}",
                   "source": "cache" if p.cached else "computed"} for p in view.parts],
        "total_seconds": f"{sum(p.seconds for p in view.parts):.1f}",
        "preset": view.preset,
        "reproduce": view.reproduce,
        "generated": dict(view.environment).get("generated", ""),
    }


@functools.lru_cache(maxsize=16)  # one per template folder: jinja compiles a template once per
# environment and reloads it when its file changes
def _environment(template_dir: Path | None) -> jinja2.Environment:
    # A template directory given for the LaTeX template need not hold this one: fall back to ours.
    loaders = [jinja2.FileSystemLoader(str(template_dir))] if template_dir else []
    return jinja2.Environment(loader=jinja2.ChoiceLoader(loaders + [jinja2.FileSystemLoader(str(TEMPLATE_DIR))]),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render(view: ReportView, template_dir: str | Path | None = None) -> str:
    """The text of ``report.html`` (figures inlined). A broken template raises :class:`ReportError`."""
    ctx = context(view)
    try:
        return _environment(Path(template_dir) if template_dir else None).get_template(TEMPLATE_NAME).render(**ctx)
    except jinja2.TemplateError as exc:
        raise ReportError(f"the HTML report template is broken: {type(exc).__name__}: {exc}") from None
