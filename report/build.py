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

   computed side by side in worker processes, one per core, longest first
   (:mod:`genverify.report.parts`), each derivation once for all of them (the disk cache of
   :mod:`genverify.diskcache`);

2. grouped by homework question into the report's view (:mod:`genverify.report.views`) and
   rendered in each output format from that one view: ``report.tex`` (always; the PDF's
   source, :mod:`genverify.report.render_latex`), ``report.html`` (one self-contained page,
   MathML and inline figures, :mod:`genverify.report.render_html`) and ``report.pdf``
   (``latexmk -pdf``, :mod:`genverify.report.compile`). The formats default to every one
   this machine can build: HTML always, the PDF where TeX is installed;
3. all of it in a temporary directory: only a build that succeeded in every format replaces
   the output directory, so a failure never leaves a half-written report nor destroys the
   last good one. A directory is replaced only if a build wrote it (its :data:`MARKER`
   file); a failed build is kept in ``<cache>/failed-build`` to look at.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from genverify import presets, registry
from genverify.core import ParameterError
from genverify.io import atomic_write_text
from genverify.parallel import default_workers
from genverify.report import ReportError, environment, render_html, views
from genverify.report import cache as rcache
from genverify.report.cache import Part
from genverify.report.compile import TEX_INSTALL, TEX_INSTALL_HINT, compile_pdf, find_latexmk, missing_tex, seed, tidy
from genverify.report.parts import compute_parts
from genverify.report.progress import Progress
from genverify.report.render_latex import render as render_tex

__all__ = ["build_report", "BuildSummary", "ReportError", "TEX_INSTALL_HINT", "MARKER", "DEFAULT_OUT", "FORMATS",
           "resolve_formats"]

DEFAULT_OUT = Path("report") / "build"
#: Written into every report directory: only such a directory is ever replaced.
MARKER = ".genverify-report"
#: A scratch entry older than this was left by a build that was killed (a running build is younger).
_STALE_SECONDS = 6 * 3600
#: The output formats, in the order they are listed; ``report.tex`` (the PDF's source) is always written.
FORMATS = ("pdf", "html")


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
    tex_only: bool = False  # no PDF was built (TeX absent, or not asked for)
    errata_failed: bool = False
    html: Path | None = None
    formats: tuple[str, ...] = ()
    tex_missing: tuple[str, ...] = ()  # why there is no PDF by default: what of TeX is not installed

    @property
    def written(self) -> list[Path]:
        """The report's files, the ones to open first first: the PDF, the HTML page, the LaTeX source."""
        return [p for p in (self.pdf, self.html, self.tex) if p is not None]


def resolve_formats(formats: str | Sequence[str] | None, latexmk: str | None,
                    pdf_allowed: bool = True, tex_missing: Sequence[str] = ()) -> tuple[str, ...]:
    """The formats to build, in :data:`FORMATS` order.

    ``formats`` is a sequence or a comma-separated string of :data:`FORMATS`; ``None``: every
    format this machine can build (HTML, and the PDF when ``latexmk`` was found). Asking for
    the PDF without TeX raises :class:`ReportError` (saying how to install it);
    ``pdf_allowed=False`` (the caller turned LaTeX off) makes asking for it a
    :class:`~genverify.core.ParameterError`; ``tex_missing`` says what is missing.
    """
    missing = f" (missing: {', '.join(tex_missing)})" if tex_missing else ""
    if formats is None:
        return tuple(f for f in FORMATS if f != "pdf" or latexmk)
    names = [f.strip().lower() for f in re.split(r"[,\s]+", formats)] if isinstance(formats, str) \
        else [str(f).strip().lower() for f in formats]
    names = [n for n in names if n]
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ParameterError("formats", f"{{param}} must list one or more of {', '.join(FORMATS)} "
                                        f"(comma-separated), got {formats!r}")
    if "pdf" in names and not pdf_allowed:
        raise ParameterError("formats", "{param} includes pdf, which {latexmk} turns off", "latexmk")
    if "pdf" in names and not latexmk:
        raise ReportError(f"the PDF needs TeX, which is not installed{missing}: {TEX_INSTALL}, or leave pdf "
                          "out of {formats}.", "formats")
    return tuple(f for f in FORMATS if f in names)


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


def _readable(build_dir: Path) -> None:
    """Give the report the permissions of a file the user created (the temporary files are private)."""
    umask = os.umask(0)
    os.umask(umask)
    build_dir.chmod(0o777 & ~umask)
    for path in build_dir.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


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
                 formats: str | Sequence[str] | None = None,
                 keep_going: bool = False, cache_dir: str | os.PathLike | None = None,
                 show_progress: bool = True, log: Callable[[str], None] | None = None,
                 jobs: int | None = None) -> BuildSummary:
    """Build the report into ``out`` (see the module docstring). Raises :class:`ReportError` on failure,
    :class:`~genverify.core.ParameterError` for a bad argument.

    ``results``/``experiments`` default to the whole registry; ``errata`` audits the write-up
    ``claims`` (default: the packaged one); ``latexmk=True`` finds latexmk on PATH, ``False``
    compiles no PDF; ``formats`` (``"pdf,html"``, see :func:`resolve_formats`) defaults to every
    format the machine can build; ``keep_going`` builds the report even when an experiment or
    the audit failed (the failure is shown in every format); ``jobs`` is the number of processes
    computing parts side by side (``None``: one per core; 1: everything in this process), see
    :mod:`genverify.report.parts`.
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
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ParameterError("jobs", f"{{param}} must be a positive number of processes, got {jobs!r}")
    workers = default_workers() if jobs is None else jobs
    out = Path(out).expanduser().absolute()
    _check_out_dir(out)
    cache_dir = Path(cache_dir) if cache_dir is not None else out.parent / ".genverify-cache"
    scratch = _scratch(cache_dir)
    progress = Progress(show_progress)
    say = log or progress.line
    pdf_allowed = latexmk is not False and latexmk is not None
    tex_missing = tuple(missing_tex()) if latexmk is True else ()
    latexmk = None if tex_missing else find_latexmk(latexmk)
    formats = resolve_formats(formats, latexmk, pdf_allowed, tex_missing)
    if "pdf" not in formats:
        latexmk = None

    results = list(registry.all_results() if results is None else results)
    experiments = list(registry.all_experiments() if experiments is None else experiments)

    reg_digest = rcache.registry_digest(registry.all_results())
    config = {"preset": preset, "data_dir": data_dir, "seed": seed, "device": device}
    computed = compute_parts(results, experiments, errata=errata, claims=claims,
                             exp_config={**config, "show_progress": show_progress and sys.stderr.isatty()},
                             cache_dir=cache_dir, fresh=fresh, seed=seed, registry_digest=reg_digest,
                             progress=progress, workers=workers)
    res_data, runs, audit, parts = computed.results, computed.runs, computed.audit, computed.parts
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
        tex_row = environment.tex_version(latexmk) if latexmk else \
            f"not installed (missing: {', '.join(tex_missing)})" if tex_missing else "not used (no PDF asked for)"
        env_rows = environment.describe(preset, data_dir, seed, device, tex_row)
        view = views.assemble(results, res_data, runs, audit, preset=preset, data_dir=data_dir, seed=seed,
                              parts=parts, environment=env_rows)
        parts.append(Part("assembling the report's view", time.perf_counter() - t0, time.perf_counter() - t0, False))
        parts += _write_formats(view, build_dir, formats, latexmk, template_dir, say, cache_dir)
        pdf = out / "report.pdf" if "pdf" in formats else None
        html = out / "report.html" if "html" in formats else None
        rcache.write_json(build_dir / "report.json", {
            "preset": preset, "checks_total": view.checks_total, "checks_passed": view.checks_passed,
            "results": [r.id for r in results], "experiments": [r.exp.id for r in runs],
            "failed_experiments": [r.exp.id for r in failed],
            "errata": {v.value: n for v, n in view.errata_counts.items()} if view.errata else None,
            "formats": list(formats), "pdf": pdf is not None, "html": html is not None,
            "seconds": time.perf_counter() - t_start,
            "parts": [dataclasses.asdict(p) for p in parts]})
        _readable(build_dir)
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
                        seconds=time.perf_counter() - t_start, tex_only=pdf is None,
                        errata_failed=bool(audit is not None and audit.error), html=html, formats=formats,
                        tex_missing=tex_missing if "pdf" not in formats else ())


def _write_formats(view: views.ReportView, build_dir: Path, formats: tuple[str, ...], latexmk: str | None,
                   template_dir, say: Callable[[str], None], cache_dir: Path) -> list[Part]:
    """Write ``report.tex`` (and its figures) and each of ``formats`` into ``build_dir``; what each took.

    Each format is rendered from the same ``view``. latexmk runs in its own process while the
    HTML page is rendered here, so a build in both formats takes about as long as the PDF alone.
    It starts from the auxiliary files of the last build with the same preamble (kept in the
    cache, :func:`genverify.report.compile.seed`): fewer pdflatex runs, the same PDF.
    """
    parts = []
    t0 = time.perf_counter()
    text, figures = render_tex(view, template_dir)
    for rel, src in figures.items():
        (build_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, build_dir / rel)
    atomic_write_text(build_dir / "report.tex", text)
    parts.append(Part("typesetting report.tex", time.perf_counter() - t0, time.perf_counter() - t0, False))
    # The same packages read the same auxiliary files: the kept ones are keyed by the preamble.
    kept = cache_dir / "latex" / rcache.digest("latex-aux", text.partition(r"\begin{document}")[0])[:16]
    with ThreadPoolExecutor(max_workers=1) as pool:
        latex = None
        if "pdf" in formats:
            say("compiling report.tex with latexmk ...")
            seed(build_dir, kept)
            latex = pool.submit(_timed, compile_pdf, build_dir, latexmk)
        if "html" in formats:
            t0 = time.perf_counter()
            atomic_write_text(build_dir / "report.html", render_html.render(view, template_dir))
            parts.append(Part("HTML (report.html)", time.perf_counter() - t0, time.perf_counter() - t0, False))
        if latex is not None:
            seconds = latex.result()  # raises what compile_pdf raised
            tidy(build_dir, keep=kept)
            rcache.prune(kept.parent, kept.name, "*", n_keep=2)
            parts.append(Part("LaTeX (latexmk)", seconds, seconds, False))
    return parts


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0
