"""An experiment's part of the report: run with the preset's settings into the cache, or read back.

The key (:func:`genverify.report.cache.experiment_key`) covers the experiment's code
(the import closure of its ``run``'s module), its settings (preset, seed, device, a
listing of the data directory) and the libraries; an experiment whose code reaches
the registry also keys on every registered result.

Each key has a stable working directory: an interrupted or failed run leaves its
checkpoints there, and the next build with the same code and settings resumes from
them (``fresh`` starts over). A finished run's directory becomes the cache entry,
with ``output.json`` (the :class:`~genverify.core.ExperimentOutput`) beside its figures.
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from genverify.core import Experiment, ExperimentConfig, ExperimentOutput
from genverify.report import cache as rcache
from genverify.report.progress import Progress

__all__ = ["ExpRun", "load_or_run"]


@dataclass
class ExpRun:
    """One experiment of the build: its output (None if it failed) and the folder holding its figures."""

    exp: Experiment
    output: ExperimentOutput | None
    dir: Path | None
    seconds: float  # spent in this build
    computed_seconds: float  # what running it took (now, or when it was cached)
    cached: bool
    error: str = ""  # the traceback's end, when it failed


@dataclass
class ExpPlan:
    """Where an experiment's run goes, decided in the build's process; ``cached`` when there is nothing to run."""

    exp: Experiment
    key: str
    key_config: dict
    reads_registry: bool
    folder: Path
    target: Path
    work: Path
    cached: ExpRun | None = None
    resuming: bool = False


def plan(exp: Experiment, config_kwargs: dict, cache_dir: Path, fresh: bool, registry_digest: str) -> ExpPlan:
    """``exp``'s cache entry, read back when it is there (unless ``fresh``); else where to run it."""
    key_config = {k: (str(v) if isinstance(v, Path) else v) for k, v in config_kwargs.items()
                  if k not in ("show_progress",)}
    key_config["data"] = rcache.data_dir_listing(config_kwargs.get("data_dir"))
    reads_registry = rcache.reads_registry(exp)
    key = rcache.experiment_key(exp, key_config, registry_digest if reads_registry else None)
    folder = cache_dir / "experiments" / rcache.safe_name(exp.id)
    target = folder / key[:20]
    out = ExpPlan(exp, key, key_config, reads_registry, folder, target, folder / f"partial-{key[:20]}")
    t0 = time.perf_counter()
    if not fresh:
        meta = rcache.read_json(target / "output.json")
        if meta is not None:
            out.cached = ExpRun(exp, ExperimentOutput.from_json(meta["output"]), target, time.perf_counter() - t0,
                                float(meta.get("seconds", 0.0)), True)
            return out
    folder.mkdir(parents=True, exist_ok=True)
    if fresh:
        shutil.rmtree(out.work, ignore_errors=True)
    out.resuming = out.work.is_dir() and any(out.work.iterdir())
    out.work.mkdir(parents=True, exist_ok=True)
    rcache.prune(folder, out.work.name, "partial-*", n_keep=3)
    return out


def starting(p: ExpPlan, preset: str) -> str:
    """The progress line as ``p``'s run starts."""
    return (f"experiment {p.exp.id} (question {p.exp.question}): "
            f"{'resuming an interrupted run' if p.resuming else 'running'}, preset {preset} ...")


def execute(p: ExpPlan, config_kwargs: dict, stage_seconds: float = 0.0) -> dict:
    """Run ``p``'s experiment (in this process or a build's worker) and move its folder into the cache.

    Returns plain data: ``output`` (the :class:`~genverify.core.ExperimentOutput` as JSON, as read
    back from the cache) and ``seconds`` (with ``stage_seconds``, what its stages took before),
    or ``error`` (the traceback's end).
    """
    t0 = time.perf_counter() - stage_seconds
    exp, work = p.exp, p.work
    try:
        output = exp.runner()(ExperimentConfig(out_dir=work, **config_kwargs))
        if not isinstance(output, ExperimentOutput):
            raise TypeError(f"experiment {exp.id!r} returned {type(output).__name__}, not ExperimentOutput")
        seconds = time.perf_counter() - t0
        rcache.write_json(work / "output.json", {"id": exp.id, "key": p.key, "seconds": seconds,
                                                 "config": p.key_config, "reads_registry": p.reads_registry,
                                                 "output": output.to_json()})
        # Round-trip now, so the report renders exactly what a warm run will read back.
        output_json = rcache.read_json(work / "output.json")["output"]
    except Exception as exc:  # noqa: BLE001 - reported with its traceback; the build then stops
        (work / "output.json").unlink(missing_ok=True)
        return {"error": "".join(traceback.format_exception(exc))[-3000:],
                "summary": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}
    if p.target.exists():
        stale = p.folder / f".old-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(p.target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(work, p.target)
    rcache.prune(p.folder, p.target.name, "[0-9a-f]*")
    return {"output": output_json, "seconds": seconds}


def stage_names(p: ExpPlan, config_kwargs: dict) -> list[str]:
    """The names of ``p``'s stages: pieces of its run that may go first, side by side (``run.stages``).

    An experiment's ``run`` may carry ``run.stages(config)``, a list of ``(name, callable)``:
    independent parts of its work, each leaving what it computed in ``config.out_dir`` for
    ``run`` to pick up (a model trained with ``resume="auto"``). The report runs them in
    separate processes, then ``run``; ``run`` alone does all of it.
    """
    stages = getattr(p.exp.runner(), "stages", None)
    if stages is None:
        return []
    return [name for name, _ in stages(ExperimentConfig(out_dir=p.work, **config_kwargs))]


def run_stage(p: ExpPlan, config_kwargs: dict, name: str) -> dict:
    """Run ``p``'s stage ``name`` in its working folder: ``seconds``, or ``error`` (a failed stage leaves its
    work to ``run``, which reports what goes wrong)."""
    t0 = time.perf_counter()
    try:
        dict(p.exp.runner().stages(ExperimentConfig(out_dir=p.work, **config_kwargs)))[name]()
    except Exception as exc:  # noqa: BLE001 - the experiment's run tries again, and reports the failure
        return {"error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}
    return {"seconds": time.perf_counter() - t0}


def finish(p: ExpPlan, answer: dict, seconds: float) -> tuple[ExpRun, str]:
    """The :class:`ExpRun` of ``p`` from :func:`execute`'s ``answer``, and its progress line."""
    if "error" in answer:
        return (ExpRun(p.exp, None, None, seconds, float(answer.get("seconds", seconds)), False, answer["error"]),
                f"experiment {p.exp.id}: FAILED ({answer.get('summary', 'see the report')})")
    run = ExpRun(p.exp, ExperimentOutput.from_json(answer["output"]), p.target, seconds, answer["seconds"], False)
    work = f" ({answer['seconds']:.1f} s of work, in stages side by side)" if answer["seconds"] > seconds + 1 else ""
    return run, f"experiment {p.exp.id}: done in {seconds:.1f} s{work}"


def load_or_run(exp: Experiment, config_kwargs: dict, cache_dir: Path, fresh: bool, registry_digest: str,
                progress: Progress) -> ExpRun:
    """``exp``'s output from the cache, or run now with ``ExperimentConfig(**config_kwargs)``; never raises
    for a failing experiment (the :class:`ExpRun` holds its traceback)."""
    t0 = time.perf_counter()
    p = plan(exp, config_kwargs, cache_dir, fresh, registry_digest)
    if p.cached is not None:
        progress.line(f"experiment {exp.id}: cached ({p.cached.computed_seconds:.1f} s when computed)")
        return p.cached
    progress.line(starting(p, config_kwargs["preset"]))
    answer = execute(p, config_kwargs)
    run, line = finish(p, answer, time.perf_counter() - t0)
    progress.line(line)
    return run
