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


def load_or_run(exp: Experiment, config_kwargs: dict, cache_dir: Path, fresh: bool, registry_digest: str,
                progress: Progress) -> ExpRun:
    """``exp``'s output from the cache, or run now with ``ExperimentConfig(**config_kwargs)``; never raises
    for a failing experiment (the :class:`ExpRun` holds its traceback)."""
    key_config = {k: (str(v) if isinstance(v, Path) else v) for k, v in config_kwargs.items()
                  if k not in ("show_progress",)}
    key_config["data"] = rcache.data_dir_listing(config_kwargs.get("data_dir"))
    reads_registry = rcache.reads_registry(exp)
    key = rcache.experiment_key(exp, key_config, registry_digest if reads_registry else None)
    folder = cache_dir / "experiments" / rcache.safe_name(exp.id)
    target = folder / key[:20]
    t0 = time.perf_counter()
    if not fresh:
        meta = rcache.read_json(target / "output.json")
        if meta is not None:
            progress.line(f"experiment {exp.id}: cached ({meta.get('seconds', 0):.1f} s when computed)")
            return ExpRun(exp, ExperimentOutput.from_json(meta["output"]), target, time.perf_counter() - t0,
                          float(meta.get("seconds", 0.0)), True)
    folder.mkdir(parents=True, exist_ok=True)
    work = folder / f"partial-{key[:20]}"
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    resuming = work.is_dir() and any(work.iterdir())
    work.mkdir(parents=True, exist_ok=True)
    rcache.prune(folder, work.name, "partial-*", n_keep=3)
    progress.line(f"experiment {exp.id} (question {exp.question}): "
                  f"{'resuming an interrupted run' if resuming else 'running'}, preset {config_kwargs['preset']} ...")
    try:
        output = exp.runner()(ExperimentConfig(out_dir=work, **config_kwargs))
        if not isinstance(output, ExperimentOutput):
            raise TypeError(f"experiment {exp.id!r} returned {type(output).__name__}, not ExperimentOutput")
        seconds = time.perf_counter() - t0
        rcache.write_json(work / "output.json", {"id": exp.id, "key": key, "seconds": seconds,
                                                 "config": key_config, "reads_registry": reads_registry,
                                                 "output": output.to_json()})
        # Round-trip now, so the report renders exactly what a warm run will read back.
        output = ExperimentOutput.from_json(rcache.read_json(work / "output.json")["output"])
    except Exception as exc:  # noqa: BLE001 - reported with its traceback; the build then stops
        (work / "output.json").unlink(missing_ok=True)
        err = "".join(traceback.format_exception(exc))[-3000:]
        progress.line(f"experiment {exp.id}: FAILED ({type(exc).__name__}: {exc})")
        return ExpRun(exp, None, None, time.perf_counter() - t0, time.perf_counter() - t0, False, err)
    if target.exists():
        stale = folder / f".old-{os.getpid()}-{time.monotonic_ns()}"
        os.rename(target, stale)
        shutil.rmtree(stale, ignore_errors=True)
    os.rename(work, target)
    rcache.prune(folder, target.name, "[0-9a-f]*")
    progress.line(f"experiment {exp.id}: done in {seconds:.1f} s")
    return ExpRun(exp, output, target, time.perf_counter() - t0, seconds, False)
