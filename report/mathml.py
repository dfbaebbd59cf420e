"""LaTeX notation to MathML, for the HTML report: the formulas the PDF typesets, for a browser.

The report's view (:mod:`genverify.report.views`) holds mathematics as LaTeX notation:
what :func:`sympy.latex` printed for each derivation step and result
(:func:`genverify.report.latex.math` and :func:`~genverify.report.latex.display`), the
write-up's formulas as the student wrote them, the questions' inline maths.
:func:`to_mathml` converts that notation with latex2mathml and fixes what browsers
implementing MathML Core (Chromium 109+, Firefox) would otherwise show wrongly:

* ``\\text{...}`` holds text escaped for LaTeX (:func:`genverify.report.latex.escape`,
  SymPy symbol names such as ``P(x[d] | p[d])``): it is taken out before converting and
  put back as plain text;
* an ``aligned`` environment (a long equation broken after whole terms, what
  :func:`~genverify.report.latex.display` writes) becomes a table of right- and
  left-aligned columns, as in LaTeX; ``columnalign`` (not in MathML Core) becomes CSS;
* letters in a ``mathvariant`` other than italic or normal (``\\boldsymbol``) become the
  Unicode mathematical letters, which every browser draws;
* spacing as TeX sets it: ``\\left( x \\right)`` around content no taller than a letter keeps
  the parentheses at their natural size (a stretchy one gets wide side bearings in Chromium),
  and a function name (``\\log p``) is followed by a thin space unless a parenthesis follows;
  ``\\infty`` is a symbol, not an operator (no operator spacing);
* ``||`` (SymPy's symbol names such as ``D_KL(P||Q)``) is one double bar, not two fences;
* scripts of scripts shrink no further than TeX's scriptscript size (MathML Core would go
  on shrinking: the exponent of a Gaussian density would be unreadable);
* the tree is serialized by :mod:`xml.etree.ElementTree`, so every ``<`` and ``&`` in the
  output is escaped: the write-up's LaTeX cannot inject markup into the page.

What it cannot convert (an unknown command such as ``\\input``, unbalanced braces)
raises :class:`MathMLError`; the renderer then shows the source as code.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert_to_element

from genverify.report import latex as tex

__all__ = ["to_mathml", "MathMLError"]


class MathMLError(ValueError):
    """The LaTeX could not be converted to MathML faithfully."""


_TEXT_COMMAND = re.compile(r"\\text\s*\{")
_PLACEHOLDER = "gvtext{}x"
_LEADING_OPERATOR = re.compile(r"^(\s*(?:\\quad\s*)?)(=|\+|-|<|>|\\(?:leq|geq|le|ge|neq|approx|sim)\b)")

# Unicode mathematical alphanumerics: (first capital Latin, first small Latin, first capital Greek,
# first small Greek) for each mathvariant MathML Core does not draw.
_VARIANTS = {
    "bold": (0x1D400, 0x1D41A, 0x1D6A8, 0x1D6C2),
    "bold-italic": (0x1D468, 0x1D482, 0x1D71C, 0x1D736),
    "italic": (0x1D434, 0x1D44E, 0x1D6E2, 0x1D6FC),
}
_ITALIC_EXCEPTIONS = {"h": "\u210e"}  # U+1D455 (italic small h) is unassigned


def _closing_brace(s: str, start: int) -> int:
    """Index of the ``}`` closing the group that opens just before ``start``; -1 if unbalanced."""
    depth, i = 1, start
    while i < len(s):
        c = s[i]
        if c == "\\":
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        if depth == 0:
            return i
        i += 1
    return -1


def _balanced(s: str) -> bool:
    depth, i = 0, 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        depth += (s[i] == "{") - (s[i] == "}")
        if depth < 0:
            return False
        i += 1
    return depth == 0 and len(re.findall(r"\\left\b", s)) == len(re.findall(r"\\right\b", s)) \
        and len(re.findall(r"\\begin\b", s)) == len(re.findall(r"\\end\b", s))


def _take_texts(latex: str) -> tuple[str, dict[str, str]]:
    """``latex`` with each ``\\text{...}`` replaced by a placeholder, and the plain texts by placeholder."""
    texts: dict[str, str] = {}
    out, pos = [], 0
    for m in _TEXT_COMMAND.finditer(latex):
        if m.start() < pos:
            continue
        end = _closing_brace(latex, m.end())
        if end < 0:
            raise MathMLError("unbalanced braces in \\text{...}")
        key = _PLACEHOLDER.format(len(texts))
        texts[key] = tex.unescape(latex[m.end():end])
        out.append(latex[pos:m.start()] + r"\text{" + key + "}")
        pos = end + 1
    out.append(latex[pos:])
    return "".join(out), texts


def _split_top(s: str, sep: str) -> list[str]:
    """``s`` split at ``sep`` (``&`` or ``\\\\``) outside braces and nested environments."""
    parts, depth, env, start, i = [], 0, 0, 0, 0
    while i < len(s):
        if s.startswith(sep, i) and depth == 0 and env == 0:
            parts.append(s[start:i])
            i += len(sep)
            start = i
            continue
        c = s[i]
        if c == "\\":
            m = re.match(r"\\(begin|end)\b", s[i:])
            if m:
                env += 1 if m.group(1) == "begin" else -1
            i += 2
            continue
        depth += (c == "{") - (c == "}")
        i += 1
    parts.append(s[start:])
    return parts


def _children(latex: str) -> list[ET.Element]:
    """The MathML elements of ``latex`` (without the ``<math>`` element around them)."""
    try:
        math = convert_to_element(latex)
    except Exception as exc:  # noqa: BLE001 - latex2mathml raises many types for bad input
        raise MathMLError(f"{type(exc).__name__}: {exc}") from None
    return list(math)


def _aligned(body: str) -> ET.Element:
    """``\\begin{aligned}`` rows: a table of columns aligned right, left, right, ... as in LaTeX."""
    table = ET.Element("mtable", {"displaystyle": "true", "class": "gv-aligned"})
    for row in _split_top(body, r"\\"):
        if not row.strip():
            continue
        tr = ET.SubElement(table, "mtr")
        for j, cell in enumerate(_split_top(row, "&")):
            # "&= x" and "&\quad + y" continue an equation: the operator is binary, not a sign.
            cell = _LEADING_OPERATOR.sub(r"\1{}\2", cell) if j % 2 else cell
            td = ET.SubElement(tr, "mtd", {"style": f"text-align: {'left' if j % 2 else 'right'}; padding: 0.15em 0"})
            mrow = ET.SubElement(td, "mrow")
            mrow.extend(_children(cell) if cell.strip() else [])
    return table


def _fix(el: ET.Element, texts: dict[str, str]) -> None:
    """Decode entities, put the texts back, refuse unknown commands, map what MathML Core does not draw."""
    for node in el.iter():
        if node.text:
            node.text = html.unescape(node.text)
            if node.tag == "mtext" and node.text in texts:
                node.text = texts[node.text]
            elif re.match(r"\\[A-Za-z]", node.text):
                raise MathMLError(f"unknown command {node.text.split()[0]}")
            elif node.tag == "mo" and node.text in _SYMBOLS:
                node.tag = "mi"
                node.attrib.clear()
        if node.tail:
            node.tail = html.unescape(node.tail)
        align = node.attrib.pop("columnalign", None)
        if align and node.tag == "mtd":
            node.set("style", f"text-align: {align.split()[0]}")
        variant = node.attrib.get("mathvariant")
        if variant in _VARIANTS and node.text:
            node.text = "".join(_variant_char(c, variant) for c in node.text)
            del node.attrib["mathvariant"]


#: Characters latex2mathml writes as operators that TeX sets as ordinary symbols.
_SYMBOLS = frozenset("\u221e\u2205\u2202\u2207")
#: The deepest script level: TeX's scriptscript style (half the text size in Latin Modern).
_MAX_DEPTH = 2
_SCRIPTS = frozenset({"msub", "msup", "msubsup", "munder", "mover", "munderover", "mmultiscripts"})


def _cap_depth(el: ET.Element, depth: int, display: bool) -> None:
    """Follow MathML Core's script levels down the tree; a child deeper than :data:`_MAX_DEPTH` is held there."""
    tag = el.tag
    if tag in ("mstyle", "mtable", "math"):
        if el.get("displaystyle") in ("true", "false"):
            display = el.get("displaystyle") == "true"
        elif tag == "mtable":
            display = False
        level = el.get("scriptlevel", "")
        if re.fullmatch(r"[+-]?\d+", level):
            depth = depth + int(level) if level[0] in "+-" else int(level)
    for i, kid in enumerate(el):
        d, disp = depth, display
        if tag in _SCRIPTS and i > 0:
            accent = (tag == "mover" and el.get("accent") == "true") or \
                (tag == "munder" and el.get("accentunder") == "true")
            d, disp = d + (0 if accent else 1), False
        elif tag == "mfrac":
            d, disp = d + (0 if display else 1), False
        elif tag == "mroot" and i == 1:
            d, disp = d + 2, False
        if d > _MAX_DEPTH:
            kid.set("scriptlevel", str(_MAX_DEPTH))
            d = _MAX_DEPTH
        _cap_depth(kid, d, disp)


#: Elements that make a fenced group taller than a line of text: its parentheses grow.
_TALL = frozenset({"mfrac", "mtable", "munderover", "munder", "msqrt", "mroot"})


def _first_leaf(el: ET.Element) -> ET.Element:
    while len(el) and el.tag in ("mrow", "mstyle", "msub", "msup", "msubsup"):
        el = el[0]
    return el


#: Operators after which a sign is unary, as in TeX, unless they close something.
_CLOSERS = frozenset(")]}|\u2016\u27e9!\u2032\u2033%")
_SIGNS = frozenset("+-\u2212\u00b1\u2213")


def _space(root: ET.Element) -> None:
    """TeX's spacing: natural-size parentheses around short content; a thin space after a function name;
    a sign after an opening parenthesis, a comma or a relation is unary."""
    for parent in list(root.iter()):
        kids, bars = list(parent), 0
        for a, b in zip(kids, kids[1:]):
            # "P||Q" (SymPy's names D_KL(P||Q)): one double bar, as TeX sets it, not two fences spaced
            # apart; unless an odd number of bars precede it: |x||y| closes one |x| and opens |y|.
            if a.tag == b.tag == "mo" and a.text == b.text == "|" and bars % 2 == 0 and a in list(parent):
                a.text = "\u2016"
                parent.remove(b)
            elif a.tag == "mo" and a.text == "|" and a in list(parent):
                bars += 1
        if parent.tag not in ("munder", "mover", "munderover"):
            for k in parent:  # \max, \operatorname{erf}: a function name, not an operator with wide spaces
                if k.tag == "mo" and k.text and len(k.text) > 1 and k.text.isalpha():
                    k.tag = "mi"
                    k.attrib.clear()
        kids = list(parent)
        for i, k in enumerate(kids):
            if k.tag == "mo" and k.text in _SIGNS and i > 0 and k.get("form") is None:
                prev = kids[i - 1]
                if prev.tag == "mo" and (prev.text or "") not in _CLOSERS:
                    k.set("form", "prefix")
        if parent.tag == "mrow" and any(k.tag == "mo" and k.get("fence") == "true" and k.get("stretchy") == "true"
                                        for k in kids):
            if not any(d.tag in _TALL for k in kids for d in k.iter()):
                for k in kids:
                    if k.tag == "mo" and k.get("fence") == "true":
                        k.set("stretchy", "false")
        for i, k in enumerate(kids):
            if k.tag == "mi" and k.text and len(k.text) > 1 and k.text.isalpha():
                # TeX puts a thin space between a function name and an ordinary symbol on either side
                if i + 1 < len(kids):
                    nxt = _first_leaf(kids[i + 1])
                    if not (nxt.tag == "mo" and nxt.text in ("(", "[", "|", "\u2016")) and nxt.tag != "mspace":
                        parent.insert(list(parent).index(k) + 1, ET.Element("mspace", {"width": "0.167em"}))
                if i > 0 and kids[i - 1].tag not in ("mo", "mspace"):
                    parent.insert(list(parent).index(k), ET.Element("mspace", {"width": "0.167em"}))


def _variant_char(c: str, variant: str) -> str:
    cap, small, gcap, gsmall = _VARIANTS[variant]
    if variant == "italic" and c in _ITALIC_EXCEPTIONS:
        return _ITALIC_EXCEPTIONS[c]
    if "A" <= c <= "Z":
        return chr(cap + ord(c) - ord("A"))
    if "a" <= c <= "z":
        return chr(small + ord(c) - ord("a"))
    if "\u0391" <= c <= "\u03a9" and c != "\u03a2":
        return chr(gcap + ord(c) - 0x391)
    if "\u03b1" <= c <= "\u03c9":
        return chr(gsmall + ord(c) - 0x3B1)
    return c


def to_mathml(latex: str, display: bool = False, displaystyle: bool | None = None) -> str:
    """``latex`` (maths-mode notation) as a ``<math>`` element; :class:`MathMLError` if it cannot be converted.

    ``display``: a block formula (``display="block"``), else inline; ``displaystyle=True`` sets an
    inline formula in display style (full-size fractions, limits above and below), as ``\\displaystyle``.
    """
    latex = str(latex).strip()
    if not latex:
        raise MathMLError("empty formula")
    if not _balanced(latex):
        raise MathMLError("unbalanced braces, \\left/\\right or \\begin/\\end")
    body, texts = _take_texts(latex)
    math = ET.Element("math", {"xmlns": "http://www.w3.org/1998/Math/MathML",
                               "display": "block" if display else "inline"})
    m = re.fullmatch(r"\\begin\{aligned\}(.*)\\end\{aligned\}", body, re.S)
    if m and "aligned" not in m.group(1):
        math.append(_aligned(m.group(1)))
    else:
        mrow = ET.SubElement(math, "mrow")
        mrow.extend(_children(body))
    if displaystyle is not None:
        math.set("displaystyle", "true" if displaystyle else "false")
    _fix(math, texts)
    _space(math)
    _cap_depth(math, 0, display if displaystyle is None else displaystyle)
    # An alttext lets a screen reader (and a search) find the formula's source.
    math.set("alttext", latex)
    return ET.tostring(math, encoding="unicode", short_empty_elements=False)
