"""Verdicts on a write-up's claims, and the typed row of an errata audit.

The one home of the words "correct", "incorrect" and "not checkable": the
claim checker produces :class:`Verdict` values, and the errata audit, the
CLI and the report read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

__all__ = ["Verdict", "ErrataRow", "Audit"]


class Verdict(str, Enum):
    """What the audit says of one transcribed answer."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_CHECKABLE = "not checkable"

    def __str__(self) -> str:
        return self.value


@dataclass
class ErrataRow:
    """One audited answer of a write-up."""

    question: str
    part: str
    id: str
    claim: str
    where: str
    verdict: Verdict
    evidence: str
    note: str = ""

    def to_json(self) -> dict:
        return {**asdict(self), "verdict": self.verdict.value}

    @classmethod
    def from_json(cls, data: dict) -> "ErrataRow":
        return cls(**{**data, "verdict": Verdict(data["verdict"])})


@dataclass
class Audit:
    """The audit of one write-up: its title, where it came from, a row per transcribed answer."""

    title: str
    source: str
    rows: list[ErrataRow] = field(default_factory=list)

    def counts(self) -> dict[Verdict, int]:
        """How many rows have each verdict (every verdict present, zeros included)."""
        return {v: sum(r.verdict == v for r in self.rows) for v in Verdict}

    def to_json(self) -> dict:
        return {"title": self.title, "source": self.source, "rows": [r.to_json() for r in self.rows]}

    @classmethod
    def from_json(cls, data: dict) -> "Audit":
        return cls(title=data["title"], source=data["source"], rows=[ErrataRow.from_json(r) for r in data["rows"]])
