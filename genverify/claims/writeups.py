"""Write-ups as data: a claims file lists a homework's answers, each a formula to check.

A claims file is YAML: a ``homework`` title and a list of ``entries``, each
with the homework ``question``, the registry ``id`` it claims, the ``claim``
(the student's formula, LaTeX as written; null when the write-up gives none)
and optionally ``part``, ``where`` (one region of a piecewise answer),
``rename`` (the student's notation -> the registry's symbols) and ``note``.
The homework's own write-up ships as :data:`DEFAULT_CLAIMS`; nothing in it
says whether an answer is right (the errata audit,
:mod:`genverify.claims.errata`, decides that by checking).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.resources import files

import yaml

from genverify.core import ParameterError

__all__ = ["ClaimEntry", "load_claims", "DEFAULT_CLAIMS"]

#: The transcribed claims of the homework write-up, shipped with the package.
DEFAULT_CLAIMS = "homework2.yaml"
_ENTRY_KEYS = {"question", "part", "id", "claim", "where", "rename", "note"}


@dataclass
class ClaimEntry:
    """One transcribed answer: which result it claims, the LaTeX as written, an optional region."""

    question: str
    id: str
    claim: str | None
    part: str = ""
    where: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    note: str = ""

    def text_to_check(self) -> str | None:
        """The claim with the ``rename`` replacements applied (the student's notation -> registry symbols)."""
        if self.claim is None:
            return None
        text = self.claim
        for old, new in self.rename.items():
            text = text.replace(old, new)
        return text


def load_claims(path: str | os.PathLike | None = None) -> tuple[str, list[ClaimEntry]]:
    """Read a claims file (default: the packaged :data:`DEFAULT_CLAIMS`); return (title, entries).

    A missing file is ``FileNotFoundError``; a malformed one a
    :class:`~genverify.core.ParameterError` naming ``path``.
    """
    if path is None:
        text = files("genverify.claims").joinpath(DEFAULT_CLAIMS).read_text(encoding="utf-8")
        label = DEFAULT_CLAIMS
    else:
        label = str(path)
        with open(path, encoding="utf-8") as fh:
            text = fh.read()

    def bad(problem: str) -> ParameterError:
        return ParameterError("path", f"{{param}} {label}: {problem}")

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise bad(f"not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise bad("expected a mapping with a list under 'entries'")
    entries = []
    for k, raw in enumerate(data["entries"]):
        if not isinstance(raw, dict):
            raise bad(f"entry {k} is not a mapping")
        extra = set(raw) - _ENTRY_KEYS
        if extra:
            raise bad(f"entry {k} has unknown field(s) {sorted(extra)}")
        missing = {"question", "id", "claim"} - set(raw)
        if missing:
            raise bad(f"entry {k} lacks {sorted(missing)}")
        rename = raw.get("rename") or {}
        if not isinstance(rename, dict) or not all(isinstance(a, str) and isinstance(b, str)
                                                   for a, b in rename.items()):
            raise bad(f"entry {k}: 'rename' must map text to text")
        claim = raw["claim"]
        if claim is not None and not isinstance(claim, (str, int, float)):
            raise bad(f"entry {k}: 'claim' must be text or null")
        entries.append(ClaimEntry(question=str(raw["question"]), id=str(raw["id"]),
                                  claim=None if claim is None else str(claim), part=str(raw.get("part") or ""),
                                  where=None if raw.get("where") is None else str(raw["where"]),
                                  rename=dict(rename), note=str(raw.get("note") or "")))
    return str(data.get("homework", label)), entries
