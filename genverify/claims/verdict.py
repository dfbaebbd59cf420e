"""Verdicts on a write-up's claims, and the typed row of an errata audit.

The one home of the words "correct", "incorrect", "not checkable" and
"undecided": the claim checker produces :class:`Verdict` values, and the
errata audit, the CLI and the report read them.

JSON of an :class:`ErrataRow` (``to_json``; ``from_json`` reads older rows
without the newer fields):

* ``question``, ``part``, ``id``, ``claim``, ``where``, ``verdict``,
  ``evidence``, ``note``: as before;
* ``diagnosis``: what is wrong, in words ("the claim is the result times
  sqrt(z)"); for an answer with steps, where the error enters ("the error
  enters at line 4 (Simplify): line 3 equals the verified result; ...");
  "" when correct or when nothing simple was found;
* ``steps``: the step-by-step audit, one :class:`StepRow` per line of the
  derivation (empty when the entry has no steps);
* ``first_error``: the 1-based number of the first line that does not follow
  from the one before (0: none).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum

__all__ = ["Audit", "ErrataRow", "StepRow", "StepStatus", "Verdict"]


class Verdict(str, Enum):
    """What the audit says of one transcribed answer."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_CHECKABLE = "not checkable"
    #: The check ran out of time: neither right nor wrong.
    UNDECIDED = "undecided"

    def __str__(self) -> str:
        return self.value


class StepStatus(str, Enum):
    """How one line of a derivation relates to the line it claims to follow from."""

    #: A line not derived from another: a definition, or the start of a chain.
    START = "start"
    FOLLOWS = "follows"
    #: Does not follow from the line it names (the first such line is where the error enters).
    FAILS = "fails"
    #: Does not follow from the line before as written, but from that line as it should have been.
    FOLLOWS_CORRECTED = "follows corrected"
    NOT_CHECKABLE = "not checkable"
    UNDECIDED = "undecided"

    def __str__(self) -> str:
        return self.value


@dataclass
class StepRow:
    """One line of a step-by-step audit (STACK's Equiv, for a derivation).

    ``n`` (1-based), ``label`` (the write-up's words: "Simplify"), ``claim``
    (the line as written), ``relation`` (in words: "equal to line 3",
    "derivative of line 1 with respect to pi_k"), ``status``
    (:class:`StepStatus`), ``evidence`` (the counterexample or the proof),
    ``diagnosis`` (what is wrong), ``versus_result`` ("equals the verified
    result" / "differs from the verified result: ..." / ""), ``corrected``
    (the line as it should have been, when it fails and that is known).
    """

    n: int
    label: str
    claim: str
    relation: str
    status: StepStatus
    evidence: str = ""
    diagnosis: str = ""
    versus_result: str = ""
    corrected: str = ""

    def to_json(self) -> dict:
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_json(cls, data: dict) -> StepRow:
        return cls(**{**data, "status": StepStatus(data["status"])})


@dataclass
class ErrataRow:
    """One audited answer of a write-up (see the module docstring for its JSON)."""

    question: str
    part: str
    id: str
    claim: str
    where: str
    verdict: Verdict
    evidence: str
    note: str = ""
    diagnosis: str = ""
    steps: list[StepRow] = field(default_factory=list)
    first_error: int = 0

    def to_json(self) -> dict:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["steps"] = [s.to_json() for s in self.steps]
        return data

    @classmethod
    def from_json(cls, data: dict) -> ErrataRow:
        steps = [StepRow.from_json(s) for s in data.get("steps", [])]
        return cls(**{**data, "verdict": Verdict(data["verdict"]), "steps": steps})


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
    def from_json(cls, data: dict) -> Audit:
        return cls(title=data["title"], source=data["source"], rows=[ErrataRow.from_json(r) for r in data["rows"]])
