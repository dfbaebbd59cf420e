"""Running the registry's checks: the engine behind ``genverify verify`` and the report."""

from __future__ import annotations

import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from genverify.core import Check, Outcome, Result


@dataclass
class CheckRecord:
    """One row of the verification table."""

    result_id: str
    check: str
    kind: str
    passed: bool
    figure: str
    detail: str = ""
    seconds: float = 0.0
    data: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "verified" if self.passed else "FAILED"


def check_seed(result_id: str, check_name: str, base_seed: int = 0) -> int:
    """A stable per-check seed, so each check is reproducible on its own."""
    return (zlib.crc32(f"{result_id}/{check_name}".encode()) + base_seed) % (2**32)


def run_check(result: Result, chk: Check, base_seed: int = 0) -> CheckRecord:
    rng = np.random.default_rng(check_seed(result.id, chk.name, base_seed))
    t0 = time.perf_counter()
    try:
        out = chk.run(result, rng)
    except Exception as exc:  # a crashing check is a failed check, with its traceback
        out = Outcome(False, f"error: {type(exc).__name__}", "".join(traceback.format_exception(exc))[-2000:])
    return CheckRecord(result.id, chk.name, chk.kind, bool(out.passed), out.figure, out.detail,
                       time.perf_counter() - t0, out.data)


def run_checks(results: Iterable[Result], base_seed: int = 0,
               on_progress: Callable[[CheckRecord], None] | None = None) -> list[CheckRecord]:
    """Run every check of every result; ``on_progress`` is called after each."""
    records = []
    for result in results:
        for chk in result.checks:
            rec = run_check(result, chk, base_seed)
            records.append(rec)
            if on_progress is not None:
                on_progress(rec)
    return records
