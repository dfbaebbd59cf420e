"""The report's sections: every registered question, in order, then the errata.

The questions live in the registry (:func:`genverify.registry.questions`): the
homework's (:mod:`genverify.results.questions`) first, then those of users'
results modules. The report groups every registered result and experiment
under the question it answers: a result's ``question`` ("5c") or an errata
row's ("2b-iii") belongs to the longest key that it starts with
(:func:`section_key`). ``planned`` says what a section will hold while nothing
is registered for it yet.

:data:`QUESTIONS` is a live, read-only sequence: iterating it reads the
registry each time, so a results module loaded after this module was imported
still gets its sections.
"""

from __future__ import annotations

from collections.abc import Sequence

from genverify import registry
from genverify.core import Question

__all__ = ["ERRATA", "QUESTIONS", "Question", "questions", "section_key"]

#: Key of the errata section (the write-up's answers, checked).
ERRATA = "errata"

_ERRATA_QUESTION = Question(ERRATA, "Errata of the write-up",
                            "Every formula of the write-up's answers, checked against the verified results.",
                            "the audit of every transcribed formula of the write-up.")


def questions() -> tuple[Question, ...]:
    """The report's sections in order: the registered questions, then the errata."""
    return (*(q for q in registry.questions() if q.key != ERRATA), _ERRATA_QUESTION)


class _Questions(Sequence):
    """:func:`questions` as a sequence that is read again on every use."""

    def __getitem__(self, index):
        return questions()[index]

    def __len__(self) -> int:
        return len(questions())

    def __iter__(self):
        return iter(questions())

    def __repr__(self) -> str:
        return f"QUESTIONS{questions()!r}"


#: The report's sections (see the module docstring: read from the registry on every use).
QUESTIONS: Sequence[Question] = _Questions()


def section_key(question: str) -> str | None:
    """The key of the section ``question`` belongs to ("2b-iii" -> "2b", "3d" -> "3"), or ``None``."""
    if str(question).strip().lower() == ERRATA:
        return ERRATA
    return registry.question_of(question)
