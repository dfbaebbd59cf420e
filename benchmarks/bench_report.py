"""How long `genverify report` takes, cold and warm (issues 7, 13 and 18).

Targets, for the ``quick`` preset on the 2-core CPU, in every format the machine can
build (the PDF where TeX is installed, and the HTML page):

* cold (empty caches: every derivation, check and experiment computed): at most 60 seconds
  (issue 18; the parts run side by side, one process per core);
* warm (everything reused from the cache; only typesetting, the HTML page and LaTeX): at most
  5 seconds.

Runs the command exactly as a user does (``genverify report --preset quick --out DIR``, a
fresh process each time) into a temporary directory, with the on-disk cache of derivations
and of the registry's index (``GENVERIFY_CACHE_DIR``) in a new folder there too: the cold
build starts from nothing, and the user's own caches and report are untouched. One cold
build, then ``--warm-runs`` warm builds (median reported). Prints each time as a ratio of
its target (below 1 meets it) with the load average before and after (other processes
slow every build), and the slowest parts of the cold build from its ``report.json``
(seconds each part took, side by side with others). Asserts nothing about time.

Usage: ``python benchmarks/bench_report.py [--preset quick] [--warm-runs 3] [--jobs N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"cold": 60.0, "warm": 5.0}


def genverify_command() -> list[str]:
    exe = Path(sys.executable).with_name("genverify")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "genverify"]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def build(out: Path, preset: str, jobs: int | None = None) -> tuple[float, dict]:
    cmd = genverify_command() + ["report", "--preset", preset, "--out", str(out)]
    cmd += ["--jobs", str(jobs)] if jobs else []
    env = dict(os.environ, GENVERIFY_CACHE_DIR=str(out.parent / "user-cache"))
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    build.cpu = _cpu() - c0  # the build's and its workers' CPU seconds
    if proc.returncode not in (0, 1) or not (out / "report.html").is_file():
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}")
    return seconds, json.loads((out / "report.json").read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="quick", choices=("quick", "homework"))
    ap.add_argument("--warm-runs", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="build in DIR (new or empty; kept) instead of a temporary directory")
    ap.add_argument("--jobs", type=int, default=None, help="genverify report --jobs (default: one per core)")
    args = ap.parse_args()
    if args.warm_runs < 1:
        raise SystemExit("--warm-runs must be >= 1")

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    out = root / "build"
    if args.keep:  # a cold build needs an empty cache: never clear someone's directory, ask for a new one
        if root.exists() and any(root.iterdir()):
            raise SystemExit(f"--keep {root}: give a new or empty directory (a cold build needs an empty cache)")
        root.mkdir(parents=True, exist_ok=True)
    try:
        print(f"genverify report --preset {args.preset}: {os.cpu_count()} CPU cores, "
              f"latexmk {'found (PDF and HTML)' if shutil.which('latexmk') else 'absent (HTML only)'}", flush=True)
        print(f"load average before the cold build: {load()}", flush=True)
        cold, data = build(out, args.preset, args.jobs)
        cold_cpu = build.cpu
        print(f"load average after it: {load()}", flush=True)
        print(f"experiments: {', '.join(data['experiments']) or '(none)'}; results: {len(data['results'])}; "
              f"checks passed {data['checks_passed']}/{data['checks_total']}", flush=True)
        warm = []  # (seconds, parts reused, parts)
        for _ in range(args.warm_runs):
            t, warm_data = build(out, args.preset, args.jobs)
            parts = [p for p in warm_data["parts"] if p["name"].startswith(("result", "experiment"))]
            warm.append((t, sum(p["cached"] for p in parts), len(parts)))
        # A warm run that recomputed something (the code changed under it) is not a warm run.
        full = [t for t, reused, n in warm if reused == n] or [t for t, _, _ in warm]
        warm_t = statistics.median(full)
        print()
        print(f"{'build':<6} {'seconds':>9} {'target':>8} {'ratio':>7}")
        print(f"{'cold':<6} {cold:9.1f} {TARGETS['cold']:8.0f} {cold / TARGETS['cold']:7.2f}   "
              f"(CPU {cold_cpu:.1f} s in all processes: {cold_cpu / (os.cpu_count() or 1):.1f} s per core; "
              "on a shared machine the wall time exceeds that by what others took)")
        print(f"{'warm':<6} {warm_t:9.1f} {TARGETS['warm']:8.0f} {warm_t / TARGETS['warm']:7.2f}   (median of "
              f"{len(full)} fully cached runs)")
        for i, (t, reused, n) in enumerate(warm, 1):
            print(f"  warm run {i}: {t:.1f} s, {reused}/{n} parts from the cache")
        print(f"load average after the warm builds: {load()}")
        print("\nslowest parts of the cold build (s; parts run side by side, so they add up to more than the build):")
        for p in sorted(data["parts"], key=lambda p: -p["seconds"])[:8]:
            print(f"  {p['seconds']:7.1f}  {p['name']}")
        latex = next((p["seconds"] for p in warm_data["parts"] if p["name"].startswith("LaTeX")), 0.0)
        html = next((p["seconds"] for p in warm_data["parts"] if p["name"].startswith("HTML")), 0.0)
        print(f"\nin the last warm build: LaTeX {latex:.1f} s, the HTML page {html:.1f} s (LaTeX runs in its own "
              f"process meanwhile); formats {', '.join(warm_data.get('formats', []))}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
