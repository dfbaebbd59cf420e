"""Compiling ``report.tex`` with latexmk, and reading LaTeX's log when that fails.

:func:`compile_pdf` runs ``latexmk -pdf`` in the build directory; on failure it raises
:class:`~genverify.report.ReportError` with the log's error lines
(:func:`latex_errors`) and the ``report.tex`` lines they point at.
:func:`overfull_boxes` lists the lines that overflow the page (the tests require none).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from genverify.report import ReportError

__all__ = ["compile_pdf", "find_latexmk", "missing_tex", "latex_errors", "overfull_boxes", "tidy", "seed",
           "TEX_INSTALL_HINT",
           "TEX_INSTALL", "TEX_PACKAGES", "TEX_STYLES", "LATEX_TIMEOUT"]

#: The Debian packages of the TeX the report uses (scripts/system-deps.sh installs the same).
TEX_PACKAGES = "texlive-latex-base texlive-latex-recommended latexmk lmodern"
TEX_INSTALL = (f"install TeX (Debian/Ubuntu: sudo apt-get install {TEX_PACKAGES}; "
               "`make report` installs them where it can)")
TEX_INSTALL_HINT = ("TeX is not installed, so the report is HTML only (report.html, beside report.tex, the "
                    f"PDF's LaTeX source); for the PDF, {TEX_INSTALL} and run `genverify report` again.")
#: The LaTeX packages templates/report.tex.j2 loads (beyond the kernel's); in TEX_PACKAGES.
TEX_STYLES = ("amsmath", "amssymb", "array", "booktabs", "caption", "float", "geometry", "graphicx", "hyperref",
              "lmodern", "longtable", "microtype", "tabularx", "xcolor")
LATEX_TIMEOUT = 600
#: What latexmk leaves beside the PDF that a reader does not need (the .log stays: it explains the PDF).
_AUXILIARY = (".aux", ".fls", ".fdb_latexmk", ".out", ".toc", ".lot", ".lof")


def missing_tex() -> list[str]:
    """What the PDF needs that is not installed: latexmk or pdflatex, else the LaTeX packages (``.sty``) missing.

    A TeX installation that failed half-way (pdflatex without lmodern) counts as missing, so
    that the report is then built as HTML instead of failing in LaTeX.
    """
    missing = [p for p in ("latexmk", "pdflatex") if not shutil.which(p)]
    kpsewhich = shutil.which("kpsewhich")
    if missing or not kpsewhich:  # without kpsewhich, latexmk will tell
        return missing
    try:
        found = subprocess.run([kpsewhich, *(f"{s}.sty" for s in TEX_STYLES)], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    have = {Path(line.strip()).stem for line in found.splitlines() if line.strip()}
    return [f"{s}.sty" for s in TEX_STYLES if s not in have]


def find_latexmk(latexmk: str | bool | None) -> str | None:
    """``True``: latexmk from PATH (None when absent; :func:`missing_tex` checks the rest of TeX);
    ``False``/``None``: no compilation; a path: itself."""
    if latexmk is True:
        return shutil.which("latexmk")
    return latexmk or None


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


def compile_pdf(build_dir: Path, latexmk: str, name: str = "report") -> Path:
    """``build_dir/<name>.tex`` -> ``<name>.pdf``; a :class:`ReportError` quoting the log on failure."""
    env = dict(os.environ, max_print_line="1000", error_line="254", half_error_line="238")
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", f"{name}.tex"]
    try:
        proc = subprocess.run(cmd, cwd=build_dir, capture_output=True, text=True, timeout=LATEX_TIMEOUT,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ReportError(f"latexmk did not finish within {LATEX_TIMEOUT} s") from None
    pdf = build_dir / f"{name}.pdf"
    if proc.returncode != 0 or not pdf.is_file():
        log = build_dir / f"{name}.log"
        text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
        excerpt = latex_errors(text) or (proc.stdout + proc.stderr)[-3000:]
        source = ""
        m = re.search(rf"{re.escape(name)}\.tex:(\d+):", excerpt)
        if m:
            lines = (build_dir / f"{name}.tex").read_text(encoding="utf-8", errors="replace").splitlines()
            n = int(m.group(1))
            source = "\n{}.tex around line {}:\n{}".format(name, n, "\n".join(
                f"{i:>6}: {lines[i - 1][:200]}" for i in range(max(1, n - 2), min(len(lines), n + 2) + 1)))
        raise ReportError(f"LaTeX failed (latexmk exit {proc.returncode}); from {name}.log:\n{excerpt}{source}")
    return pdf


def tidy(build_dir: Path, name: str = "report", keep: Path | None = None) -> None:
    """Remove latexmk's auxiliary files (moved to the folder ``keep`` instead, when given: see :func:`seed`)."""
    if keep is not None:
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True, exist_ok=True)
    for ext in _AUXILIARY:
        path = build_dir / f"{name}{ext}"
        if keep is not None and path.is_file():
            try:
                shutil.move(path, keep / path.name)
                continue
            except OSError:
                pass
        path.unlink(missing_ok=True)


def seed(build_dir: Path, kept: Path) -> None:
    """Start ``build_dir``'s compilation from the auxiliary files :func:`tidy` kept from the last one.

    With the last build's cross-references, table of contents and latexmk's record of them,
    latexmk runs pdflatex until they settle as always, but starts from where the last build
    ended: usually one or two runs instead of three. Nothing depends on them but the count of
    runs (a changed document makes latexmk run again).
    """
    try:
        for path in kept.iterdir():
            if path.suffix in _AUXILIARY:
                shutil.copy2(path, build_dir / path.name)
    except OSError:
        pass
