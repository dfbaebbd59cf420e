"""Computing the report's parts: each result, each experiment and the errata audit.

:func:`compute_parts` reads every part it can back from the cache and computes the
others: one after the other in this process (``workers=1``), or side by side in
forked worker processes (:mod:`genverify.parallel`), longest first. Either
way a part is computed by the same function and cached the same way
(:mod:`~genverify.report.result_part`, :mod:`~genverify.report.experiment_part`,
:mod:`~genverify.report.errata_part`), so the report does not depend on how it was
built. Derivations are shared through the disk cache (:mod:`genverify.diskcache`):
the errata audit and a result's part that need the same derivation wait for the one
process computing it.

Progress: one bar per kind of part (results, experiments, errata) with what is
running, and a line per finished experiment and for the audit, as in a build in one
process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from genverify.parallel import Job, JobError, can_fork, run_jobs
from genverify.report import errata_part, experiment_part, result_part
from genverify.report.cache import Part, read_json
from genverify.report.errata_part import ErrataRun
from genverify.report.experiment_part import ExpRun
from genverify.report.progress import Progress

__all__ = ["Computed", "compute_parts"]

#: Guesses of a part's seconds when no earlier build says (the longest parts should start first).
GUESS = {"results": 2.0, "experiments": 30.0, "errata": 20.0}
#: The packaged experiments' seconds with the quick preset on one core, for a first build
#: (later builds order the parts by what they took in the build before).
GUESS_EXPERIMENTS = {"nice-vae": 50.0, "em": 10.0, "kl-fits": 8.0}


@dataclass
class Computed:
    """The parts of a build: each result's data by id, the experiments' runs, the audit, and their timings."""

    results: dict[str, dict]
    runs: list[ExpRun]
    audit: ErrataRun | None
    parts: list[Part] = field(default_factory=list)


def compute_parts(results, experiments, *, errata: bool, claims, exp_config: dict, cache_dir: Path, fresh: bool,
                  seed: int, registry_digest: str, progress: Progress, workers: int = 1) -> Computed:
    """Every part of the build, from the cache or computed (``workers`` processes at most)."""
    if workers > 1 and can_fork():
        return _in_parallel(results, experiments, errata, claims, exp_config, cache_dir, fresh, seed,
                            registry_digest, progress, workers)
    res_data, parts = result_part.load_or_compute(results, cache_dir, fresh, seed, progress)
    runs = []
    for exp in experiments:
        run = experiment_part.load_or_run(exp, exp_config, cache_dir, fresh, registry_digest, progress)
        runs.append(run)
    audit = errata_part.load_or_audit(claims, seed, cache_dir, fresh, registry_digest, progress) if errata else None
    return Computed(res_data, runs, audit, parts + _exp_parts(runs, exp_config) + ([audit.part] if audit else []))


def _exp_parts(runs: list[ExpRun], exp_config: dict) -> list[Part]:
    return [Part(f"experiment {r.exp.id} ({exp_config['preset']})", r.seconds, r.computed_seconds, r.cached)
            for r in runs]


def _previous_seconds(folder: Path, pattern: str, kind: str, guess: float | None = None) -> float:
    """What computing this part took in an earlier build (its older cache entries), or the kind's guess."""
    try:
        for path in sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True):
            data = read_json(path)
            if isinstance(data, dict) and isinstance(data.get("seconds"), (int, float)):
                return float(data["seconds"])
    except OSError:
        pass
    return GUESS[kind] if guess is None else guess


class _Board:
    """What the parallel build shows: the bars, the lines as parts start, and what each job took."""

    def __init__(self, progress: Progress, totals: dict[str, tuple[int, int]]):
        self.progress, self.t0 = progress, time.perf_counter()
        self.bars = progress.bars([(k, n) for k, (n, _) in totals.items() if n])
        self.completed = {k: cached for k, (_, cached) in totals.items()}
        self.running: dict[str, list[str]] = {k: [] for k in totals}
        self.started_at: dict[int, float] = {}  # by id() of the job
        self.lines: dict[int, str] = {}  # printed when the job starts
        for kind, n in self.completed.items():
            if n:
                self.bars.update(kind, advance=n)

    def seconds(self, job: Job) -> float:
        return time.perf_counter() - self.started_at.get(id(job), self.t0)

    def complete(self, kind: str) -> None:
        self.completed[kind] += 1
        self.bars.update(kind, advance=1)

    def on_start(self, job: Job) -> None:
        self.started_at[id(job)] = time.perf_counter()
        self.running[job.kind].append(job.name)
        self.bars.update(job.kind, description=", ".join(self.running[job.kind]))
        if id(job) in self.lines:
            self.progress.line(self.lines.pop(id(job)))

    def on_note(self, job: Job, text: str) -> None:
        if job.kind == "errata":
            self.bars.update(job.kind, description=f"{job.name}: {text}")

    def on_done(self, job: Job) -> None:
        if job.name in self.running[job.kind]:
            self.running[job.kind].remove(job.name)
        self.bars.update(job.kind, description=", ".join(self.running[job.kind]))


def _in_parallel(results, experiments, errata, claims, exp_config, cache_dir, fresh, seed, registry_digest,
                 progress: Progress, workers: int) -> Computed:
    t_all = time.perf_counter()
    # Each experiment's own bars and lines would interleave: the build shows them.
    exp_config = {**exp_config, "show_progress": False}
    jobs: list[Job] = []

    res_data: dict[str, dict] = {}
    res_parts: dict[str, Part] = {}
    todo_results = []
    for r in results:
        path = result_part.entry_path(r, cache_dir, seed)
        t0 = time.perf_counter()
        data = None if fresh else result_part.cached(r, path)
        if data is not None:
            res_data[r.id] = data
            res_parts[r.id] = result_part.part(r, data, time.perf_counter() - t0, True)
        else:
            todo_results.append((r, path))
    runs: dict[str, ExpRun] = {}
    plans = []
    for exp in experiments:
        p = experiment_part.plan(exp, exp_config, cache_dir, fresh, registry_digest)
        if p.cached is not None:
            runs[exp.id] = p.cached
            progress.line(f"experiment {exp.id}: cached ({p.cached.computed_seconds:.1f} s when computed)")
        else:
            plans.append(p)
    audit: list[ErrataRun | None] = [None]
    ep = errata_part.plan(claims, seed, cache_dir, fresh, registry_digest) if errata else None
    if ep is not None and ep.cached is not None:
        audit[0] = ep.cached
        progress.line(f"errata: cached ({ep.cached.part.computed_seconds:.1f} s when computed)")

    board = _Board(progress, {"results": (len(results), len(res_data)), "experiments": (len(experiments), len(runs)),
                              "errata": (1 if errata else 0, 0 if audit[0] is None else 1)})
    def result_job(r, path) -> Job:
        job = Job("results", r.id, lambda note: result_part.compute_and_store(r, path, seed),
                  _previous_seconds(path.parent, "*.json", "results"))

        def done(answer):
            seconds = board.seconds(job)
            if isinstance(answer, JobError):  # compute() reports a failing derivation itself: this is a crash
                answer = {"id": r.id, "steps": [], "boxed": None, "derive_error": answer.message,
                          "derive_seconds": 0.0, "records": [], "seconds": seconds}
            res_data[r.id] = answer
            res_parts[r.id] = result_part.part(r, answer, seconds, False)
            board.complete("results")

        job.done = done
        return job

    jobs += [result_job(r, path) for r, path in todo_results]
    for p in plans:
        _experiment_jobs(p, exp_config, jobs, runs, board, _previous_seconds(
            p.folder, "[0-9a-f]*/output.json", "experiments", GUESS_EXPERIMENTS.get(p.exp.id)), max(1, workers - 1))
    if ep is not None and ep.cached is None:
        def done_errata(answer):
            seconds = board.seconds(errata_job)
            if isinstance(answer, JobError):
                answer = {"error": answer.message, "summary": "the worker failed", "seconds": seconds}
            audit[0], line = errata_part.finish(ep, answer, seconds)
            progress.line(line)
            board.complete("errata")

        errata_job = Job("errata", ep.name, lambda note: errata_part.execute(ep, note),
                         _previous_seconds(ep.path.parent, "*.json", "errata"), done=done_errata)
        board.lines[id(errata_job)] = f"errata: auditing {ep.label} ..."
        jobs.append(errata_job)

    if jobs:
        run_jobs(jobs, workers, on_start=lambda i: board.on_start(jobs[i]),
                 on_note=lambda i, text: board.on_note(jobs[i], text), on_done=lambda i, a: board.on_done(jobs[i]),
                 display=board.bars)
    ran = f"; the parts computed in {time.perf_counter() - t_all:.1f} s by {workers} processes" if jobs else ""
    progress.line(f"results: {len(results)} derived and checked ({len(results) - len(todo_results)} from the "
                  f"cache){ran}")
    exp_runs = [runs[e.id] for e in experiments]
    parts = [res_parts[r.id] for r in results] + _exp_parts(exp_runs, exp_config)
    if audit[0] is not None:
        parts.append(audit[0].part)
    return Computed({r.id: res_data[r.id] for r in results}, exp_runs, audit[0], parts)


_FINAL = "\0run"  # the step of an experiment's job that runs it, after its stages


def _experiment_jobs(p, exp_config: dict, jobs: list[Job], runs: dict, board: _Board, cost: float,
                     side_by_side: int) -> None:
    """The jobs of experiment plan ``p``: one that looks whether its run comes in stages (see
    :func:`genverify.report.experiment_part.stage_names`) and runs it if not; else its stages, at most
    ``side_by_side`` at a time, then its run.

    Its stages never take every worker: two trainings side by side slow each other down (they
    share the memory bandwidth), while a training beside SymPy work barely does. A stage's cost
    is what is left of its experiment, so the experiment, often the longest part, goes first.
    """
    exp = p.exp
    index = len(jobs)  # of the first job: the later ones reuse its `run`, with a step
    pending: list[str] = []  # stages not started
    running: list[str] = []
    took = [0.0]  # the stages' seconds, one after the other
    final_share = 0.3  # of the experiment's cost: its run after the stages (scoring, figures)

    def run_exp(note, step=None, stage_seconds=0.0):
        if step is None:  # imports the experiment's module: does its run come in stages?
            names = experiment_part.stage_names(p, exp_config)
            return {"stages": names} if names else experiment_part.execute(p, exp_config)
        if step == _FINAL:
            return experiment_part.execute(p, exp_config, stage_seconds)
        return experiment_part.run_stage(p, exp_config, step)

    def finished(answer):
        seconds = board.seconds(first)  # from the start of the first job: the stages count
        if isinstance(answer, JobError):
            answer = {"error": answer.message, "summary": "the worker failed", "seconds": seconds}
        runs[exp.id], line = experiment_part.finish(p, answer, seconds)
        board.progress.line(line)
        board.complete("experiments")

    def next_jobs() -> list[Job]:
        """The stages that may start now, or the run when every stage is done."""
        if not pending and not running:
            return [Job("experiments", exp.id, None, cost * final_share, base=index, args=(_FINAL, took[0]),
                        done=finished)]
        new = []
        while pending and len(running) < side_by_side:
            name = pending.pop(0)
            running.append(name)
            left = cost * (final_share + (1 - final_share) * (len(pending) + len(running)) / n_stages[0])
            stage = Job("experiments", f"{exp.id}: {name}", None, left, base=index, args=(name,))
            stage.done = lambda answer, stage=stage: stage_done(stage, answer)
            new.append(stage)
        return new

    def stage_done(stage: Job, answer):
        running.remove(stage.args[0])
        if isinstance(answer, dict):
            took[0] += float(answer.get("seconds", 0.0))
        return next_jobs()

    n_stages = [1]

    def first_done(answer):
        if not (isinstance(answer, dict) and "stages" in answer and answer["stages"]):
            return finished(answer)
        pending.extend(answer["stages"])
        n_stages[0] = len(pending)
        return next_jobs()

    first = Job("experiments", exp.id, run_exp, cost, done=first_done)
    board.lines[id(first)] = experiment_part.starting(p, exp_config["preset"])
    jobs.append(first)
