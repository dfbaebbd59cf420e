"""`genverify check` on a simple claim, from the shell: median of N runs against the 1.5 s target (issue 16).

Runs the issue's example command as a user would (a fresh process each time)::

    genverify check lognormal-pdf '1/(z*sigma*sqrt(2*pi))*exp(-(log(z)-mu)**2/(2*sigma**2))'

and prints each run's wall time, the median in seconds, and the median as a
ratio to the target (<= 1.0 meets it), with the load average before and after
(other processes on the machine slow every run). ``--breakdown`` also times,
in one process, the import of the command line and of the claim checker, the
registry's loading of the result (only the module declaring it), its derivation
(from the disk cache) and the check itself, to show where the time goes. Asserts nothing about time,
only that every run exits 0 (the claim is equivalent).

Usage: ``python benchmarks/bench_check.py [--runs 7] [--target 1.5] [--breakdown] [--claim EXPR] [--id ID]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

ID = "lognormal-pdf"
CLAIM = "1/(z*sigma*sqrt(2*pi))*exp(-(log(z)-mu)**2/(2*sigma**2))"
TARGET = 1.5


def _command() -> list[str]:
    exe = shutil.which("genverify", path=os.path.dirname(sys.executable)) or shutil.which("genverify")
    return [exe] if exe else [sys.executable, "-m", "genverify"]


def _breakdown(rid: str, claim: str) -> None:
    # The steps of `genverify check` in one process, in its order: the registry loads only the
    # module declaring the id (its index says which), the derivation comes from the disk cache.
    code = (
        "import time; t0 = time.perf_counter()\n"
        "import genverify.cli; t1 = time.perf_counter()\n"
        "from genverify.claims.checker import check; t2 = time.perf_counter()\n"
        f"from genverify import registry; r = registry.get({rid!r}); t3 = time.perf_counter()\n"
        "r.expr; t4 = time.perf_counter()\n"
        f"v = check({rid!r}, {claim!r}); t5 = time.perf_counter()\n"
        "print(f'  import genverify.cli              {t1 - t0:6.3f} s')\n"
        "print(f'  import the claim checker (SymPy)  {t2 - t1:6.3f} s')\n"
        "print(f'  registry: the id\\'s module         {t3 - t2:6.3f} s')\n"
        "print(f'  the derivation (disk cache)       {t4 - t3:6.3f} s')\n"
        "print(f'  the check (forked child)          {t5 - t4:6.3f} s   {v.label}')\n"
    )
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    print(f"  (interpreter start and all: {time.perf_counter() - t:.3f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--target", type=float, default=TARGET, help="seconds (default 1.5)")
    ap.add_argument("--id", default=ID)
    ap.add_argument("--claim", default=CLAIM)
    ap.add_argument("--breakdown", action="store_true", help="also time the parts in one process")
    args = ap.parse_args(argv)
    cmd = [*_command(), "check", args.id, args.claim]
    print("command:", " ".join(cmd[:-1]), repr(args.claim))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    times = []
    for i in range(args.runs):
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        dt = time.perf_counter() - t
        if out.returncode != 0:
            print(out.stdout + out.stderr, file=sys.stderr)
            raise SystemExit(f"run {i + 1} exited {out.returncode}")
        times.append(dt)
        print(f"  run {i + 1}: {dt:.3f} s")
    med = statistics.median(times)
    print(f"load average after:  {os.getloadavg()[0]:.2f}")
    print(f"median {med:.3f} s over {len(times)} runs (min {min(times):.3f}, max {max(times):.3f}); "
          f"{med / args.target:.2f}x the {args.target:g} s target")
    if args.breakdown:
        print("breakdown (one process):")
        _breakdown(args.id, args.claim)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
