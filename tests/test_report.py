"""`genverify report`: the derivation report is built from the registry, cached, compiled, and never half-written.

Speed: the experiments here are stubs (a tiny figure, a comparison table), and
so is the errata audit of the small builds (rows naming registry ids, in place of
:func:`genverify.claims.errata.audit_file`); results are real, and the full build
runs the real audit. A build with the quick preset takes minutes (NICE/VAE
training), far too long for a test; the stubs exercise the same code paths (figures, tables, numbers,
errata rows, caching, failure) in seconds. The one full build compiles every
registered result's derivation and check figures, so any text or formula that
would break LaTeX or overflow the page fails here.

Tests that need TeX (latexmk, pdftotext) skip without it, and fail instead when
the ``CI`` environment variable is true (``.ci/run``): a report that is never
compiled in CI is not tested. The stubs and small builds are in
``report_support.py``, shared with the HTML and browser tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_support import (
    COMPARISON,
    CRASH,
    STUB,
    _build,
    _stub_audit,
    _stub_run,
    _tiny_results,
    full_build,
    require_tex,
)

from genverify import registry
from genverify.claims import errata as claims_errata
from genverify.cli import main
from genverify.core import Experiment, ExperimentOutput
from genverify.report import latex as tex
from genverify.report import render_latex
from genverify.report.build import MARKER, ReportError, build_report
from genverify.report.compile import latex_errors, overfull_boxes
from genverify.report.questions import ERRATA, QUESTIONS, section_key

# ---------------------------------------------------------------- grouping and escaping


def test_questions_group_results_experiments_and_errata_rows():
    assert section_key("2b-iii") == "2b"
    assert section_key("2a") == "2a"
    assert section_key("3d") == "3"
    assert section_key("5c") == "5c"
    assert section_key("errata") == ERRATA
    assert section_key("1") is None and section_key("12") is None and section_key("7") is None
    keys = [q.key for q in QUESTIONS]
    assert keys == ["1a", "1b", "1c", "2a", "2b", "2c", "3", "4", "5a", "5b", "5c", "6", ERRATA]
    for r in registry.all_results():
        assert section_key(r.question) is not None, f"{r.id}: question {r.question!r} has no report section"
    for e in registry.all_experiments():
        assert section_key(e.question) is not None, f"experiment {e.id}: question {e.question!r} has no section"


def test_every_registered_question_has_a_text_and_a_report_section():
    by_key = {q.key: q for q in QUESTIONS}
    asked = [(f"result {r.id}", r.question) for r in registry.all_results()]
    asked += [(f"experiment {e.id}", e.question) for e in registry.all_experiments()]
    for what, question in asked:
        q = by_key.get(section_key(question))
        assert q is not None and q.key != ERRATA, f"{what}: question {question!r} has no report section"
        assert q.title.strip() and q.text.strip() and q.planned.strip(), f"{what}: question {q.key} has no text"


@pytest.mark.parametrize("text", ["100% of $5 & #1_a^b {x} ~ \\input{x}", "σ ≤ ∞ ± 0.1 ∫f ∩ ⊆ — “q”",
                                  "line\n\nbreak", "a--b", "\\\\", "日本"])
def test_escaped_text_has_no_active_latex_characters(text):
    out = tex.escape(text)
    # Remove what escape() may legitimately emit; nothing active may remain.
    rest = re.sub(r"\$\\?[A-Za-z]*[\^_]?\d?\$|\$\^\\circ\$|\\(textbackslash|textasciicircum|textasciitilde|"
                  r"textless|textgreater|textbar|ldots)\{\}|\\[{}$&#%_,]|-\{\}|\{[\[\]]\}|\\mbox\{-\}|\\,|``|''", "", out)
    assert not re.search(r"[\\{}$&#%^_~]", rest), (text, out, rest)
    assert "\n" not in out


def test_the_write_ups_latex_is_typeset_only_when_safe():
    assert tex.claim_math(r"\frac{\pi z^2}{4}") == r"\frac{\pi z^2}{4}"
    assert tex.claim_math(r"\cos^{-1}\left(\frac{1}{z}\right)") is not None
    for bad in [r"\input{/etc/passwd}", r"\def\x{1}", r"\frac{1}{2", r"\left( x", "x^2^3", "50%", r"\write18{ls}",
                r"a \\ b", "$x$", r"\catcode`\^=7"]:
        assert tex.claim_math(bad) is None, bad


def test_long_equations_are_broken_after_whole_terms():
    import sympy as sp

    x = sp.symbols("x1:13")
    lhs = sp.Symbol("S")
    body = tex.display(sp.Eq(lhs, sp.Add(*[xi**2 / (i + 2) for i, xi in enumerate(x)])))
    assert body.startswith(r"\begin{aligned}S &= ") and body.count(r"\\") >= 1
    # every line but the first continues the sum with its sign
    for line in body.split(r" \\ ")[1:]:
        assert re.match(r"&\\quad [+-] ", line), line
    assert tex.display(sp.Eq(lhs, x[0] + x[1])) == "S = x_{1} + x_{2}"
    assert tex.display(x[0], boxed=True) == r"\boxed{x_{1}}"


def test_log_excerpt_shows_the_error_lines():
    log = "This is pdfTeX\n(./report.tex\n! Undefined control sequence.\nl.42 \\nope\n\nmore\nmore\nmore\nmore\n" \
          "Overfull \\hbox (12.5pt too wide) in paragraph at lines 3--4\n"
    excerpt = latex_errors(log)
    assert "! Undefined control sequence." in excerpt and "l.42 \\nope" in excerpt
    assert "This is pdfTeX" not in excerpt
    assert overfull_boxes(log) == [12.5]


# ---------------------------------------------------------------- the .tex of a tiny build


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "build"
    summary = _build(out)
    return out, summary, (out / "report.tex").read_text()


def test_tiny_build_writes_a_complete_tex(tiny):
    out, summary, text = tiny
    assert summary.tex_only and summary.pdf is None and (out / MARKER).exists()
    assert text.lstrip().startswith(r"\documentclass") and text.rstrip().endswith(r"\end{document}")
    # environments balance
    for env in set(re.findall(r"\\begin\{(\w+\*?)\}", text)):
        assert text.count(rf"\begin{{{env}}}") == text.count(rf"\end{{{env}}}"), env
    # one section per homework question, in the homework's order, then the appendix
    labels = re.findall(r"\\label\{sec:([^}]+)\}", text)
    assert labels == [f"q-{q.key}" for q in QUESTIONS if q.key != ERRATA] + ["errata", "appendix"]
    # each result: statement, derivation steps, boxed result, evidence table
    for r in _tiny_results():
        start = text.index(rf"\subsection{{\texttt{{{r.id}}}}}")
        part = text[start:text.index(r"\subsection", start + 10)]
        assert r"\textbf{Derivation}" in part and r"\boxed{" in part and r"\verified" in part
        assert part.count(r"\item ") == len(r.derivation().steps)
        assert part.count(r"\verified") == len(r.checks)


def test_tiny_build_places_everything_in_its_question(tiny):
    out, _, text = tiny
    sections = dict(re.findall(r"\\label\{sec:(q-[^}]+|errata)\}(.*?)(?=\\section|\\appendix)", text, re.S))
    assert r"\texttt{kl-vae}" in sections["q-1c"] and r"\texttt{lognormal-pdf}" in sections["q-5b"]
    # the stub experiment (question 4): figure copied into the build, table, numbers, escaped summary
    q4 = sections["q-4"]
    fig = re.search(r"\\fitgraphic\{([^}]+)\}", q4).group(1)
    assert (out / fig).is_file() and fig.endswith(".pdf")
    assert "Comparison of NICE, VAE and EM" in q4 and "blurry but well-formed digits" in q4
    assert r"100\% made up, \#1" in q4 and r"cost \$0" in q4 and "nice\\_bits\\_per\\_dim" in q4
    # errata rows naming a registry id sit beside that result; others in their question; all in errata
    q5b = sections["q-5b"]
    assert q5b.index(r"\erratabox{badred}") > q5b.index(r"\texttt{lognormal-pdf}")
    assert r"\vincorrect" in q5b and r"\erratabox{okgreen}" in sections["q-1c"]
    assert "The write-up's answers to question 2a" in sections["q-2a"]
    assert sections["errata"].count(r"\vincorrect") == 1 and r"\vunchecked" in sections["errata"]
    # an unsafe claim is shown verbatim, never executed
    assert r"\input{/etc/passwd}" not in text and r"\textbackslash{}input" in text
    # questions with nothing registered say what they will hold
    assert "Nothing is registered for this question yet" in sections["q-2b"]
    assert "Nothing is registered for this question yet" not in sections["q-4"]


def test_tiny_build_records_environment_and_timings(tiny):
    out, summary, text = tiny
    appendix = text[text.index(r"\label{sec:appendix}"):]
    for item in ("sympy", "numpy", "commit", "device", "preset", "genverify report --preset quick --fresh"):
        assert item in appendix, item
    assert "result kl-vae: derivation and 4 checks" in appendix
    assert "experiment stub-comparison (quick)" in appendix
    data = json.loads((out / "report.json").read_text())
    assert data["results"] == ["kl-vae", "lognormal-pdf"] and data["checks_passed"] == data["checks_total"] > 0
    assert {p["name"].split(":")[0] for p in data["parts"]} >= {"result kl-vae", "result lognormal-pdf"}


def test_an_unregistered_question_gets_its_own_section(tmp_path):
    odd = Experiment(id="odd", title="Odd one", question="7", run=lambda c: ExperimentOutput(summary="odd"))
    _build(tmp_path / "b", results=[], experiments=[odd])
    text = (tmp_path / "b" / "report.tex").read_text()
    assert r"\section{Question 7: Question 7}" in text and "Odd one" in text


# ---------------------------------------------------------------- cache


def test_second_build_reuses_the_cache_and_fresh_recomputes(tmp_path):
    out = tmp_path / "build"
    before, audits = _stub_run.calls, _stub_audit.calls
    first = _build(out)
    assert _stub_run.calls == before + 1 and not any(p.cached for p in first.parts)
    assert _stub_audit.calls == audits + 1
    second = _build(out)
    assert _stub_run.calls == before + 1 and _stub_audit.calls == audits + 1
    assert all(p.cached for p in second.parts if p.name.startswith(("result", "experiment", "errata")))
    _build(out, fresh=True)
    assert _stub_run.calls == before + 2 and _stub_audit.calls == audits + 2
    _build(out, seed=1)  # another configuration is another cache entry
    assert _stub_run.calls == before + 3 and _stub_audit.calls == audits + 3
    data = json.loads((out / "report.json").read_text())
    assert data["checks_passed"] == data["checks_total"]


def test_cache_keys_follow_the_source_an_experiment_runs(tmp_path, monkeypatch):
    import genverify
    from genverify.report import cache as rcache

    checker = genverify.check.__module__  # the claim checker (genverify.check, imported lazily by genverify)
    # the errata audit's key covers the claim checker and its parser
    assert {checker, "genverify.claims.parse"} <= set(rcache.module_closure(["genverify.claims.errata"]))
    # ... but a parent package's lazy imports do not: importing genverify runs only its top level
    assert checker not in rcache.module_closure(["genverify.io"])
    # editing the experiment's module changes its key; another configuration is another key
    mod = tmp_path / "gv_plugin_exp.py"
    mod.write_text("def run(config):\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    plugin = importlib.import_module("gv_plugin_exp")
    exp = Experiment(id="plugin", title="Plugin", question="3", run=plugin.run)
    key = rcache.experiment_key(exp, {"preset": "quick"})
    assert rcache.experiment_key(exp, {"preset": "quick"}) == key
    assert rcache.experiment_key(exp, {"preset": "homework"}) != key
    mod.write_text("def run(config):\n    return 2  # changed\n")
    assert rcache.experiment_key(exp, {"preset": "quick"}) != key


def test_a_results_key_covers_the_code_that_typesets_it_but_not_the_other_results():
    from genverify.report import cache as rcache
    from genverify.report import result_part

    closure = set(rcache.module_closure([result_part.__name__]))
    assert {"genverify.report.latex", "genverify.verification"} <= closure
    # no registry, no claims: editing one result's module recomputes that result only
    assert not {m for m in closure if m.startswith(("genverify.registry", "genverify.results", "genverify.claims"))}
    lognormal, kl = registry.get("lognormal-pdf"), registry.get("kl-vae")
    assert lognormal.derive.__module__ in rcache.module_closure([lognormal.derive.__module__])
    assert kl.derive.__module__ not in rcache.module_closure([lognormal.derive.__module__])


def test_the_errata_audit_is_keyed_by_the_write_up_the_claims_code_and_the_registry(tmp_path):
    from genverify.report import errata_part

    claims = tmp_path / "claims.yaml"
    claims.write_text("title: T\nentries: []\n")
    key = errata_part.key(claims, 0, "registry-1")
    assert errata_part.key(claims, 0, "registry-1") == key
    assert errata_part.key(claims, 0, "registry-2") != key  # a result changed
    assert errata_part.key(claims, 1, "registry-1") != key
    assert errata_part.key(None, 0, "registry-1") != key  # the packaged write-up
    claims.write_text("title: T\nentries: []  # edited\n")
    assert errata_part.key(claims, 0, "registry-1") != key


# ---------------------------------------------------------------- failures keep the last good report


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_failures_leave_the_previous_report_intact(tmp_path):
    out = tmp_path / "build"
    _build(out, experiments=[STUB])
    good = _snapshot(out)
    # a crashing experiment
    with pytest.raises(ReportError, match="crash.*failed.*previous report.*unchanged"):
        _build(out, experiments=[STUB, CRASH])
    assert _snapshot(out) == good
    # a broken template (Jinja syntax error)
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "report.tex.j2").write_text("\\documentclass{article}<% if %>")
    with pytest.raises(ReportError, match="template is broken"):
        _build(out, experiments=[STUB], template_dir=broken)
    assert _snapshot(out) == good
    # --keep-going builds anyway and shows the failure
    summary = _build(out, experiments=[STUB, CRASH], keep_going=True)
    assert summary.experiments_failed == ["crash"]
    text = (out / "report.tex").read_text()
    assert "This experiment failed" in text and "crashed on purpose" in text


def _broken_audit(path=None, *, seed=0, progress=None):
    raise ValueError("claims file: not valid YAML")


def test_a_failing_audit_stops_the_build_and_the_cli_names_the_flag(tmp_path, monkeypatch, capsys):
    out = tmp_path / "build"
    _build(out)
    good = _snapshot(out)
    monkeypatch.setattr(claims_errata, "audit_file", _broken_audit)
    with pytest.raises(ReportError, match="errata audit failed.*keep_going") as exc:
        build_report(out, results=_tiny_results(), experiments=[STUB], latexmk=False, show_progress=False,
                     fresh=True)
    assert "not valid YAML" in str(exc.value) and _snapshot(out) == good
    # the CLI says it with its flags
    monkeypatch.setattr(registry, "all_results", _tiny_results)
    monkeypatch.setattr(registry, "all_experiments", lambda: [STUB])
    assert main(["report", "--out", str(out), "--tex-only", "--fresh"]) == 1
    err = capsys.readouterr().err
    assert "--keep-going" in err and "keep_going" not in err and _snapshot(out) == good
    # ... and with --keep-going the report shows the failure
    assert main(["report", "--out", str(out), "--tex-only", "--fresh", "--keep-going"]) == 1
    text = (out / "report.tex").read_text()
    assert "The audit failed" in text and "not valid YAML" in text


def test_an_interrupted_experiment_resumes_from_its_checkpoint(tmp_path):
    seen = []

    def flaky(config):
        ckpt = config.out_dir / "checkpoint.txt"
        seen.append(ckpt.exists())
        if not ckpt.exists():
            ckpt.write_text("epoch 3")
            raise RuntimeError("killed after epoch 3")
        return ExperimentOutput(summary=f"resumed from {ckpt.read_text()}")

    exp = Experiment(id="flaky", title="Flaky", question="4", run=flaky)
    with pytest.raises(ReportError):
        _build(tmp_path / "b", results=[], experiments=[exp])
    _build(tmp_path / "b", results=[], experiments=[exp])
    assert seen == [False, True]
    assert "resumed from epoch 3" in (tmp_path / "b" / "report.tex").read_text()
    with pytest.raises(ReportError):  # --fresh starts over (and so fails again)
        _build(tmp_path / "b", results=[], experiments=[exp], fresh=True)
    assert seen == [False, True, False]


def test_a_directory_genverify_did_not_build_is_never_replaced(tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="did not build"):
        _build(mine)
    assert (mine / "thesis.tex").read_text() == "precious"


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["report", "--out", str(tmp_path / "b"), "--data-dir", str(tmp_path / "missing")]) == 2
    assert "--data-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["report", "--preset", "huge"])
    assert exc.value.code == 2


def test_cli_without_tex_writes_the_tex_and_says_how_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry, "all_results", _tiny_results)
    monkeypatch.setattr(registry, "all_experiments", lambda: [STUB])
    monkeypatch.setattr(claims_errata, "audit_file", _stub_audit)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["report", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "report.tex" in out and "apt-get install texlive-latex-base" in out
    assert (tmp_path / "b" / "report.tex").is_file() and not (tmp_path / "b" / "report.pdf").exists()
    assert (tmp_path / "b" / "report.html").is_file() and "report.html" in out  # what a machine without TeX reads


# ---------------------------------------------------------------- with TeX


def test_latex_error_shows_the_log_and_keeps_the_previous_pdf(tmp_path):
    require_tex()
    out = tmp_path / "build"
    _build(out, results=[registry.get("kl-vae")], experiments=[STUB], latexmk=True)
    good = _snapshot(out)
    assert "report.pdf" in good
    broken = tmp_path / "tpl"
    broken.mkdir()
    src = (render_latex.TEMPLATE_DIR / render_latex.TEMPLATE_NAME).read_text()
    (broken / render_latex.TEMPLATE_NAME).write_text(src.replace(r"\maketitle", r"\maketitle\thisCommandIsUndefined"))
    with pytest.raises(ReportError) as exc:
        _build(out, results=[registry.get("kl-vae")], experiments=[STUB], latexmk=True, template_dir=broken)
    msg = str(exc.value)
    assert "Undefined control sequence" in msg and "thisCommandIsUndefined" in msg
    assert "previous report" in msg and "unchanged" in msg
    assert _snapshot(out) == good
    assert (tmp_path / ".genverify-cache" / "failed-build" / "report.log").is_file()


def test_escaped_text_compiles(tmp_path):
    """Every character class the registry, the experiments or the write-up may emit compiles as text."""
    require_tex()
    import random

    rng = random.Random(7)
    alphabet = list("\\{}$&#%^_~<>|\"'`-.,;:!?()[]@*/+= \t\nabcXYZ019") + list("±≤≥≠∞∫∑∩∪⊆∈σμπα—–“”…²₁é日") + \
        ["\u00a0", "\u200b", "\x07"]
    strings = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(300)]
    body = "\n\n".join(tex.escape(s) for s in strings)
    table = "\n".join(rf"{tex.escape(a)} & {tex.breakable(tex.escape(b))} \\" for a, b in zip(strings, strings[1:]))
    doc = (r"\documentclass{article}\usepackage[T1]{fontenc}\usepackage[utf8]{inputenc}\usepackage{lmodern}"
           r"\usepackage{amssymb,array,longtable}\begin{document}" + body +
           r"\begin{longtable}{p{5cm}p{5cm}}" + table + r"\end{longtable}\end{document}")
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, latex_errors((tmp_path / "t.log").read_text(errors="replace"))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """Every registered result's derivation, the real errata audit, stubs for the trained models.

    The derivations are real (their LaTeX is what can break or overflow); the checks' run is
    replaced by a record with a typical figure, since running all of them takes about a minute
    on 2 cores and the registry's tests run them anyway (the tiny build above runs real checks).
    The build is shared with the browser tests (``report_support.full_build``).
    """
    require_tex()
    out, summary = full_build(tmp_path_factory)
    text = subprocess.run(["pdftotext", "-layout", str(out / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout.replace("\u2019", "'")
    return out, summary, text


def test_full_report_pdf_has_every_section_table_and_verdict(full):
    out, summary, text = full
    assert summary.pdf == out / "report.pdf" and summary.checks_failed == 0
    flat = re.sub(r"\s+", " ", text)
    for q in QUESTIONS:
        heading = "Errata of the write-up" if q.key == ERRATA else f"Question {q.key}: {q.title}"
        assert heading in flat, heading
    for r in registry.all_results():
        assert r.id in flat, r.id
    assert "Environment, run times and how to reproduce" in flat
    # the comparison table, row by row
    assert re.search(r"model\s+test NLL \(nats\)\s+train time \(s\)\s+samples", text)
    for row in COMPARISON.rows:
        assert re.search(rf"{re.escape(row[0])}\s+{row[1]:g}\s+{row[2]:g}\s+{re.escape(row[3])}", text), row
    # the errata verdicts: the write-up's 5b density is wrong, 5a right
    assert re.search(r"^\s*5b\s+.*\bincorrect\b", text, re.M)
    assert re.search(r"^\s*5a\s+.*\bcorrect\b", text, re.M)
    assert "not checkable" in flat
    # ... and each verdict also sits beside the verified result it is about
    assert "Errata, question 5b: the write-up's answer is incorrect" in flat
    assert flat.index("Errata, question 5b") > flat.index("lognormal-pdf Statement")


def test_full_report_fits_the_page(full):
    out, _, _ = full
    log = (out / "report.log").read_text(errors="replace")
    too_wide = [w for w in overfull_boxes(log) if w > 1.0]
    assert not too_wide, f"lines overflow the page by {too_wide} pt; see {out / 'report.log'}"
    assert "There were undefined references" not in log
