"""What the report's tests share: stub experiments and audits, small builds, and the tools they need.

TeX (latexmk, pdflatex, pdftotext) and a browser (Chromium with chromedriver, driven by
selenium) are system tools a test may need. Outside CI a test without them skips and
says what to install (`make test` installs them where it can: scripts/system-deps.sh);
under CI (the ``CI`` environment variable is "true", "1" or "yes", as `.ci/run` sets it)
it fails, so a report that is never compiled or opened in CI is never untested.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from genverify import registry
from genverify.claims import errata as claims_errata
from genverify.claims import verdict as claims_verdict
from genverify.claims.verdict import Audit, ErrataRow, Verdict
from genverify.core import Experiment, ExperimentOutput, Table
from genverify.report.build import build_report

# ---------------------------------------------------------------- system tools


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set to true, 1 or yes): missing tools fail instead of skipping."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(available: bool, what: str, install: str) -> None:
    """Skip (outside CI) or fail (in CI) unless ``available``."""
    if available:
        return
    msg = f"{what} not installed ({install}; `make test` installs it where it can)"
    if in_ci():
        pytest.fail(f"CI must run this test: {msg}")
    pytest.skip(msg)


HAS_TEX = bool(shutil.which("latexmk") and shutil.which("pdflatex") and shutil.which("pdftotext"))


def require_tex() -> None:
    require(HAS_TEX, "latexmk/pdflatex/pdftotext",
            "apt-get install texlive-latex-base texlive-latex-recommended latexmk lmodern poppler-utils")


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Chromium's flags for a test: headless, no sandbox (root in CI), and none of its own network traffic.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage", "--hide-scrollbars")


def require_browser() -> None:
    try:
        import selenium  # noqa: F401 - only whether it is installed
        has_selenium = True
    except ImportError:
        has_selenium = False
    require(bool(CHROMIUM and CHROMEDRIVER), "chromium/chromedriver", "apt-get install chromium chromium-driver")
    require(has_selenium, "selenium", "pip install -e '.[dev]'")


@contextmanager
def chromium(width: int = 1280, height: int = 1000):
    """A headless Chromium (selenium WebDriver) with a fresh profile, the window ``width`` x ``height``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gv-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # The driver's path is given, so selenium never looks for (or downloads) one of its own.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- stubs and small builds





COMPARISON = Table(columns=["model", "test NLL (nats)", "train time (s)", "samples"],
                   rows=[["NICE", 1234.5, 61.0, "sharp strokes, broken digits"],
                         ["VAE", 98.7, 45.2, "blurry but well-formed digits"],
                         ["EM (K = 20)", 160.1, 3.4, "prototype digits with pixel noise"]],
                   caption="Comparison of NICE, VAE and EM on MNIST (stub numbers)")


def _stub_run(config):
    from genverify.experiments import plotting

    _stub_run.calls += 1
    fig, ax = plotting.new_figure(figsize=(4, 2.5))
    ax.plot([0, 1, 2, 3], [3, 1, 2, 0], label="loss")
    ax.set_xlabel("epoch")
    ax.legend()
    plotting.save(fig, config.out_dir / "samples" / "loss_curve")
    return ExperimentOutput(figures={"samples/loss_curve": "Training loss of the stub (100% made up, #1)."},
                            tables={"comparison": COMPARISON},
                            numbers={"nice_bits_per_dim": 4.25, "epochs": 2, "preset": config.preset,
                                     "seed": config.seed},
                            summary="A stub run: NICE vs VAE & EM, 50% of the data, cost $0 (escaping test).")


_stub_run.calls = 0
STUB = Experiment(id="stub-comparison", title="Stub: NICE vs VAE vs EM", question="4", run=_stub_run)


def _stub_audit(path=None, *, seed=0, progress=None):
    """Stands in for :func:`genverify.claims.errata.audit_file`: three verdicts, one about an unknown id."""
    _stub_audit.calls += 1
    rows = [ErrataRow("5b", "", "lognormal-pdf", r"\frac{1}{\sigma\sqrt{2\pi z}} e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}}",
                      "", Verdict.INCORRECT, "at z = 7: claimed 0.06, verified 0.02"),
            ErrataRow("1c", "KL term", "kl-vae", r"\frac{1}{2}(\mu^2 + \sigma^2 - 1 - \log \sigma^2)", "",
                      Verdict.CORRECT, "proved symbolically"),
            ErrataRow("2a-i", "", "bernoulli-likelihood-stub", r"\input{/etc/passwd}", "", Verdict.NOT_CHECKABLE,
                      "result not registered")]
    rows[0].diagnosis = "the claim is the result times sqrt(z): the 1/z moved under the square root"
    if hasattr(claims_verdict, "StepRow"):  # a step-by-step audit of the write-up's derivation
        step, status = claims_verdict.StepRow, claims_verdict.StepStatus
        rows[0].steps = [
            step(1, "Transformation", r"f_Z(z) = f_Y(\ln z) \left|\frac{d}{dz} \ln z\right|", "start", status.START),
            step(2, "Simplify", r"\frac{1}{\sigma\sqrt{2\pi z}} e^{-\frac{(\ln z-\mu)^2}{2\sigma^2}}",
                 "equal to line 1", status.FAILS, "at z = 7: 0.06 vs 0.02", "a factor sqrt(z)",
                 "differs from the verified result", "exp(-(log(z) - mu)**2/(2*sigma**2))/(sqrt(2*pi)*sigma*z)")]
        rows[0].first_error = 2
    return Audit(title="Stub errata", source="stub.yaml", rows=rows)


_stub_audit.calls = 0


def _crash(config):
    raise RuntimeError("the stub experiment crashed on purpose")


CRASH = Experiment(id="crash", title="Crashing stub", question="3", run=_crash)


def _tiny_results():
    return [registry.get("kl-vae"), registry.get("lognormal-pdf")]


def _build(out: Path, **kw):
    """A small build: two real results, the stub experiment, the stub audit, no LaTeX."""
    kw.setdefault("results", _tiny_results())
    kw.setdefault("experiments", [STUB])
    kw.setdefault("latexmk", False)
    kw.setdefault("show_progress", False)
    kw.setdefault("jobs", 1)  # in this process: the stubs count their calls here
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(claims_errata, "audit_file", _stub_audit)
        return build_report(out, **kw)


def _quick_check(result, chk, base_seed=0):
    """Stands in for running a check: CI runs every check in the registry's own tests already."""
    from genverify.verification import CheckRecord

    return CheckRecord(result.id, chk.name, chk.kind, True, "max rel err 1.2e-15 (2000 pts); 0.63 ± 0.01 vs "
                       "0.64 (1.0 SE); KS D=0.003, p=0.3; ∫f = 1.0000000000", "", 0.0, {})




# ---------------------------------------------------------------- computed once per session


def once_per_session(tmp_path_factory, name: str, compute):
    """``compute(folder)``'s value (pickled), computed once per test session and shared by the xdist workers.

    A file lock in the session's folder: the first worker to ask computes, the others wait and
    read its value back. For what several test modules read and nothing changes (the full report
    build, the audit of the packaged write-up); ``compute`` receives the folder to write into.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, shared by the workers
    root = base / f"shared-{name}"
    root.mkdir(exist_ok=True)
    done = root / "value.pickle"
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            value = pickle.dumps(compute(root))
            partial = root / "value.pickle.part"
            partial.write_bytes(value)
            partial.replace(done)
    return pickle.loads(done.read_bytes())


def homework_audit(tmp_path_factory):
    """The real audit of the packaged write-up (:func:`genverify.claims.errata.audit_file`), once per session.

    Read by test_errata's verdict tests and by the full build (:func:`full_build`), which would
    otherwise audit the same write-up again (about 10 s on 2 cores).
    """
    # Twice the default time per check: the suite shares two cores with itself.
    return once_per_session(tmp_path_factory, "homework-audit", lambda _: _real_audit_file(timeout=60))


_real_audit_file = claims_errata.audit_file


def full_build(tmp_path_factory) -> tuple[Path, object]:
    """(out_dir, summary) of the full build: every registered result's real derivation, the checks'
    run stubbed (:func:`_quick_check`), the real errata audit (:func:`homework_audit`), the stub
    experiments (one failing, built with ``keep_going``), as PDF (where TeX is installed) and HTML.

    Built once per test session (:func:`once_per_session`), since the PDF and browser tests
    read the same report and one build costs about 10 s.
    """
    audit = homework_audit(tmp_path_factory)

    def audit_file(path=None, **kw):
        assert path is None, "the full build audits the packaged write-up"
        return audit

    def build(root):
        import genverify.verification

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(genverify.verification, "run_check", _quick_check)
            mp.setattr(claims_errata, "audit_file", audit_file)
            return build_report(root / "build", experiments=[STUB, CRASH], keep_going=True,
                                formats="pdf,html" if HAS_TEX else "html", show_progress=False)

    summary = once_per_session(tmp_path_factory, "full-build", build)
    return summary.out_dir, summary
