"""The install is true and quiet: every package and data file is in the distribution, every import declared.

setuptools warns (a hundred lines) and leaves a package out of the wheel when a folder
with Python files is missing from ``[tool.setuptools] packages``; a third-party import
missing from ``dependencies`` works on the developer's machine and fails on a fresh one.
These tests read pyproject.toml and the source tree; one builds the wheel and reads
setuptools' output.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _package_dirs() -> dict[str, Path]:
    """Package name -> its folder, from package-dir (a package without a mapping lives under its parent's)."""
    mapping = SETUPTOOLS["package-dir"]
    out = {}
    for name in SETUPTOOLS["packages"]:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in mapping:
                out[name] = ROOT / mapping[prefix] / Path(*parts[i:])
                break
        else:
            out[name] = ROOT / Path(*parts)
    return out


def _source_files() -> list[Path]:
    """The distribution's source files: what git tracks or would (not ignored), under the package folders."""
    roots = sorted({SETUPTOOLS["package-dir"][k] for k in SETUPTOOLS["package-dir"]})
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", *roots],
                                cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout.split("\n")
        return [ROOT / f for f in listed if f and (ROOT / f).is_file()]
    except (OSError, subprocess.SubprocessError):  # not a git checkout: every file but build outputs
        return [p for r in roots for p in (ROOT / r).rglob("*") if p.is_file()
                and not any(part in ("__pycache__", "build", ".genverify-cache") for part in p.parts)]


def _source_folders() -> set[Path]:
    """Every folder of the distribution's source that holds Python files or package data."""
    return {p.parent for p in _source_files() if not p.name.startswith(".")}


def test_every_source_folder_is_a_listed_package():
    listed = {d.resolve() for d in _package_dirs().values()}
    missing = sorted(str(f.relative_to(ROOT)) for f in _source_folders() if f.resolve() not in listed)
    assert not missing, f"folders missing from [tool.setuptools] packages in pyproject.toml: {missing}"
    for name, folder in _package_dirs().items():
        assert folder.is_dir(), f"{name}: {folder} does not exist"


def test_every_data_file_is_package_data():
    data = SETUPTOOLS.get("package-data", {})
    packages = {folder.resolve(): name for name, folder in _package_dirs().items()}
    for path in _source_files():
        if path.suffix != ".py" and not path.name.startswith(".") and path.parent.resolve() in packages:
            patterns = data.get(packages[path.parent.resolve()], [])
            assert any(path.match(p) for p in patterns), f"{path.relative_to(ROOT)} is not in package-data"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in reqs}


def test_every_third_party_import_is_a_declared_dependency():
    declared = _requirement_names(PYPROJECT["project"]["dependencies"])
    dev = _requirement_names(PYPROJECT["project"]["optional-dependencies"]["dev"])
    dists = metadata.packages_distributions()
    own = {"genverify"}
    for folder in {d for d in _package_dirs().values()}:
        for path in folder.glob("*.py"):
            for mod in _imports(path) - own - set(sys.stdlib_module_names):
                names = {d.lower().replace("_", "-") for d in dists.get(mod, [mod])}
                # The pytest plugin (genverify.testing) may import what only a test run has.
                allowed = declared | (dev if "testing" in path.parts else set())
                assert names & allowed, f"{path.relative_to(ROOT)} imports {mod} ({names}), not in dependencies"
    for mod in ("selenium", "pytest", "hypothesis"):
        assert {d.lower() for d in dists.get(mod, [mod])} & (dev | declared), mod


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_holds_every_package(tmp_path):
    floor = next(int(r.split(">=")[1].split(".")[0]) for r in PYPROJECT["build-system"]["requires"]
                 if r.startswith("setuptools>="))
    try:
        installed = int(metadata.version("setuptools").split(".")[0])
    except metadata.PackageNotFoundError:
        installed = 0
    if installed < floor:  # built without isolation, with this environment's setuptools
        pytest.skip(f"setuptools >= {floor} not installed here (found {installed or 'none'})")
    # A copy of the sources: setuptools builds in the tree (build/, *.egg-info) and must not touch the checkout.
    src = tmp_path / "src"
    for path in _source_files():
        (src / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / path.relative_to(ROOT))
    for name in ("pyproject.toml", PYPROJECT["project"].get("readme", "README.md"), "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                           "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # pip's own warnings about this machine's configuration are not the project's
    log = [ln for ln in (proc.stdout + proc.stderr).splitlines()
           if re.search(r"warn", ln, re.I) and "pip" not in ln.lower().split("warn")[0]]
    setuptools_warnings = [ln for ln in log if re.search(r"setuptools|package|absent|deprecat", ln, re.I)]
    assert not setuptools_warnings, "\n".join(setuptools_warnings[:20])
    wheel = next(tmp_path.glob("genverify-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in SETUPTOOLS["packages"]:
        folder = name.replace(".", "/")
        assert any(n.startswith(folder + "/") for n in names), f"{name} is not in the wheel"
    assert "genverify/report/templates/report.html.j2" in names
    assert "genverify/report/templates/report.tex.j2" in names
