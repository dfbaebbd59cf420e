"""Verdicts on a write-up's claims, and the typed row of an errata audit.

The one home of the words "correct", "incorrect" and "not checkable": the
claim checker produces :class:`Verdict` values, and the errata audit, the
CLI and the report read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Verdict", "ErrataRow"]


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
