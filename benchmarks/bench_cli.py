"""How fast the command line answers (issue 18, and issue 16's `check`): medians of runs from the shell.

Targets on the 2-core machine, each the median of ``--runs`` fresh processes, as a user types them:

* ``genverify --help``: at most 0.2 s;
* ``genverify list``: at most 0.5 s;
* ``genverify derive lognormal-pdf``: at most 1 s, its derivation cached;
* ``genverify check lognormal-pdf '1/(z*sigma*sqrt(2*pi))*exp(-(log(z)-mu)**2/(2*sigma**2))'``: at most 1.5 s.

The commands run interleaved (one of each per round), so a change in the machine's load
touches them all alike; the load average is printed before and after (other processes
slow every run). One untimed round first fills the caches a user's first command fills
(the registry's index, the derivation, the import closures: :mod:`genverify.diskcache`),
so the figures are those of every later command. ``--cold-cache`` also times each command
once with an empty cache directory (``GENVERIFY_CACHE_DIR`` pointed at a new folder).
Asserts nothing about time; fails only if a command fails.

Usage: ``python benchmarks/bench_cli.py [--runs 7] [--cold-cache]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CLAIM = "1/(z*sigma*sqrt(2*pi))*exp(-(log(z)-mu)**2/(2*sigma**2))"
#: (label, arguments, target seconds)
COMMANDS = [
    ("--help", ["--help"], 0.2),
    ("list", ["list"], 0.5),
    ("derive (cached)", ["derive", "lognormal-pdf"], 1.0),
    ("check", ["check", "lognormal-pdf", CLAIM], 1.5),
]


def _exe() -> list[str]:
    exe = shutil.which("genverify", path=os.path.dirname(sys.executable)) or shutil.which("genverify")
    return [exe] if exe else [sys.executable, "-m", "genverify"]


def _time(args: list[str], env: dict) -> float:
    t = time.perf_counter()
    out = subprocess.run(_exe() + args, capture_output=True, text=True, env=env, check=False)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
        raise SystemExit(f"`genverify {' '.join(args)}` exited {out.returncode}")
    return dt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cold-cache", action="store_true", help="also time each command with an empty cache")
    args = ap.parse_args(argv)
    env = dict(os.environ, COLUMNS="200")
    print(f"{os.cpu_count()} CPU cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cold = {}
    if args.cold_cache:
        for label, cmd, _ in COMMANDS:
            folder = tempfile.mkdtemp(prefix="gv-cache-")
            try:
                cold[label] = _time(cmd, dict(env, GENVERIFY_CACHE_DIR=folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)
    for _, cmd, _ in COMMANDS:  # fill the caches, as a user's first commands do
        _time(cmd, env)
    times: dict[str, list[float]] = {label: [] for label, _, _ in COMMANDS}
    for _ in range(args.runs):
        for label, cmd, _ in COMMANDS:
            times[label].append(_time(cmd, env))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'command':<18} {'median s':>9} {'min s':>7} {'target s':>9} {'ratio':>6}"
          + (f" {'empty cache s':>14}" if cold else ""))
    for label, _, target in COMMANDS:
        med = statistics.median(times[label])
        print(f"{label:<18} {med:9.3f} {min(times[label]):7.3f} {target:9.2f} {med / target:6.2f}"
              + (f" {cold[label]:14.3f}" if cold else ""))
    print(f"\n(median of {args.runs} interleaved runs each; ratio <= 1 meets the target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
