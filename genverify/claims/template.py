"""A claims-file skeleton for any write-up: ``genverify claims-template [--question Q]`` (issue 16, item 4).

:func:`claims_template` writes YAML that :func:`~genverify.claims.writeups.load_claims`
reads as it is: one entry per registered result (``claim: null``), each
preceded by comments giving the result's statement, its symbols (domain,
default), their notation in LaTeX and in plain text, and an example claim
that shows the notation (a formula in the result's symbols, never the
answer; the statements, which state the answers, only on request). A teaching assistant fills in each student's formulas and runs
``genverify errata --file``.
"""

from __future__ import annotations

import textwrap

import sympy as sp

from genverify import registry
from genverify.core import Param, ParameterError, Result

__all__ = ["claims_template", "example_claim", "notation"]


def claims_template(question: str | None = None, homework: str = "Homework 2 (your write-up)",
                    statements: bool = False) -> str:
    """The YAML skeleton for every result (whose question starts with ``question``, if given).

    ``statements`` adds each result's statement as a comment (it states the answer: for a grader's copy).
    """
    results = [r for r in registry.all_results() if not question or r.question.startswith(question)]
    if not results:
        raise ParameterError("question", f"{{param}} {question!r} matches no result; questions: "
                                         + ", ".join(dict.fromkeys(r.question for r in registry.all_results())))
    out = [
        "# A claims file for `genverify errata --file THIS.yaml` (skeleton from `genverify claims-template`).",
        "# Replace each `claim: null` by the formula the write-up gives, LaTeX as written (or plain text);",
        "# leave it null when the write-up gives none. Optional fields per entry: part, where (one region",
        "# of a piecewise answer), rename (the write-up's notation -> the symbols below), note, and steps",
        "# (the derivation line by line; see genverify/claims/homework2.yaml for examples).",
        "# The example claims only show the notation: they are not the answers.",
        "",
        f"homework: {_quote(homework)}",
        "entries:",
    ]
    for r in results:
        if isinstance(r.expr, sp.MatrixBase):
            continue  # vector-valued: `check` compares scalar formulas only
        out.append("")
        out.append(f"  # {r.question}  {r.id}" + (f" ({r.kind} in {r.variable})" if r.variable else ""))
        if statements:
            for line in textwrap.wrap(r.statement, 92):
                out.append(f"  #   {line}")
        out.append(f"  # symbols: {symbols_line(r)}")
        latex, plain = notation(r)
        out.append(f"  # notation: LaTeX {latex or '(no symbols)'}; plain text {plain or '(no symbols)'}")
        out.append(f"  # example claim (the notation, not the answer): {_quote(example_claim(r))}")
        out.append(f"  - question: {_quote(r.question)}")
        out.append(f"    id: {r.id}")
        out.append("    claim: null")
    return "\n".join(out) + "\n"


def symbols_line(r: Result) -> str:
    parts = []
    for p in r.params:
        dom = p.domain
        if isinstance(dom, sp.Range):
            shown = f"{{{dom.inf}, ..., {dom.sup}}}"
        elif isinstance(dom, sp.Interval):
            shown = ("(" if dom.left_open else "[") + f"{sp.sstr(dom.inf)}, {sp.sstr(dom.sup)}" + \
                (")" if dom.right_open else "]")
        else:
            shown = sp.sstr(dom)
        kind = "indexed, entries in" if isinstance(p.symbol, sp.IndexedBase) else "in"
        default = f" (default {p.default})" if p.default is not None else ""
        parts.append(f"{p.name} {kind} {shown}{default}")
    return "; ".join(parts) or "none (the result is a number)"


def _indices(r: Result, p: Param) -> list[sp.Symbol]:
    """The index symbols ``p`` takes in the result (``p[k, d]`` -> [k, d])."""
    expr = r.expr
    for a in sorted(expr.atoms(sp.Indexed), key=str):
        if a.base.label == p.symbol.label:
            return [i if isinstance(i, sp.Symbol) else sp.Symbol("j") for i in a.indices]
    return [sp.Symbol("i")]


def notation(r: Result) -> tuple[str, str]:
    """The result's symbols in LaTeX and in plain text (indexed ones with their indices)."""
    latex, plain = [], []
    for p in r.params:
        if isinstance(p.symbol, sp.IndexedBase):
            idx = _indices(r, p)
            name = sp.latex(sp.Symbol(p.name))
            latex.append(f"{name}_{{{','.join(map(str, idx))}}}")
            plain.append(f"{p.name}[{', '.join(map(str, idx))}]")
        else:
            latex.append(sp.latex(p.symbol))
            plain.append(p.name)
    return ", ".join(latex), ", ".join(plain)


def example_claim(r: Result) -> str:
    """A LaTeX formula in the result's symbols that shows the notation (never the result itself)."""
    scalars = [p for p in r.params if not isinstance(p.symbol, sp.IndexedBase)]
    indexed = [p for p in r.params if isinstance(p.symbol, sp.IndexedBase)]
    reals = [p for p in scalars if not p.integer]
    if indexed:
        p = indexed[0]
        idx = _indices(r, p)
        limits = {lim[0]: lim[2] for s in r.expr.atoms(sp.Sum, sp.Product) for lim in s.limits}
        params = {q.symbol for q in r.params}
        term = f"{sp.latex(sp.Symbol(p.name))}_{{{','.join(map(str, idx))}}}"
        for i in reversed(idx):
            if i not in params:
                term = f"\\sum_{{{i}=1}}^{{{sp.latex(limits.get(i, sp.Integer(2)))}}} {term}"
        return term
    if not scalars:
        return "\\log 2"
    if len(reals) >= 2:
        a, b = reals[0], reals[1]
        return f"\\frac{{{sp.latex(a.symbol)}}}{{{sp.latex(b.symbol)}}}" + \
            (f" + {sp.latex(reals[2].symbol)}^2" if len(reals) > 2 else "")
    a = (reals or scalars)[0]
    return f"2 {sp.latex(a.symbol)}^2"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
