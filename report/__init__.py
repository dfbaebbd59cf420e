"""The derivation report (`genverify report`), module by job.

* :mod:`~genverify.report.build`: :func:`build_report`, the orchestration: compute (or reuse)
  the parts, render, compile, swap the new report into place;
* the parts, each computed or read back from the cache, side by side in worker processes
  (:mod:`~genverify.report.parts`, :mod:`~genverify.parallel`):
  :mod:`~genverify.report.result_part` (a result's derivation typeset and its checks run),
  :mod:`~genverify.report.experiment_part` (an experiment run with the preset's settings),
  :mod:`~genverify.report.errata_part` (the audit of the write-up, a
  :class:`~genverify.claims.verdict.Audit`);
* :mod:`~genverify.report.cache`: cache keys from the source a part can run (its static import
  graph) and its settings; the cache's files;
* :mod:`~genverify.report.views`: the parts grouped by homework question as plain data, the same
  for every output format (text unescaped, mathematics as LaTeX notation);
* :mod:`~genverify.report.render_latex`: the views escaped for LaTeX and laid out by
  ``templates/report.tex.j2``; :mod:`~genverify.report.latex`: LaTeX escaping, SymPy typesetting
  and every LaTeX table; :mod:`~genverify.report.compile`: latexmk and its log;
* :mod:`~genverify.report.render_html`: the same views as one self-contained HTML page
  (``templates/report.html.j2``), its maths converted to MathML by :mod:`~genverify.report.mathml`;
* :mod:`~genverify.report.environment`: commit, CPU, library and TeX versions;
  :mod:`~genverify.report.progress`: progress on stderr;
  :mod:`~genverify.report.questions`: the homework's questions, one line each (cheap to import).
"""


class ReportError(RuntimeError):
    """The report could not be built; the previous report is untouched. The CLI exits 1.

    The message may name parameters of :func:`~genverify.report.build.build_report` as
    ``{name}`` for each of ``params``: ``str(err)`` says ``keep_going``, :meth:`render` lets
    a caller use its own names (the CLI's ``--keep-going``), as
    :meth:`genverify.core.ParameterError.render` does.
    """

    def __init__(self, message: str, *params: str):
        self.message, self.params = message, params
        super().__init__(self.render({}))

    def render(self, names: dict[str, str]) -> str:
        text = self.message
        for p in self.params:
            text = text.replace("{" + p + "}", names.get(p, p))
        return text

    def __reduce__(self):  # picklable, for builds that run parts in other processes
        return (type(self), (self.message, *self.params))


def __getattr__(name):
    # Lazy, so `import genverify.report.questions` stays cheap.
    if name in ("build_report", "BuildSummary"):
        from genverify.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'genverify.report' has no attribute {name!r}")
