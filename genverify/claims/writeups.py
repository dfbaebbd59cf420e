"""Write-ups as data: a claims file lists a homework's answers, each a formula to check.

A claims file is YAML: a ``homework`` title and a list of ``entries``, each
with the homework ``question``, the registry ``id`` it claims, the ``claim``
(the student's formula, LaTeX as written; null when the write-up gives none)
and optionally

* ``part``, ``note``: which formula of the answer, context for the reader;
* ``where``: one region of a piecewise answer (``1 \\le z \\le \\sqrt{2}``);
* ``rename``: literal text replacements from the student's notation to the
  registry's symbols (applied to the claim and to every step);
* ``steps``: the derivation, line by line (:mod:`genverify.claims.steps`):
  each a mapping with ``claim`` (the line, LaTeX as written), optionally
  ``label`` (the write-up's words: "Simplify"), ``relation`` (how it follows
  from a line before: ``equal`` (default), ``start``, ``define``,
  ``identity``, ``{derivative: x}``, ``{solve: x}``, ``{substitute: 3, into: 1}``,
  ``{multiply: factor}``, each optionally naming the line, ``{equal: 2}``),
  ``id`` (also compare the line with that result) and ``note``; with steps,
  ``claim`` may be left out (the last line is then the claim);
* ``symbols``: symbols the steps use beyond the result's, ``name: spec`` with
  spec ``real``, ``positive``, ``nonnegative``, ``size`` (an integer 1..4),
  ``integer``, an interval ``(0, 1)``, each optionally prefixed ``indexed``
  (``pi: indexed (0, 1)``);
* ``assume``: a condition the steps' symbols satisfy (``d <= D``).

The homework's own write-up ships as :data:`DEFAULT_CLAIMS`; nothing in it
says whether an answer is right (the errata audit,
:mod:`genverify.claims.errata`, decides that by checking).

:func:`load_claims` refuses a file with any bad entry (a
:class:`~genverify.core.ParameterError` naming ``path``);
:func:`read_claims` keeps the good entries and lists each bad one as a
:class:`Problem` (file, entry number, field, what is wrong), so that an
audit still covers the rest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import yaml

from genverify.core import ParameterError

__all__ = [
    "DEFAULT_CLAIMS",
    "ClaimEntry",
    "ClaimsFile",
    "Problem",
    "StepSpec",
    "claims_paths",
    "load_claims",
    "parse_symbol_spec",
    "read_claims",
    "read_steps",
]

#: The transcribed claims of the homework write-up, shipped with the package.
DEFAULT_CLAIMS = "homework2.yaml"
_ENTRY_KEYS = {"question", "part", "id", "claim", "where", "rename", "note", "steps", "symbols", "assume"}
_STEP_KEYS = {"claim", "label", "relation", "id", "note"}
_RELATION_WORDS = {"equal", "start", "define", "identity", "substitute"}
_RELATION_KEYS = {"equal", "derivative", "solve", "substitute", "multiply", "of", "from", "into", "start", "define"}
_SPEC = re.compile(r"^(indexed\s+)?(real|positive|nonnegative|size|integer|[(\[]\s*[^,]+,\s*[^,]+[)\]])$")


@dataclass
class StepSpec:
    """One line of a derivation as transcribed: the text, the write-up's words, how it follows."""

    claim: str
    label: str = ""
    relation: Any = "equal"
    id: str = ""
    note: str = ""


@dataclass
class ClaimEntry:
    """One transcribed answer: which result it claims, the LaTeX as written, an optional region and steps."""

    question: str
    id: str
    claim: str | None
    part: str = ""
    where: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    note: str = ""
    steps: list[StepSpec] = field(default_factory=list)
    symbols: dict[str, str] = field(default_factory=dict)
    assume: str | None = None

    def text_to_check(self) -> str | None:
        """The claim with the ``rename`` replacements applied (the student's notation -> registry symbols)."""
        if self.claim is None:
            return None
        return self.renamed(self.claim)

    def renamed(self, text: str) -> str:
        """``text`` with the ``rename`` replacements applied."""
        for old, new in self.rename.items():
            text = text.replace(old, new)
        return text


@dataclass
class Problem:
    """A bad entry of a claims file: where (file, 1-based entry number, field) and what is wrong."""

    path: str
    entry: int
    field: str
    message: str
    question: str = ""

    def __str__(self) -> str:
        if not self.entry:
            return f"{self.path}: {self.message}"
        where = f"entry {self.entry}" + (f" (question {self.question})" if self.question else "")
        what = f"field '{self.field}': " if self.field else ""
        return f"{self.path}: {where}: {what}{self.message}"


@dataclass
class ClaimsFile:
    """A claims file read leniently: its title, the good entries, and a :class:`Problem` per bad one."""

    path: str
    title: str
    entries: list[ClaimEntry]
    problems: list[Problem] = field(default_factory=list)


def load_claims(path: str | os.PathLike | None = None) -> tuple[str, list[ClaimEntry]]:
    """Read a claims file (default: the packaged :data:`DEFAULT_CLAIMS`); return (title, entries).

    A missing file is ``FileNotFoundError``; a malformed one, or one with a
    bad entry, a :class:`~genverify.core.ParameterError` naming ``path``.
    """
    read = read_claims(path)
    if read.problems:
        p = read.problems[0]
        where = f"entry {p.entry}" + (f" (question {p.question})" if p.question else "") if p.entry else ""
        what = f"field '{p.field}': " if p.field else ""
        raise ParameterError("path", f"{{param}} {p.path}: {where + ': ' if where else ''}{what}{p.message}")
    return read.title, read.entries


def read_claims(path: str | os.PathLike | None = None) -> ClaimsFile:
    """Read a claims file, keeping its good entries; a file that is no claims file at all raises.

    A missing file is ``FileNotFoundError``; text that is not YAML, or YAML
    without a list of ``entries``, a :class:`~genverify.core.ParameterError`
    naming ``path``. A bad entry is a :class:`Problem` in the answer.
    """
    if path is None:
        text = files("genverify.claims").joinpath(DEFAULT_CLAIMS).read_text(encoding="utf-8")
        label = DEFAULT_CLAIMS
    else:
        label = str(path)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError("path", f"{{param}} {label}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ParameterError("path", f"{{param}} {label}: expected a mapping with a list under 'entries'")
    entries, problems = [], []
    for k, raw in enumerate(data["entries"], start=1):
        try:
            entries.append(_entry(raw))
        except _Bad as bad:
            question = str(raw.get("question", "")) if isinstance(raw, dict) else ""
            problems.append(Problem(label, k, bad.field, bad.message, question))
    return ClaimsFile(label, str(data.get("homework", label)), entries, problems)


def read_steps(path: str | os.PathLike) -> ClaimEntry:
    """A steps file for ``genverify check --steps``: a YAML list of lines, or a mapping with ``steps`` and
    optionally ``symbols``, ``assume``, ``where``, ``rename`` (the fields of a claims-file entry).

    Returned as a :class:`ClaimEntry` without question or id. A bad file is a
    :class:`~genverify.core.ParameterError` naming ``path``.
    """
    label = str(path)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ParameterError("path", f"{{param}} {label}: not valid YAML ({exc})") from None
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or not data.get("steps"):
        raise ParameterError("path", f"{{param}} {label}: expected a list of lines, or a mapping with 'steps'")
    extra = set(data) - {"steps", "symbols", "assume", "where", "rename", "note"}
    if extra:
        raise ParameterError("path", f"{{param}} {label}: unknown field(s) {sorted(extra)}")
    try:
        return _entry({**data, "question": "", "id": "", "claim": None})
    except _Bad as bad:
        what = f"field '{bad.field}': " if bad.field else ""
        raise ParameterError("path", f"{{param}} {label}: {what}{bad.message}") from None


def claims_paths(paths: list[str | os.PathLike]) -> list[str]:
    """The claims files named: each file as it is, each folder's ``*.yaml``/``*.yml`` files (sorted)."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            found = sorted(os.path.join(p, n) for n in os.listdir(p) if n.endswith((".yaml", ".yml")))
            if not found:
                raise ParameterError("path", f"{{param}} {p}: a folder without claims files (*.yaml)")
            out.extend(found)
        else:
            out.append(str(p))
    return out


class _Bad(Exception):
    def __init__(self, field_: str, message: str):
        super().__init__(message)
        self.field = field_
        self.message = message


def _text(raw: dict, key: str, optional: bool = True, allow_number: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if optional:
            return None
        raise _Bad(key, "missing")
    if isinstance(value, bool) or not isinstance(value, (str, int, float) if allow_number else str):
        raise _Bad(key, f"must be text, got {type(value).__name__}")
    return str(value)


def _entry(raw: Any) -> ClaimEntry:
    if not isinstance(raw, dict):
        raise _Bad("", "not a mapping")
    extra = set(raw) - _ENTRY_KEYS
    if extra:
        raise _Bad(min(extra), f"unknown field(s) {sorted(extra)}")
    steps = raw.get("steps") or []
    needed = {"question", "id"} | (set() if steps else {"claim"})
    missing = needed - set(raw)
    if missing:
        raise _Bad(min(missing), f"lacks {sorted(missing)}")
    rename = raw.get("rename") or {}
    if not isinstance(rename, dict) or not all(isinstance(a, str) and isinstance(b, str) for a, b in rename.items()):
        raise _Bad("rename", "'rename' must map text to text")
    claim = raw.get("claim")
    if claim is not None and (isinstance(claim, bool) or not isinstance(claim, (str, int, float))):
        raise _Bad("claim", "'claim' must be text or null")
    if not isinstance(steps, list):
        raise _Bad("steps", "must be a list of lines")
    specs = [_step(s, n) for n, s in enumerate(steps, start=1)]
    if claim is None and specs and "claim" not in raw:
        claim = specs[-1].claim
    symbols = raw.get("symbols") or {}
    if not isinstance(symbols, dict):
        raise _Bad("symbols", "must map names to specs such as 'positive' or 'indexed (0, 1)'")
    for name, spec in symbols.items():
        try:
            parse_symbol_spec(str(name), spec)
        except ValueError as exc:
            raise _Bad(f"symbols.{name}", str(exc)) from None
    return ClaimEntry(question=str(_text(raw, "question", False, True)), id=str(_text(raw, "id", False)),
                      claim=None if claim is None else str(claim), part=_text(raw, "part", True, True) or "",
                      where=_text(raw, "where", True, True), rename=dict(rename),
                      note=_text(raw, "note") or "", steps=specs,
                      symbols={str(k): str(v) for k, v in symbols.items()}, assume=_text(raw, "assume"))


def _step(raw: Any, n: int) -> StepSpec:
    where = f"steps[{n}]"
    if isinstance(raw, str):
        return StepSpec(claim=raw)
    if not isinstance(raw, dict):
        raise _Bad(where, "a line must be a mapping with a 'claim'")
    extra = set(raw) - _STEP_KEYS
    if extra:
        raise _Bad(f"{where}.{min(extra)}", f"unknown field(s) {sorted(extra)}")
    if not isinstance(raw.get("claim"), str):
        raise _Bad(f"{where}.claim", "each line needs its 'claim' as text")
    relation = raw.get("relation", "equal")
    problem = _relation_problem(relation, n)
    if problem:
        raise _Bad(f"{where}.relation", problem)
    for key in ("label", "id", "note"):
        if key in raw and not isinstance(raw[key], str):
            raise _Bad(f"{where}.{key}", "must be text")
    return StepSpec(claim=raw["claim"], label=raw.get("label", ""), relation=relation, id=raw.get("id", ""),
                    note=raw.get("note", ""))


def _relation_problem(relation: Any, n: int) -> str:
    """Why ``relation`` is not a relation of line ``n`` ("" when it is one)."""
    if isinstance(relation, str):
        word = relation.split()[0] if relation.split() else ""
        if word in _RELATION_WORDS or word in ("derivative", "solve", "multiply"):
            return ""
        return (f"unknown relation {relation!r}: use equal, start, define, identity, substitute, "
                "{derivative: x}, {solve: x}, {substitute: N, into: M} or {multiply: factor}")
    if not isinstance(relation, dict) or not relation:
        return "must be a word such as equal, or a mapping such as {derivative: x}"
    extra = set(relation) - _RELATION_KEYS
    if extra:
        return f"unknown key(s) {sorted(extra)} in the relation"
    for key in ("of", "from", "into", "substitute", "equal", "start"):
        v = relation.get(key)
        if v is None or key in ("start", "define"):
            continue
        if key in ("substitute", "equal") and v is True:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < n:
            return f"'{key}' must name an earlier line by its number (1 to {n - 1})"
    return ""


def parse_symbol_spec(name: str, spec: Any) -> tuple[bool, str, tuple | None]:
    """``(indexed, kind, interval)`` of a symbol spec such as ``positive`` or ``indexed (0, 1)``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not a symbol name (letters, digits, _)")
    if not isinstance(spec, str) or not _SPEC.match(spec.strip()):
        raise ValueError(f"spec {spec!r}: use real, positive, nonnegative, size, integer or an interval "
                         "such as (0, 1), optionally prefixed with 'indexed'")
    m = _SPEC.match(spec.strip())
    kind = m.group(2)
    interval = None
    if kind[0] in "([":
        lo, hi = (x.strip() for x in kind[1:-1].split(","))
        interval = (kind[0] == "(", lo, hi, kind[-1] == ")")
        kind = "interval"
    return bool(m.group(1)), kind, interval
