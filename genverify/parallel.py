"""Independent jobs in forked worker processes, longest first: the report's parts, the errata's answers.

:func:`run_jobs` runs :class:`Job` s in a pool of ``workers`` processes forked from the
build (``fork``: each worker sees the build's state as it is, users' results modules
and any test's stand-ins included, and a job is an index into :data:`_JOBS`, so
nothing but its answer is pickled). Jobs start longest first (their ``cost``), so
the long experiments are not left for last and the many short results fill the gaps.

A job runs ``job.run(note, *job.args)``; ``note(text)`` sends a line of progress to the
build (shown on the bar of the job's ``kind``). Its return value comes back pickled and
goes to ``job.done`` in the build's process, which may return more jobs (an experiment's
stages, then its run: :mod:`genverify.report.parts`). An exception in a job becomes a
``JobError`` (the part reports it); a worker that dies fails the jobs running beside it
and those not started, saying so, and the build stops as for any failed part.

Threads: a worker gets ``cores // workers`` threads for NumPy's BLAS and torch (at
least one), so parts running side by side do not oversubscribe the cores. Parts
share derivations through the disk cache (:mod:`genverify.diskcache`), where a
derivation is computed by one process while the others wait for it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Job", "JobError", "run_jobs", "can_fork", "default_workers", "threads_per_worker", "limit_threads"]


@dataclass
class Job:
    """One part's work: ``run(note, *args)`` in a worker; ``cost`` (seconds, a guess) orders the jobs.

    A job added while the pool runs (an earlier job's ``done`` returns it) reuses the ``run`` of
    an earlier job, ``base`` (its index), with its own ``args``: the workers were forked before
    it existed.
    """

    kind: str  # "results", "experiments", "errata": the progress bar it counts on
    name: str
    run: Callable[..., Any] | None
    cost: float = 1.0
    base: int | None = None
    args: tuple = ()
    #: Called in the build's process with the answer; may return jobs to run next.
    done: Callable[[Any], list[Job] | None] | None = None


@dataclass
class JobError:
    """A job that raised (or whose worker died): the end of the traceback."""

    message: str


#: The jobs of the running pool, read by the forked workers by index.
_JOBS: list[Job] = []
_NOTES: Any = None  # the queue of progress notes, inherited by the workers


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def default_workers() -> int:
    """One worker per core (the machine's CPU count, or what this process may use)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """The cores shared out among ``workers`` processes running side by side: ``cores // workers``, at least 1."""
    return max(1, default_workers() // max(1, workers))


def limit_threads(n: int) -> None:
    """At most ``n`` threads for BLAS and torch in this process (torch reads the variables when imported).

    For a process that runs beside others on the same cores (a build's worker, a pytest-xdist
    worker): more threads than its share of the cores only make them wait on each other.
    """
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits  # here: only workers need it

        threadpool_limits(n)
    except Exception:  # noqa: BLE001 - a limit that cannot be set leaves the default
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def _init(threads: int) -> None:
    limit_threads(threads)


def _work(index: int, base: int | None, args: tuple) -> Any:
    job = _JOBS[index if base is None else base]

    def note(text: str) -> None:
        try:
            _NOTES.put((index, str(text)))
        except Exception:  # noqa: BLE001 - progress is best effort
            pass

    note("")  # started
    try:
        return job.run(note, *args)
    except BaseException as exc:  # noqa: BLE001 - reported by the part, as a failure in-process would be
        return JobError("".join(traceback.format_exception(exc))[-3000:])


def run_jobs(jobs: list[Job], workers: int, *, on_start: Callable[[int], None] | None = None,
             on_note: Callable[[int, str], None] | None = None,
             on_done: Callable[[int, Any], None] | None = None,
             display: contextlib.AbstractContextManager | None = None) -> list[Any]:
    """Run ``jobs`` in ``workers`` forked processes; their answers in the order of ``jobs``.

    ``on_start(i)``, ``on_note(i, text)``, then ``job.done(answer)`` and ``on_done(i, answer)``
    are called in this process as job ``i`` starts, reports progress and ends; ``job.done`` may
    return new jobs (with ``base``), which join ``jobs`` (the list grows). A job starts when a
    worker is free, the costliest first. ``display`` (progress bars) is entered once the
    workers exist: its drawing thread must not be running when they fork (a lock it holds
    would stay locked in them).
    """
    global _JOBS, _NOTES
    if not jobs:
        return []
    ctx = multiprocessing.get_context("fork")
    answers: list[Any] = [None] * len(jobs)
    threads = threads_per_worker(workers)
    _JOBS, _NOTES = jobs, ctx.SimpleQueue()
    started: set[int] = set()
    waiting = list(range(len(jobs)))
    running: dict = {}
    broken: list[str] = []  # why the pool cannot run more jobs (a worker died)

    def start_next(pool) -> None:
        while waiting and len(running) < workers and not broken:
            i = max(waiting, key=lambda j: (jobs[j].cost, -j))
            try:
                running[pool.submit(_work, i, jobs[i].base, jobs[i].args)] = i
            except BrokenProcessPool as exc:
                broken.append(f"{type(exc).__name__}: {exc}")
                return
            waiting.remove(i)

    def begin(i: int) -> None:
        if i not in started:
            started.add(i)
            if on_start is not None:
                on_start(i)

    def drain() -> None:
        while not _NOTES.empty():
            i, text = _NOTES.get()
            begin(i)
            if text and on_note is not None:
                on_note(i, text)

    def finish(i: int, answer: Any) -> None:
        answers[i] = answer
        begin(i)
        more = jobs[i].done(answer) if jobs[i].done is not None else None
        if on_done is not None:
            on_done(i, answer)
        for job in more or ():
            jobs.append(job)
            answers.append(None)
            waiting.append(len(jobs) - 1)

    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init,
                                 initargs=(threads,)) as pool:
            start_next(pool)  # the first submit forks every worker
            with display if display is not None else contextlib.nullcontext():
                while running:
                    done, _ = wait(set(running), timeout=0.2, return_when=FIRST_COMPLETED)
                    drain()
                    for fut in sorted(done, key=lambda f: running[f]):
                        i = running.pop(fut)
                        try:
                            answer = fut.result()
                        except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory, a crash)
                            broken.append(f"{type(exc).__name__}: {exc}")
                            answer = JobError(f"a worker process died while running {jobs[i].name} (or a part "
                                              f"beside it): {type(exc).__name__}: {exc}")
                        finish(i, answer)
                    start_next(pool)
                while waiting:  # the pool broke: what has not run fails, saying why
                    finish(waiting.pop(0), JobError(f"not run: a worker process died ({broken[0]})"))
    finally:
        _JOBS, _NOTES = [], None
    return answers
