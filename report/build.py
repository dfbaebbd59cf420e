"""Building the derivation report: compute (or reuse) the parts, render, compile, swap into place.

:func:`build_report` is what ``genverify report`` runs:

1. the parts, each computed or read back from the cache under ``<out>/../.genverify-cache/``
   (keyed by the code it runs and its settings, :mod:`genverify.report.cache`; ``fresh=True``
   recomputes everything and refreshes the cache):

   * every result of the registry: its derivation typeset and its checks run
     (:mod:`genverify.report.result_part`);
   * every registered experiment (KL fits, EM, NICE/VAE), run with the preset's settings
     (:mod:`genverify.report.experiment_part`);
   * the errata audit of the write-up (:mod:`genverify.report.errata_part`);

2. grouped by homework question into the report's view (:mod:`genverify.report.views`) and
   rendered as LaTeX (:mod:`genverify.report.render_latex`, ``templates/report.tex.j2``);
3. ``latexmk -pdf`` in a temporary directory (:mod:`genverify.report.compile`); only a build
   that succeeded replaces the output directory, so a failure never leaves a half-written
   report nor destroys the last good one. A directory is replaced only if a build wrote it
   (its :data:`MARKER` file); a failed build is kept in ``<cache>/failed-build`` to look at.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from genverify import presets, registry
from genverify.core import ParameterError
from genverify.io import atomic_write_text
from genverify.report import ReportError, environment, errata_part, experiment_part, result_part, views
from genverify.report import cache as rcache
from genverify.report.cache import Part
from genverify.report.compile import TEX_INSTALL_HINT, compile_pdf, find_latexmk, tidy
from genverify.report.progress import Progress
from genverify.report.render_latex import render

__all__ = ["build_report", "BuildSummary", "ReportError", "TEX_INSTALL_HINT", "MARKER", "DEFAULT_OUT"]

DEFAULT_OUT = Path("report") / "build"
#: Written into every report directory: only such a directory is ever replaced.
MARKER = ".genverify-report"
#: A scratch entry older than this was left by a build that was killed (a running build is younger).
_STALE_SECONDS = 6 * 3600


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
    errata_failed: bool = False


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ParameterError("out", f"{{param}} {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ParameterError("out", f"{{param}} {out} is a non-empty directory that genverify did not build; "
                                    "refusing to replace it (choose an empty or new directory)")


def _scratch(cache_dir: Path) -> Path:
    scratch = cache_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    for stale in scratch.iterdir():
        try:
            if time.time() - stale.stat().st_mtime > _STALE_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    return scratch


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


def _keep_failed(build_dir: Path, cache_dir: Path) -> str:
    """Move a failed build to ``<cache>/failed-build``; the sentence saying so (or "")."""
    if not build_dir.exists():
        return ""
    failed_dir = cache_dir / "failed-build"
    shutil.rmtree(failed_dir, ignore_errors=True)
    try:
        os.rename(build_dir, failed_dir)
    except OSError:
        shutil.rmtree(build_dir, ignore_errors=True)
        return ""
    return f" The failed build is kept in {failed_dir}."


def build_report(out: str | os.PathLike = DEFAULT_OUT, preset: str = presets.DEFAULT,
                 data_dir: str | os.PathLike | None = None, fresh: bool = False, seed: int = 0,
                 device: str = "cpu", *, results: Sequence | None = None, experiments: Sequence | None = None,
                 errata: bool = True, claims: str | os.PathLike | None = None,
                 template_dir: str | os.PathLike | None = None, latexmk: str | None | bool = True,
                 keep_going: bool = False, cache_dir: str | os.PathLike | None = None,
                 show_progress: bool = True, log: Callable[[str], None] | None = None) -> BuildSummary:
    """Build the report into ``out`` (see the module docstring). Raises :class:`ReportError` on failure,
    :class:`~genverify.core.ParameterError` for a bad argument.

    ``results``/``experiments`` default to the whole registry; ``errata`` audits the write-up
    ``claims`` (default: the packaged one); ``latexmk=True`` finds latexmk on PATH, ``False``
    writes only the ``.tex``; ``keep_going`` builds the report even when an experiment or the
    audit failed (the failure is shown in it).
    """
    t_start = time.perf_counter()
    presets.check_name(preset)
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser().resolve()
        if not data_dir.is_dir():
            raise ParameterError("data_dir", f"{{param}} {data_dir} is not a directory")
    if seed < 0:
        raise ParameterError("seed", f"{{param}} must be >= 0, got {seed}")
    if claims is not None and not Path(claims).is_file():
        raise ParameterError("claims", f"{{param}} {claims} is not a file")
    out = Path(out).expanduser().absolute()
    _check_out_dir(out)
    cache_dir = Path(cache_dir) if cache_dir is not None else out.parent / ".genverify-cache"
    scratch = _scratch(cache_dir)
    progress = Progress(show_progress)
    say = log or progress.line
    latexmk = find_latexmk(latexmk)

    results = list(registry.all_results() if results is None else results)
    experiments = list(registry.all_experiments() if experiments is None else experiments)

    res_data, parts = result_part.load_or_compute(results, cache_dir, fresh, seed, progress)
    reg_digest = rcache.registry_digest(registry.all_results())
    config = {"preset": preset, "data_dir": data_dir, "seed": seed, "device": device}
    runs = []
    for exp in experiments:
        run = experiment_part.load_or_run(exp, {**config, "show_progress": show_progress and sys.stderr.isatty()},
                                          cache_dir, fresh, reg_digest, progress)
        runs.append(run)
        parts.append(Part(f"experiment {exp.id} ({preset})", run.seconds, run.computed_seconds, run.cached))
    audit = errata_part.load_or_audit(claims, seed, cache_dir, fresh, reg_digest, progress) if errata else None
    if audit is not None:
        parts.append(audit.part)
    failed = [r for r in runs if r.error]
    if (failed or (audit is not None and audit.error)) and not keep_going:
        what = [f"experiment(s) {', '.join(r.exp.id for r in failed)}"] if failed else []
        what += ["the errata audit"] if audit is not None and audit.error else []
        detail = "\n".join([f"--- {r.exp.id}:\n{r.error}" for r in failed]
                           + ([f"--- errata:\n{audit.error}"] if audit is not None and audit.error else []))
        raise ReportError(f"{' and '.join(what)} failed; the previous report is unchanged "
                          f"(with {{keep_going}} the report is built with the failure shown).\n{detail}",
                          "keep_going")

    build_dir = Path(tempfile.mkdtemp(dir=scratch, prefix="build-"))
    try:
        t0 = time.perf_counter()
        env_rows = environment.describe(preset, data_dir, seed, device, environment.tex_version(latexmk))
        view = views.assemble(results, res_data, runs, audit, preset=preset, data_dir=data_dir, seed=seed,
                              parts=parts, environment=env_rows)
        text, figures = render(view, template_dir)
        for rel, src in figures.items():
            (build_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, build_dir / rel)
        atomic_write_text(build_dir / "report.tex", text)
        parts.append(Part("typesetting report.tex", time.perf_counter() - t0, time.perf_counter() - t0, False))
        pdf = None
        if latexmk:
            t0 = time.perf_counter()
            say("compiling report.tex with latexmk ...")
            compile_pdf(build_dir, latexmk)
            tidy(build_dir)
            parts.append(Part("LaTeX (latexmk)", time.perf_counter() - t0, time.perf_counter() - t0, False))
            pdf = out / "report.pdf"
        rcache.write_json(build_dir / "report.json", {
            "preset": preset, "checks_total": view.checks_total, "checks_passed": view.checks_passed,
            "results": [r.id for r in results], "experiments": [r.exp.id for r in runs],
            "failed_experiments": [r.exp.id for r in failed],
            "errata": {v.value: n for v, n in view.errata_counts.items()} if view.errata else None,
            "pdf": pdf is not None, "seconds": time.perf_counter() - t_start,
            "parts": [dataclasses.asdict(p) for p in parts]})
        _swap_into_place(build_dir, out, scratch)
    except BaseException as exc:
        hint = _keep_failed(build_dir, cache_dir)
        if isinstance(exc, ReportError):
            raise ReportError(f"{exc.message}\nThe previous report in {out} is unchanged.{hint}",
                              *exc.params) from None
        raise
    return BuildSummary(out_dir=out, tex=out / "report.tex", pdf=pdf, checks_total=view.checks_total,
                        checks_failed=view.checks_total - view.checks_passed,
                        experiments_failed=[r.exp.id for r in failed], parts=parts,
                        seconds=time.perf_counter() - t_start, tex_only=latexmk is None,
                        errata_failed=bool(audit is not None and audit.error))
