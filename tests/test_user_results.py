"""Users' own results (issue 17): a results module adds results, experiments and questions to the registry,
named by load_module / the CLI's --results-module, GENVERIFY_RESULTS_MODULES or a genverify.results entry
point; every command and the report include them, grouped under the user's questions; a bad module is a
clear error (exit 2), never a traceback."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from genverify import registry
from genverify.core import Question
from genverify.registry import ENV_VAR, ResultsModuleError

#: A user's results module: one question, one result (the exponential density) with a numeric check.
USER_MODULE = '''
import numpy as np
import sympy as sp

from genverify.checks import numeric_matches_derivation
from genverify.core import Derivation, Param, Question, Result, Step

x = sp.Symbol("x", positive=True)
lam = sp.Symbol("lam", positive=True)


def derive():
    cdf = 1 - sp.exp(-lam * x)
    pdf = sp.diff(cdf, x)
    return Derivation(pdf, (Step("the cdf of an exponential variable", cdf), Step("its derivative", pdf)))


QUESTIONS = [Question("hw3-1", "The exponential density",
                      r"Give the density of an exponential variable with rate $\\lambda$.", "the exponential density.")]
RESULTS = [Result(
    id="{rid}",
    statement="An exponential variable with rate lam has density lam exp(-lam x), x > 0",
    question="hw3-1a",
    params=(Param("x", x, sp.Interval.open(0, sp.oo), "value", sample_range=(0.01, 10.0)),
            Param("lam", lam, sp.Interval.open(0, sp.oo), "rate", scale="log", sample_range=(0.1, 10.0))),
    derive=derive,
    numeric=lambda x, lam: lam * np.exp(-lam * x),
    kind="density",
    variable="x",
    checks=(numeric_matches_derivation(),),
)]
'''


def write_module(directory: Path, name: str, body: str) -> Path:
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """A directory on sys.path for users' modules, and a registry restored after the test."""
    registry.all_results()
    for name in ("_RESULTS", "_EXPERIMENTS", "_QUESTIONS", "_ORIGIN", "_LOADED", "_DISCOVERED", "_DISCOVERY_ERROR"):
        monkeypatch.setattr(registry, name, copy.copy(getattr(registry, name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("usermod"):
            del sys.modules[name]


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    full_env.update({"COLUMNS": "200", **(env or {})})  # rich wraps tables to the terminal's width
    return subprocess.run([sys.executable, "-m", "genverify", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=full_env)


# ----------------------------------------------------------------- the library


def test_a_results_module_adds_its_results_and_questions_after_the_homework(user_dir):
    write_module(user_dir, "usermod_a", USER_MODULE.replace("{rid}", "my-exponential-pdf"))
    homework = registry.ids()
    registry.load_module("usermod_a")
    assert registry.ids() == [*homework, "my-exponential-pdf"]
    assert [q.key for q in registry.questions()][-1] == "hw3-1"
    assert registry.question_of("hw3-1a") == "hw3-1" and registry.question_of("5b") == "5b"
    assert registry.get("my-exponential-pdf").expr is not None
    # loading it again is a no-op
    registry.load_module("usermod_a")
    assert registry.ids().count("my-exponential-pdf") == 1


def test_the_report_sections_read_the_registered_questions_live(user_dir):
    from genverify.report.questions import ERRATA, QUESTIONS, section_key

    keys_before = [q.key for q in QUESTIONS]
    write_module(user_dir, "usermod_b", USER_MODULE.replace("{rid}", "my-exponential-pdf"))
    registry.load_module("usermod_b")
    keys = [q.key for q in QUESTIONS]
    assert keys == [*keys_before[:-1], "hw3-1", ERRATA]
    assert section_key("hw3-1a") == "hw3-1" and section_key("2b-iii") == "2b" and section_key("errata") == ERRATA


def test_a_module_may_register_its_results_itself(user_dir):
    body = USER_MODULE.replace("{rid}", "my-exponential-pdf-2").replace("RESULTS = [", "_MINE = [")
    write_module(user_dir, "usermod_c", body + "\nfrom genverify import registry\n\nfor _r in _MINE:\n"
                                             "    registry.register(_r)\n")
    registry.load_module("usermod_c")
    assert "my-exponential-pdf-2" in registry.ids()


def test_a_py_file_loads_as_a_module(user_dir):
    path = write_module(user_dir, "usermod_file", USER_MODULE.replace("{rid}", "my-exponential-pdf-3"))
    registry.load_module(str(path))
    assert "my-exponential-pdf-3" in registry.ids()


def test_the_environment_variable_names_results_modules(user_dir, monkeypatch):
    write_module(user_dir, "usermod_env", USER_MODULE.replace("{rid}", "my-exponential-pdf-env"))
    monkeypatch.setenv(ENV_VAR, " usermod_env , ")
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    assert "my-exponential-pdf-env" in registry.ids()


def test_an_entry_point_of_an_installed_distribution_names_a_results_module(user_dir, monkeypatch):
    write_module(user_dir, "usermod_ep", USER_MODULE.replace("{rid}", "my-exponential-pdf-ep"))
    dist = user_dir / "userdist-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: userdist\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[genverify.results]\nmine = usermod_ep\n")
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    assert "my-exponential-pdf-ep" in registry.ids()
    assert registry.question_of("hw3-1a") == "hw3-1"


@pytest.mark.parametrize("body, expected", [
    ("import no_such_package_xyz\n", "cannot be imported: ModuleNotFoundError: No module named 'no_such_package_xyz'"),
    ("x = 1\nraise RuntimeError('half-written homework')\n", "RuntimeError: half-written homework (" ),
    ("def broken(:\n", "SyntaxError"),
    ("RESULTS = [{'id': 'not-a-result'}]\n", "RESULTS[0] is a dict, not a genverify.core.Result"),
    ("QUESTIONS = 'hw3'\n", "QUESTIONS must be a list of genverify.core.Question, got str"),
    ("VALUE = 3\n", "declares no RESULTS, EXPERIMENTS or QUESTIONS and registered nothing"),
])
def test_a_bad_results_module_is_a_clear_error_and_registers_nothing(user_dir, body, expected):
    write_module(user_dir, "usermod_bad", body)
    ids, questions = registry.ids(), registry.questions()
    with pytest.raises(ResultsModuleError) as exc:
        registry.load_module("usermod_bad", source="a test")
    assert "results module 'usermod_bad' (named by a test)" in str(exc.value)
    assert expected in str(exc.value)
    assert registry.ids() == ids and registry.questions() == questions


def test_a_taken_id_names_the_module_that_has_it(user_dir):
    write_module(user_dir, "usermod_dup", USER_MODULE.replace("{rid}", "lognormal-pdf"))
    questions = registry.questions()
    with pytest.raises(ResultsModuleError, match=r"result id 'lognormal-pdf' is registered twice "
                                                 r"\(first by genverify.results.densities\)"):
        registry.load_module("usermod_dup")
    assert registry.questions() == questions  # its question was rolled back too


def test_a_question_key_is_unique_but_an_equal_question_is_welcome():
    q = registry.questions()[0]
    assert registry.register_question(Question(q.key, q.title, q.text, q.planned)) is not None
    with pytest.raises(ValueError, match=r"question '1a' is registered twice"):
        registry.register_question(Question("1a", "Another", "Another text"))
    with pytest.raises(ValueError, match="question must be a genverify.core.Question"):
        registry.register_question({"key": "x"})


# ----------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's project directory with a results module beside them (found from the current directory)."""
    root = tmp_path_factory.mktemp("userproject")
    write_module(root, "usermod_cli", USER_MODULE.replace("{rid}", "my-exponential-pdf"))
    write_module(root, "usermod_broken", "raise RuntimeError('half-written homework')\n")
    return root


def test_list_groups_user_results_under_their_question(project):
    out = run_cli("--results-module", "usermod_cli", "list", cwd=project)
    assert out.returncode == 0, out.stderr
    assert "my-exponential-pdf" in out.stdout and "The exponential density" in out.stdout
    assert "lognormal-pdf" in out.stdout  # the homework's results stay
    assert out.stdout.index("The exponential density") < out.stdout.index("my-exponential-pdf")
    only = run_cli("list", "--question", "hw3-1", "--results-module", "usermod_cli", cwd=project)
    assert only.returncode == 0 and "my-exponential-pdf" in only.stdout and "lognormal-pdf" not in only.stdout


def test_derive_verify_and_check_include_user_results(project):
    derive = run_cli("--results-module", "usermod_cli", "derive", "my-exponential-pdf", cwd=project)
    assert derive.returncode == 0, derive.stderr
    assert "The exponential density" in derive.stdout and "Result" in derive.stdout
    verify = run_cli("--results-module", "usermod_cli", "verify", "my-exponential-pdf", cwd=project)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "verified" in verify.stdout
    good = run_cli("--results-module", "usermod_cli", "check", "my-exponential-pdf", "lam*exp(-lam*x)", cwd=project)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run_cli("--results-module", "usermod_cli", "check", "my-exponential-pdf", "exp(-lam*x)", cwd=project)
    assert bad.returncode == 1, bad.stdout + bad.stderr


def test_the_environment_variable_works_for_the_commands(project):
    out = run_cli("derive", "my-exponential-pdf", cwd=project,
                  env={ENV_VAR: "usermod_cli", "PYTHONPATH": str(project)})
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("args, env, expected", [
    (["--results-module", "usermod_broken", "list"], None,
     "results module 'usermod_broken' (named by --results-module) cannot be imported: "
     "RuntimeError: half-written homework"),
    (["--results-module", "no_such_module_xyz", "list"], None, "No module named 'no_such_module_xyz'"),
    (["list"], {ENV_VAR: "usermod_broken"}, "(named by the environment variable GENVERIFY_RESULTS_MODULES)"),
])
def test_a_bad_results_module_exits_2_without_a_traceback(project, args, env, expected):
    if env is not None:
        env = {**env, "PYTHONPATH": str(project)}
    out = run_cli(*args, cwd=project, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in out.stderr and "Traceback" not in out.stderr
    assert out.stderr.startswith("genverify list: error: ")


def test_the_report_groups_user_results_under_the_users_question(user_dir, tmp_path):
    from genverify.report.build import build_report

    write_module(user_dir, "usermod_report", USER_MODULE.replace("{rid}", "my-exponential-pdf"))
    registry.load_module("usermod_report")
    out = tmp_path / "build"
    build_report(out, results=[registry.get("my-exponential-pdf")], experiments=[], errata=False, latexmk=False,
                 show_progress=False, cache_dir=tmp_path / "cache")
    text = (out / "report.tex").read_text()
    section = text[text.index(r"\section{Question hw3-1: The exponential density}\label{sec:q-hw3-1}"):]
    section = section[:section.index(r"\section", 10)]
    assert r"rate $\lambda$" in section and r"\subsection{\texttt{my-exponential-pdf}}" in section
