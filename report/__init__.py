"""The LaTeX derivation report (`genverify report`).

* :mod:`genverify.report.build`: :func:`build_report` walks the registry of results and the
  experiments, caches what it computed, renders ``templates/report.tex.j2`` and compiles it;
* :mod:`genverify.report.questions`: the homework's questions, one line each, and how results
  are grouped under them;
* :mod:`genverify.report.latex`: escaping text and typesetting SymPy so that it fits the page;
* :mod:`genverify.report.cache`: cache keys from the source code a part runs and its settings.
"""


def __getattr__(name):
    # Lazy, so `import genverify.report.questions` stays cheap.
    if name in ("build_report", "ReportError", "BuildSummary"):
        from genverify.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'genverify.report' has no attribute {name!r}")
