"""report.html in a real browser: headless Chromium, driven by selenium, offline.

The page of a build with every registered result (real derivations; the checks' run
stubbed, as in test_report's full build), the stub experiments (one failing, built with
``keep_going``) and the real errata audit, opened from disk with the network cut off:

* every section heading is there;
* every ``<math>`` element is drawn (non-zero width and height);
* no LaTeX (``\\frac``, ``\\int``, ``\\begin``) is visible as text;
* every image loaded (``naturalWidth > 0``) and nothing was fetched;
* nothing is wider than the 1280 px window (no horizontal scrolling).

Screenshots of the top, of a derivation, of the figures and of the errata are written
to ``$GENVERIFY_SCREENSHOTS`` when set (to look at), else to the test's temporary folder.
Without Chromium, chromedriver or selenium the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from report_support import chromium, full_build, require_browser

from genverify import registry
from genverify.report.questions import ERRATA, QUESTIONS

WIDTH = 1280


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    require_browser()
    out, _ = full_build(tmp_path_factory)  # shared with test_report's full build
    shots = Path(os.environ.get("GENVERIFY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with chromium(WIDTH, 1000) as driver:
        # Offline: the page must not need the network (and may not use it).
        driver.set_network_conditions(offline=True, latency=0, throughput=0)
        driver.get((out / "report.html").as_uri())
        driver.execute_script("return document.fonts.ready")
        yield driver, shots


def test_every_section_heading_is_shown(page):
    driver, _ = page
    headings = driver.execute_script(
        "return [...document.querySelectorAll('h2')].filter(h => h.getBoundingClientRect().height > 0)"
        ".map(h => h.innerText.trim())")
    for q in QUESTIONS:
        assert ("Errata of the write-up" if q.key == ERRATA else f"Question {q.key}: {q.title}") in headings
    assert "Environment, run times and how to reproduce" in headings
    ids = driver.execute_script("return [...document.querySelectorAll('article.result')].map(a => a.id)")
    assert ids == [f"r-{r.id}" for r in registry.all_results()] or len(ids) == len(registry.all_results())


def test_every_formula_is_drawn(page):
    driver, _ = page
    sizes = driver.execute_script(
        "return [...document.querySelectorAll('math')].map(m => {const r = m.getBoundingClientRect();"
        " return [m.getAttribute('alttext'), r.width, r.height]})")
    assert len(sizes) > 200
    flat = [s for s in sizes if not (s[1] > 0 and s[2] > 0)]
    assert not flat, f"{len(flat)} formulas not drawn, e.g. {flat[:3]}"
    # A browser without MathML would draw the elements as inline text of one line's height;
    # a display fraction is taller than that.
    assert max(h for _, _, h in sizes) > 40


def test_no_latex_is_visible_as_text(page):
    driver, _ = page
    text = driver.execute_script("return document.body.innerText")
    for command in ("\\frac", "\\int", "\\begin", "\\left", "\\sqrt", "\\text{"):
        assert command not in text, command
    assert driver.execute_script("return document.querySelectorAll('code.latex-source').length") == 0


def test_every_image_loaded_and_nothing_was_fetched(page):
    driver, _ = page
    images = driver.execute_script(
        "return [...document.images].map(i => [i.complete, i.naturalWidth, i.src.slice(0, 15)])")
    assert images and all(done and w > 0 for done, w, _ in images), images
    assert all(src.startswith("data:image/") for _, _, src in images)
    fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [u for u in fetched if not u.startswith("data:")], fetched
    assert driver.execute_script("return document.scripts.length") == 0


def test_nothing_is_wider_than_the_window(page):
    driver, shots = page
    width = driver.execute_script("return document.documentElement.clientWidth")
    assert WIDTH - 20 <= width <= WIDTH
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    # ... and no block pokes out of the column: wide formulas and tables scroll inside their own box
    wide = driver.execute_script(
        "const w = document.documentElement.clientWidth;"
        "return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > w + 1"
        " && !e.closest('.eq, .table-wrap, .boxed')).map(e => e.tagName + '.' + e.className).slice(0, 5)")
    assert not wide, wide
    for name, target in [("top", None), ("derivation", "r-lognormal-pdf"), ("figures", "x-stub-comparison"),
                         ("failed-experiment", "x-crash"), ("errata", "sec-errata"), ("appendix", "sec-appendix")]:
        driver.execute_script("window.scrollTo(0, 0)" if target is None else
                              f"document.getElementById('{target}').scrollIntoView()")
        assert driver.save_screenshot(str(shots / f"report-{name}.png"))
