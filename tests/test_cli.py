"""The command line as a user runs it: list, derive, verify, help, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from genverify.cli import build_parser, main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genverify", *args], capture_output=True, text=True, timeout=600)


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"list", "derive", "verify"} <= set(sub.choices)
    for name in sub.choices:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: genverify" in capsys.readouterr().out


def test_list_shows_ids_statements_and_symbols():
    out = run("list")
    assert out.returncode == 0
    assert "lognormal-pdf" in out.stdout and "sigma" in out.stdout and "5b" in out.stdout


def test_derive_prints_steps_and_latex():
    out = run("derive", "lognormal-pdf", "--latex")
    assert out.returncode == 0
    assert "\\sigma" in out.stdout and "Result" in out.stdout


def test_verify_one_result_passes_and_writes_json(tmp_path):
    target = tmp_path / "records.json"
    # Two results whose checks need no torch (its import is a second of this test); every check of
    # every result runs in test_registry.
    out = run("verify", "lognormal-pdf", "cauchy-reciprocal-pdf", "--json", str(target))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "verified" in out.stdout
    records = json.loads(target.read_text())
    assert {r["result_id"] for r in records} == {"lognormal-pdf", "cauchy-reciprocal-pdf"}
    assert all(r["passed"] for r in records)


def test_unknown_id_exits_2_with_a_suggestion():
    out = run("derive", "lognormal-pfd")
    assert out.returncode == 2
    assert "lognormal-pdf" in out.stderr and "Traceback" not in out.stderr


def test_failed_check_makes_verify_exit_1(swap_result, capsys):
    import dataclasses

    from genverify import registry
    from genverify.registry import Check, Outcome

    good = registry.get("kl-vae")
    broken = dataclasses.replace(good, checks=(Check("always fails", "numeric", lambda r, g: Outcome(False, "x")),))
    swap_result(broken)
    assert main(["verify", "kl-vae"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_installed_namespace_is_genverify_only(tmp_path):
    """From outside the checkout: the checked formulas import, and no top-level `models`,
    `numerics` or `derivations` module is installed."""
    code = (
        "import importlib.util as u\n"
        "from genverify.numerics import lognormal_pdf, square_distance_pdf\n"
        "import genverify.models, genverify.derivations, genverify.report\n"
        "print([n for n in ('models', 'numerics', 'derivations', 'report') if u.find_spec(n)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
