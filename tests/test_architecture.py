"""The architecture holds: imports run only downwards through the layers.

The layers are declared once, as an import-linter contract in
``pyproject.toml`` (see the README's "Architecture"). import-linter reads a
package from one directory tree, while genverify maps ``derivations/``,
``numerics/``, ``models/`` and ``report/`` into its namespace with
setuptools ``package-dir``; so the test assembles the namespace as it is
installed (a copy, in a temporary directory) and lints that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _installed_layout(tmp_path: Path) -> Path:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_dir = config["tool"]["setuptools"]["package-dir"]
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", ".genverify-cache")
    shutil.copytree(ROOT / package_dir["genverify"], site / "genverify", ignore=ignore)
    for name, folder in package_dir.items():
        if name == "genverify":
            continue
        target = site / Path(*name.split("."))
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / folder, target, ignore=ignore)
    return site


def test_imports_only_run_downwards_through_the_layers(tmp_path):
    site = _installed_layout(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(site))
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint), str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_contract_sees_every_mapped_folder(tmp_path):
    # A layer import-linter cannot find would make the contract vacuous for it.
    site = _installed_layout(tmp_path)
    for name in ("derivations", "numerics", "models", "report", "claims", "experiments", "results", "commands"):
        assert (site / "genverify" / name / "__init__.py").is_file(), name
