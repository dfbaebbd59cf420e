"""Run every benchmark script in this folder (``make bench``).

Each ``bench_*.py`` measures its target and its baseline in the same run and
prints ratios; none of them asserts on time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    if subprocess.call([sys.executable, str(script)]) != 0:
        failed.append(script.name)
if failed:
    print(f"failed: {', '.join(failed)}", file=sys.stderr)
sys.exit(1 if failed else 0)
