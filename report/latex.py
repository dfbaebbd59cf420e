"""Turning text and SymPy expressions into LaTeX that compiles and fits the page.

* :func:`escape` makes any plain text (statements, check figures, captions)
  safe in LaTeX text mode, mapping the Unicode mathematics the registry uses
  (±, ≤, ∫, ∩, σ, ...) to LaTeX; nothing the registry writes can inject markup.
* :func:`display` typesets a SymPy expression for a display: an equation whose
  right side is a long sum is broken after whole terms onto aligned lines, and
  the result goes into ``\\fitmath`` (defined in the template), which shrinks
  whatever is still wider than the line instead of letting it overflow.
* :func:`claim_math` typesets a formula the write-up states (LaTeX as the student
  wrote it) as mathematics only when it uses a small, known-safe vocabulary;
  anything else is shown verbatim, so a stray command cannot break the build.
* Tables: :func:`column_spec` lays out a table of any content (natural columns, or
  wrapped ones sized to fit the line) for the report's experiment tables, and
  :func:`booktabs_table` writes a stand-alone ``table`` float (``genverify compare``'s
  ``comparison.tex``). The report template's tables take their column specs and
  cells from here; genverify writes no LaTeX table elsewhere, and every cell goes
  through :func:`escape` (or :func:`cell`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import sympy as sp

__all__ = ["escape", "unescape", "breakable", "lines", "display", "math", "claim_math", "fmt_value", "math_width",
           "cell", "column_spec", "booktabs_table"]

_TEXT_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    # After "\\" (a table row, a kept line break) a "[" would be read as a length: "\\[2pt]".
    "[": "{[}", "]": "{]}",
}

#: Unicode the registry and the write-up use -> LaTeX (text mode).
_UNICODE = {
    "±": r"$\pm$", "∓": r"$\mp$", "×": r"$\times$", "·": r"$\cdot$", "÷": r"$\div$", "−": "-",
    "≤": r"$\le$", "≥": r"$\ge$", "≠": r"$\ne$", "≈": r"$\approx$", "∼": r"$\sim$", "≡": r"$\equiv$",
    "∞": r"$\infty$", "∫": r"$\int$", "∑": r"$\sum$", "∏": r"$\prod$", "√": r"$\surd$", "∂": r"$\partial$",
    "∇": r"$\nabla$", "∈": r"$\in$", "∉": r"$\notin$", "⊆": r"$\subseteq$", "⊂": r"$\subset$",
    "∩": r"$\cap$", "∪": r"$\cup$", "∅": r"$\emptyset$", "∧": r"$\wedge$", "∨": r"$\vee$", "¬": r"$\neg$",
    "→": r"$\to$", "←": r"$\leftarrow$", "⇒": r"$\Rightarrow$", "⇔": r"$\Leftrightarrow$", "↦": r"$\mapsto$",
    "‖": r"$\|$", "∘": r"$\circ$", "⊙": r"$\odot$", "⊗": r"$\otimes$", "…": r"\ldots{}", "°": r"$^\circ$",
    "²": r"$^2$", "³": r"$^3$", "¹": r"$^1$", "⁻": r"$^-$", "₀": r"$_0$", "₁": r"$_1$", "₂": r"$_2$",
    "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~", "✓": r"$\checkmark$",
    "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "δ": r"$\delta$", "ε": r"$\varepsilon$",
    "ζ": r"$\zeta$", "η": r"$\eta$", "θ": r"$\theta$", "κ": r"$\kappa$", "λ": r"$\lambda$", "μ": r"$\mu$",
    "ν": r"$\nu$", "ξ": r"$\xi$", "π": r"$\pi$", "ρ": r"$\rho$", "σ": r"$\sigma$", "τ": r"$\tau$",
    "φ": r"$\phi$", "χ": r"$\chi$", "ψ": r"$\psi$", "ω": r"$\omega$", "Γ": r"$\Gamma$", "Δ": r"$\Delta$",
    "Θ": r"$\Theta$", "Λ": r"$\Lambda$", "Π": r"$\Pi$", "Σ": r"$\Sigma$", "Φ": r"$\Phi$", "Ω": r"$\Omega$",
}


def _escape_char(ch: str) -> str:
    if ch in _TEXT_SPECIALS:
        return _TEXT_SPECIALS[ch]
    if ch in _UNICODE:
        return _UNICODE[ch]
    if ord(ch) < 128:
        if ch in "\t\n\r":  # a blank line would be a paragraph break: invalid inside a table cell
            return " "
        return ch if ch.isprintable() else ""
    # Latin letters with accents survive in T1; anything else falls back to its ASCII skeleton.
    if unicodedata.category(ch).startswith("L") and unicodedata.normalize("NFKD", ch).encode("ascii", "ignore"):
        return unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
    return "?"


#: Pairs of characters that T1 fonts join into another character ("--" into an en dash, ",," into „).
_LIGATURES = frozenset({("-", "-"), ("`", "`"), ("'", "'"), (",", ","), ("!", "`"), ("?", "`")})


def escape(text: Any) -> str:
    """``text`` made safe for LaTeX text mode (every special character escaped)."""
    text = str(text)
    out = ""
    for i, c in enumerate(text):
        # a leading minus ("-ELBO", "-0.5") must not end a line on its own
        piece = r"\mbox{-}" if c == "-" and (i == 0 or text[i - 1].isspace()) else _escape_char(c)
        # "--" would print as an en dash, "''" as a closing quote (T1 ligatures): keep them as typed.
        out += ("{}" if (out[-1:], piece[:1]) in _LIGATURES else "") + piece
    # Adjacent inline maths from the Unicode map ("$\le$$\infty$") would read as display maths.
    return out.replace("$$", "$\\,$")


#: What :func:`escape` (and :func:`breakable`) emit, back to the text: longest first.
_UNESCAPE = {
    **{v: k for k, v in _TEXT_SPECIALS.items()},
    **{v: k for k, v in reversed(list(_UNICODE.items())) if v not in ("-", "`", "'", "~")},
    "{}": "", r"\mbox{-}": "-", r"\,": "", r"\allowbreak{}": "", "~": "\u00a0",
}
_UNESCAPE_RE = re.compile("|".join(re.escape(k) for k in sorted(_UNESCAPE, key=len, reverse=True)))


def unescape(escaped: str) -> str:
    """Text that :func:`escape` wrote, back as plain text (for a renderer other than LaTeX).

    ``unescape(escape(s)) == s`` for ASCII text and the Unicode :func:`escape` maps; anything
    else is kept as it is.
    """
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPE[m.group(0)], str(escaped))


def breakable(escaped: str) -> str:
    """Escaped text with break points after / . , : = ( so long paths and tracebacks wrap."""
    # Not inside numbers ("0.022", "1,000"): only before a letter, an escaped character or after "/".
    return re.sub(r"(?<!\\)(/|[.,:=(](?=[A-Za-z\\]))", r"\1\\allowbreak{}", escaped)


def lines(text: str) -> str:
    """Multi-line plain ``text`` (a traceback) escaped, breakable, its line breaks kept."""
    return " \\\\\n".join(breakable(escape(ln)) for ln in str(text).splitlines() if ln.strip())


# ---------------------------------------------------------------- SymPy


def _latex_symbol_names(expr: Any) -> dict:
    """Names SymPy would print raw but that are not valid maths (spaces, specials)."""
    names = {}
    free = getattr(expr, "free_symbols", set()) or set()
    atoms = set(free)
    try:
        atoms |= expr.atoms(sp.Symbol)
    except Exception:  # noqa: BLE001 - exotic objects: keep what we have
        pass
    for s in atoms:
        name = getattr(s, "name", "")
        if re.search(r"[\s#$%&~\\]", name) or not name.isascii():
            names[s] = r"\text{" + escape(name) + "}"
    return names


def _latex(expr: Any) -> str:
    if isinstance(expr, str):
        return r"\text{" + escape(expr) + "}"
    try:
        return sp.latex(expr, symbol_names=_latex_symbol_names(expr))
    except Exception:  # noqa: BLE001 - an unprintable object is shown as text, never a crash
        return r"\text{" + escape(str(expr)) + "}"


def math_width(latex: str) -> float:
    """A rough width, in characters, of typeset ``latex`` (fractions count their wider part).

    Used only to decide where to break a long equation; ``\\fitmath`` takes care of the rest.
    """
    s = latex
    s = re.sub(r"\\(left|right|big|Big|bigg|Bigg)\b", "", s)
    s = re.sub(r"\\(begin|end)\{[a-z*]+\}", "", s)
    s = re.sub(r"\\text\{for\}\\:", "for ", s)
    s = re.sub(r"\\(operatorname|mathrm|text|mathbf|limits)", "", s)
    s = re.sub(r"\\[,;:! ]", " ", s)
    s = re.sub(r"\\[A-Za-z]+", "x", s)
    s = re.sub(r"[{}]", "", s)
    s = s.replace("&", "").replace("\\\\", "")
    # sub/superscripts are smaller
    small = len(re.findall(r"[_^]", s))
    return max(0.0, len(s) - 0.5 * small)


#: Break a display whose estimated width exceeds this many characters (about one line at 11pt).
LINE_CHARS = 72


def _split_terms(expr: sp.Expr) -> list[str]:
    """LaTeX of the terms of a sum, each with its sign ("+ a", "- b"), in SymPy's print order."""
    terms = expr.as_ordered_terms() if isinstance(expr, sp.Add) else [expr]
    out = []
    for i, term in enumerate(terms):
        t = _latex(term)
        if i == 0:
            out.append(t)
        elif t.startswith("-"):
            out.append("- " + t[1:].lstrip())
        else:
            out.append("+ " + t)
    return out


def _wrap_terms(first: str, terms: list[str], budget: float) -> list[str]:
    """Greedy line filling: ``first`` opens line one; later lines are indented continuations."""
    lines, current = [], first
    for t in terms:
        if current and math_width(current + t) > budget and current != first:
            lines.append(current)
            current = r"\quad " + t
        else:
            current = (current + " " + t) if current else t
    lines.append(current)
    return lines


def display(expr: Any, boxed: bool = False) -> str:
    """LaTeX body for ``\\fitmath{...}``: one line, or aligned lines for a long equation/sum."""
    if isinstance(expr, sp.Basic) and isinstance(expr, sp.Equality):
        lhs, rhs = _latex(expr.lhs), _latex(expr.rhs)
        body = f"{lhs} = {rhs}"
        if math_width(body) > LINE_CHARS:
            if isinstance(expr.rhs, sp.Add) and len(expr.rhs.args) > 1:
                terms = _split_terms(expr.rhs)
                lines = _wrap_terms(f"{lhs} &= ", terms, LINE_CHARS)
                lines = [lines[0]] + ["&" + ln for ln in lines[1:]]
                body = r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"
            elif math_width(lhs) > 12 and math_width(rhs) > 20:
                body = r"\begin{aligned}&" + lhs + r" \\ &\quad = " + rhs + r"\end{aligned}"
    elif isinstance(expr, sp.Add) and len(expr.args) > 1 and math_width(_latex(expr)) > LINE_CHARS:
        lines = _wrap_terms("", _split_terms(expr), LINE_CHARS)
        body = r"\begin{aligned}&" + r" \\ &".join(lines) + r"\end{aligned}"
    else:
        body = _latex(expr)
    return r"\boxed{" + body + "}" if boxed else body


def math(expr: Any) -> str:
    """LaTeX of ``expr`` for maths mode (no breaking)."""
    return _latex(expr)


# ---------------------------------------------------------------- the write-up's own LaTeX

_SAFE_COMMANDS = frozenset("""
frac dfrac tfrac sum prod int iint oint left right log ln exp pi sigma mu eta lambda alpha beta gamma theta
phi varphi psi omega delta epsilon varepsilon tau rho nu xi zeta kappa chi Sigma Pi Phi Delta Gamma Lambda
Omega infty sqrt cdot cdots ldots dots times partial mathbf mathrm mathcal boldsymbol hat bar tilde vec le
leq ge geq lt gt neq ne approx sim cos sin tan arccos arcsin arctan det parallel mid vert Vert lvert rvert
lVert rVert quad qquad top prime min max sup inf lim to mapsto in notin subset subseteq cup cap wedge vee
""".split())


def claim_math(latex: str | None) -> str | None:
    """``latex`` (the write-up's formula) as inline maths, or ``None`` if it is not known to be safe."""
    if not latex:
        return None
    s = latex.strip()
    if not s.isascii() or any(c in s for c in "$%#&~\n") or "^^" in s or "\\\\" in s:
        return None
    for cmd in re.findall(r"\\([A-Za-z]+)", s):
        if cmd not in _SAFE_COMMANDS:
            return None
    depth = 0
    for c in re.sub(r"\\[{}]", "", s):
        depth += (c == "{") - (c == "}")
        if depth < 0:
            return None
    if depth or len(re.findall(r"\\left\b", s)) != len(re.findall(r"\\right\b", s)):
        return None
    # A double sub/superscript ("x^a^b") is a LaTeX error: refuse rather than risk the build.
    if re.search(r"\^(\{[^{}]*\}|[A-Za-z0-9])\^|_(\{[^{}]*\}|[A-Za-z0-9])_", s.replace(" ", "")):
        return None
    return s


def fmt_value(v: Any) -> str:
    """A number or small structure as short escaped text."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}".replace(",", "{,}")
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return r"$\infty$" if v > 0 else r"$-\infty$"
        return escape(f"{v:.6g}")
    if isinstance(v, (list, tuple)):
        if len(v) <= 8 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
            return "(" + ", ".join(fmt_value(x) for x in v) + ")"
        return escape(f"[{len(v)} values]")
    if isinstance(v, dict):
        return ", ".join(f"{escape(k)}: {fmt_value(x)}" for k, x in list(v.items())[:8])
    return escape(v)


# ---------------------------------------------------------------- tables


def cell(v: Any) -> str:
    """A table cell: numbers as :func:`fmt_value` prints them, anything else escaped text."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return fmt_value(v)
    return escape("" if v is None else v)


def _plain(v: Any) -> str:
    """The text a cell will show (numbers as :func:`fmt_value` prints them), for measuring widths."""
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:.6g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


def _is_number(v: Any) -> bool:
    try:
        float(str(v).replace(",", ""))
        return True
    except ValueError:
        return False


def _column_texts(columns: list[str], rows: list[list[Any]]) -> list[list[str]]:
    """Per column: its header, then the text of each of its cells."""
    return [[str(c)] + [_plain(r[i]) if i < len(r) else "" for r in rows] for i, c in enumerate(columns)]


def _is_numeric(cells: list[str]) -> bool:
    return all(_is_number(v) for v in cells if v != "") and any(v != "" for v in cells)


def column_spec(columns: list[str], rows: list[list[Any]]) -> tuple[str, str]:
    """(column spec, font size): natural columns when the table fits the line, wrapped p-columns otherwise.

    Widths are estimated in characters (about 84 fit the line in the small font, 92 in the
    footnote size used for tables of more than six columns). A wrapped column first gets its
    longest word, then a share of what is left in proportion to the rest of its longest text.
    Numeric columns are right-aligned.
    """
    texts = _column_texts(columns, rows)
    numeric = [_is_numeric(col[1:]) for col in texts]
    widths = [max(len(v) for v in col) for col in texts]
    n = len(columns)
    size, avail = (r"\footnotesize", 92.0) if n > 6 else (r"\small", 84.0)
    if sum(widths) + 3 * (n - 1) <= avail:
        return "".join("r" if num else "l" for num in numeric), size
    avail -= 2 * (n - 1)  # the gaps between columns
    floor = [min(max((len(w) for v in col for w in v.split()), default=1) + 2, 18) for col in texts]
    body = [max((len(v) for v in col[1:]), default=0) for col in texts]  # headers may wrap at words
    want = [max(min(w, 45), f) for w, f in zip(body, floor)]
    if sum(floor) >= avail:
        chars = [f * avail / sum(floor) for f in floor]
    else:
        extra, room = avail - sum(floor), [w - f for w, f in zip(want, floor)]
        chars = [f + (extra * r / sum(room) if sum(room) > extra else r) for f, r in zip(floor, room)]
    total = sum(chars) / 0.99  # a little slack for rounding
    sep = 2 * (n - 1) / n  # the inner column gaps, spread over the columns
    spec = []
    for c, num in zip(chars, numeric):
        align = r"\raggedleft" if num else r"\raggedright"
        spec.append(rf">{{{align}\arraybackslash}}p{{\dimexpr {c / total:.3f}\linewidth-{sep:.2f}\tabcolsep\relax}}")
    return "".join(spec), size


def booktabs_table(columns: list[str], rows: list[list[Any]], *, spec: str | None = None, caption: str = "",
                   notes: str = "", size: str = r"\footnotesize", tabcolsep: str | None = "3pt",
                   placement: str = "ht", format_cell=escape) -> str:
    """A ``table`` float holding a booktabs ``tabular``: header, rows, ``notes`` below, ``caption``.

    ``columns``, ``rows``, ``notes`` and ``caption`` are plain text (every cell goes through
    ``format_cell``, :func:`escape` by default, or :func:`cell` for :func:`fmt_value`'s numbers);
    ``spec`` defaults to :func:`column_spec`'s natural columns. Rows are cut or padded to the header.
    """
    n = len(columns)
    if spec is None:
        spec = "".join("r" if _is_numeric(col[1:]) else "l" for col in _column_texts(columns, rows))
    lines = [rf"\begin{{table}}[{placement}]", r"\centering"]
    if size:
        lines.append(size)
    if tabcolsep:
        lines.append(rf"\setlength{{\tabcolsep}}{{{tabcolsep}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", " & ".join(escape(c) for c in columns) + r" \\",
              r"\midrule"]
    lines += [" & ".join(format_cell(v) for v in (list(row) + [""] * n)[:n]) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(rf"\par\smallskip\parbox{{0.95\linewidth}}{{\footnotesize {escape(notes)}}}")
    if caption:
        lines.append(rf"\caption{{{escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
