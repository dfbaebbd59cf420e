"""`genverify report` writes report.html: the PDF's content on one self-contained page, maths as MathML.

What a browser shows is tested in ``test_browser.py``; here the page is read as HTML:
every section, derivation step, boxed result, evidence table, figure, experiment table,
errata row and the appendix are there; nothing is loaded from elsewhere; the maths is
MathML converted from the same LaTeX the PDF typesets (``genverify.report.mathml``);
the build is atomic and ``--keep-going`` shows a failure in the page as in the PDF.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_support import CRASH, STUB, _build, _stub_audit, _tiny_results, full_build, require_tex

from genverify import registry
from genverify.claims import errata as claims_errata
from genverify.cli import main
from genverify.core import Experiment, ExperimentOutput, ParameterError
from genverify.report import latex as tex
from genverify.report.build import ReportError, resolve_formats
from genverify.report.mathml import MathMLError, to_mathml
from genverify.report.questions import ERRATA, QUESTIONS

RAW_LATEX = re.compile(r"\\(frac|int|begin|end|left|right|sqrt|sum|prod|text|mathbb|log)\b")


class _Page(HTMLParser):
    """The parts of a page the tests read: its text (outside <math>), headings, tags, images, links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.headings, self.tags, self.images, self.links = [], [], [], [], []
        self._stack, self._heading = [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in ("br", "img", "meta", "mspace", "link", "hr"):
            if tag == "img":
                self.images.append(attrs)
            if tag == "link":
                self.links.append(attrs)
            return
        self._stack.append(tag)
        if tag in ("h1", "h2", "h3", "h4"):
            self._heading = []

    def handle_endtag(self, tag):
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass
        if tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            self.headings.append(re.sub(r"\s+", " ", "".join(self._heading)).strip())
            self._heading = None

    def handle_data(self, data):
        if self._heading is not None:
            self._heading.append(data)
        if not {"math", "style", "title"} & set(self._stack):
            self.text.append(data)

    @property
    def flat(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text))


def _page(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-html") / "build"
    summary = _build(out, experiments=[STUB, CRASH], keep_going=True, formats="html")
    html = (out / "report.html").read_text(encoding="utf-8")
    return out, summary, html, _page(html)


# ---------------------------------------------------------------- MathML


def test_mathml_is_well_formed_and_escapes_what_the_latex_holds():
    out = to_mathml(r"\text{a<b \& c} + \frac{x}{2}", display=True)
    root = ET.fromstring(out)  # well-formed XML: every < and & escaped
    assert root.tag.endswith("math") and root.get("display") == "block"
    assert "a<b & c" in "".join(root.itertext())
    assert "<b" not in out.replace("<mrow", "").replace("<math", "").split("alttext")[0]


def test_mathml_puts_latex_escaped_symbol_names_back_as_text():
    latex = tex.math(__import__("sympy").Symbol("P(x[d] | p[d])"))
    assert r"\textbar" in latex
    text = "".join(ET.fromstring(to_mathml(latex)).itertext())
    assert "P(x[d] | p[d])" in text and "textbar" not in text


@pytest.mark.parametrize(("latex", "bars"), [(r"D_{KL(P||Q)} = \log{\left(4 \right)}", ["\u2016"]),
                                             (r"|x||y|", ["|"] * 4), (r"|x| + |y|", ["|"] * 4)])
def test_a_double_bar_is_one_symbol_but_two_absolute_values_stay_apart(latex, bars):
    root = ET.fromstring(to_mathml(latex))
    got = [e.text for e in root.iter() if e.tag.endswith("mo") and e.text in ("|", "\u2016")]
    assert got == bars


def test_mathml_lays_out_aligned_lines_as_a_table():
    out = ET.fromstring(to_mathml(r"\begin{aligned}S &= a + b \\ &\quad + c\end{aligned}", display=True))
    rows = out.findall(".//{*}mtr")
    assert len(rows) == 2 and all(len(r.findall("{*}mtd")) == 2 for r in rows)
    assert "&" not in "".join(out.itertext())


@pytest.mark.parametrize("bad", [r"\input{/etc/passwd}", r"\frac{1}{2", r"\left( x", r"\begin{cases} x", ""])
def test_mathml_refuses_what_it_cannot_convert(bad):
    with pytest.raises(MathMLError):
        to_mathml(bad)


def test_scripts_of_scripts_stop_at_the_scriptscript_size():
    root = ET.fromstring(to_mathml(r"e^{- \frac{\left(- \mu + x\right)^{2}}{2 \sigma^{2}}}", display=True))
    assert {el.get("scriptlevel") for el in root.iter() if el.get("scriptlevel")} <= {"2"}
    assert any(el.get("scriptlevel") == "2" for el in root.iter())


def test_every_registered_derivation_converts_to_mathml():
    """No formula of the registry falls back to LaTeX source in the HTML report."""
    for result in registry.all_results():
        deriv = result.derivation()
        for expr in [s.expr for s in deriv.steps] + [deriv.result]:
            for latex in (tex.math(expr), tex.display(expr)):
                ET.fromstring(to_mathml(latex, display=True))
        for p in result.params:
            to_mathml(tex.math(p.symbol))
            to_mathml(tex.math(p.domain))


def test_the_question_texts_and_the_packaged_write_ups_claims_convert():
    from genverify.report.render_html import text_with_math

    for q in QUESTIONS:
        assert not RAW_LATEX.search(re.sub(r"<math.*?</math>", "", str(text_with_math(q.text)), flags=re.S)), q.key
    from importlib import resources

    import yaml

    data = yaml.safe_load((resources.files("genverify.claims") / "homework2.yaml").read_text())
    claims = [e.get(k) for e in data["entries"] for k in ("claim", "where") if e.get(k)]
    assert claims
    for c in claims:
        ET.fromstring(to_mathml(str(c), displaystyle=True))


@given(st.text(alphabet=st.sampled_from(list("\\{}$&#%^_~<>|[]-'`,!? abcXYZ019") + list("±≤≥∞∫σμπ—–“”…²")),
               max_size=30))
def test_unescape_undoes_escape(text):
    assert tex.unescape(tex.escape(text)) == text


# ---------------------------------------------------------------- the page of a small build


def test_html_is_one_self_contained_page(tiny):
    out, summary, html, page = tiny
    assert summary.html == out / "report.html" and summary.pdf is None and summary.formats == ("html",)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    # nothing from elsewhere: no script, stylesheet link, web font, remote image or CSS import
    assert not page.links and "<script" not in html.lower() and "@import" not in html and "@font-face" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert not re.search(r"url\(", html)
    assert page.images and all(img["src"].startswith("data:image/") for img in page.images)
    assert json.loads((out / "report.json").read_text())["formats"] == ["html"]
    umask = os.umask(0)
    os.umask(umask)  # the page is readable as any file the user writes (a web server may serve it)
    assert (out / "report.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_html_has_every_section_result_and_experiment(tiny):
    out, _, html, page = tiny
    expected = [f"Question {q.key}: {q.title}" for q in QUESTIONS if q.key != ERRATA] + ["Errata of the write-up"]
    h2 = [h for h in page.headings if h in expected or h.startswith("Environment, ")]
    assert h2 == expected + ["Environment, run times and how to reproduce"]
    for r in _tiny_results():
        block = html[html.index(f'id="r-{r.id}"'):]
        block = block[:block.index("</article>")]
        steps = re.search(r'<ol class="steps">(.*?)</ol>', block, re.S).group(1)
        assert steps.count("<li>") == len(r.derivation().steps) and steps.count('display="block"') >= len(
            r.derivation().steps)
        assert '<div class="boxed"><math' in block
        assert block.count('class="status-ok">verified') == len(r.checks)
    flat = page.flat
    # the stub experiment: figure (a PNG), its caption and table, numbers, summary; text is unescaped
    assert "Training loss of the stub (100% made up, #1)." in flat
    assert "A stub run: NICE vs VAE & EM, 50% of the data, cost $0 (escaping test)." in flat
    assert "blurry but well-formed digits" in flat and "nice_bits_per_dim" in flat and "1234.5" in flat
    png = base64.b64decode(page.images[0]["src"].split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int(page.images[0]["width"]) > 0
    # the failed experiment (--keep-going) shows its traceback, as in the PDF
    assert "Experiment(s) failed: crash." in flat and "This experiment failed" in flat
    assert "the stub experiment crashed on purpose" in html
    assert "Environment" in page.headings and "How to reproduce" in page.headings


def test_html_errata_show_verdicts_diagnoses_and_steps(tiny):
    _, _, html, page = tiny
    flat = page.flat
    assert "Of the write-up's 3 transcribed formulas" in flat
    assert "Errata, question 5b: the write-up's answer is incorrect" in flat
    assert flat.index("Errata, question 5b") > flat.index("lognormal-pdf")
    assert "at z = 7: claimed 0.06, verified 0.02" in flat
    audit = _stub_audit()
    if getattr(audit.rows[0], "steps", None):
        assert "the 1/z moved under the square root" in flat
        assert "the error enters at line 2" in flat and 'class="rule first-error"' in html
    # the write-up's formulas are MathML; one that is not safe LaTeX is shown as code, escaped
    assert '<code class="latex-source">\\input{/etc/passwd}</code>' in html
    assert not RAW_LATEX.search(flat), RAW_LATEX.search(flat)


def test_html_maths_is_mathml_and_no_latex_is_left_as_text(tiny):
    _, _, html, page = tiny
    maths = re.findall(r"<math\b.*?</math>", html, re.S)
    assert len(maths) > 20
    for m in maths:
        ET.fromstring(m)
    assert not RAW_LATEX.search(page.flat)


def test_a_missing_figure_is_said_in_the_page(tmp_path):
    def no_file(config):
        return ExperimentOutput(figures={"ghost": "A figure never written."}, summary="ghost")

    exp = Experiment(id="ghost", title="Ghost", question="4", run=no_file)
    _build(tmp_path / "b", results=[], experiments=[exp], formats="html")
    html = (tmp_path / "b" / "report.html").read_text()
    assert "was listed by the experiment but no file was written" in html and "<img" not in html


# ---------------------------------------------------------------- formats, failures, CLI


def test_formats_default_to_what_the_machine_can_build():
    assert resolve_formats(None, "/usr/bin/latexmk") == ("pdf", "html")
    assert resolve_formats(None, None) == ("html",)
    assert resolve_formats("html, pdf", "/usr/bin/latexmk") == ("pdf", "html")
    assert resolve_formats(["HTML"], None) == ("html",)
    with pytest.raises(ReportError, match="needs TeX.*apt-get install"):
        resolve_formats("pdf", None)
    with pytest.raises(ParameterError, match="formats must list"):
        resolve_formats("pdf,docx", "/usr/bin/latexmk")
    with pytest.raises(ParameterError, match="includes pdf, which latexmk turns off"):
        resolve_formats("pdf", None, pdf_allowed=False)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_broken_html_template_keeps_the_previous_report(tmp_path):
    out = tmp_path / "build"
    _build(out, formats="html")
    good = _snapshot(out)
    assert "report.html" in good
    broken = tmp_path / "tpl"
    broken.mkdir()
    (broken / "report.html.j2").write_text("<html>{% if %}")
    with pytest.raises(ReportError, match="HTML report template is broken"):
        _build(out, formats="html", template_dir=broken)
    assert _snapshot(out) == good
    with pytest.raises(ReportError, match="crash.*failed"):  # a failing experiment, without --keep-going
        _build(out, experiments=[STUB, CRASH], formats="html")
    assert _snapshot(out) == good


def test_cli_format_flag_and_the_paths_it_prints(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry, "all_results", _tiny_results)
    monkeypatch.setattr(registry, "all_experiments", lambda: [STUB])
    monkeypatch.setattr(claims_errata, "audit_file", _stub_audit)
    out = tmp_path / "b"
    assert main(["report", "--out", str(out), "--format", "html"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].strip() == str(out / "report.html") and lines[-1].strip().startswith(str(out / "report.tex"))
    assert "wrote" in lines[-3] and not (out / "report.pdf").exists()
    assert main(["report", "--out", str(out), "--format", "docx"]) == 2
    assert "--format must list" in capsys.readouterr().err
    assert main(["report", "--out", str(out), "--format", "pdf", "--tex-only"]) == 2
    err = capsys.readouterr().err
    assert "--format includes pdf, which --tex-only turns off" in err


def test_cli_asked_for_a_pdf_without_tex_fails_and_keeps_the_report(tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(registry, "all_results", _tiny_results)
    monkeypatch.setattr(registry, "all_experiments", lambda: [STUB])
    monkeypatch.setattr(claims_errata, "audit_file", _stub_audit)
    out = tmp_path / "b"
    _build(out, formats="html")
    good = _snapshot(out)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["report", "--out", str(out), "--format", "pdf"]) == 1
    err = capsys.readouterr().err
    assert "needs TeX" in err and "--format" in err and _snapshot(out) == good


# ---------------------------------------------------------------- with TeX: both formats, the same content


def test_both_formats_hold_the_same_sections_and_results(tmp_path_factory):
    require_tex()
    out, summary = full_build(tmp_path_factory)  # every result, the stub experiments, the real audit
    assert summary.formats == ("pdf", "html") and summary.pdf.is_file() and summary.html.is_file()
    assert summary.written == [out / "report.pdf", out / "report.html", out / "report.tex"]
    pdf = re.sub(r"\s+", " ", subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True,
                                             text=True, check=True).stdout).replace("\u2019", "'")
    page = _page((out / "report.html").read_text())
    for q in QUESTIONS:
        heading = "Errata of the write-up" if q.key == ERRATA else f"Question {q.key}: {q.title}"
        assert heading in pdf and heading in page.headings, heading
    for needle in ("kl-vae", "lognormal-pdf", "Stub: NICE vs VAE vs EM", "blurry but well-formed digits",
                   "This experiment failed", "Errata, question 5b", "How to reproduce"):
        assert needle in pdf and needle in page.flat, needle


def test_steps_and_diagnoses_compile_in_the_pdf(tmp_path_factory):
    require_tex()
    out, _ = full_build(tmp_path_factory)  # the real audit: 5b's steps, with the line where it goes wrong
    text = subprocess.run(["pdftotext", str(out / "report.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Diagnosis:" in text and "line by line" in text
