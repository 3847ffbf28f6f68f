"""`make lab` timings: wall time and time from the first probe to the diagnosis (and to the
verified fix), median of a few runs of the default scenario."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, write_section

REPO = Path(__file__).resolve().parent.parent
RUNS = 3
LINE = re.compile(r"diagnosis ([\d.]+)s after the first probe, verified fix after ([\d.]+)s; total ([\d.]+)s")


def main() -> None:
    walls, diagnosis, fixed = [], [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as report:
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "lab", "blackhole", "--report", report], cwd=REPO, capture_output=True, text=True, timeout=600)
            walls.append(time.monotonic() - start)
        match = LINE.search(done.stdout)
        if done.returncode != 0 or not match:
            raise SystemExit(f"bench: the lab failed:\n{done.stdout}\n{done.stderr}")
        diagnosis.append(float(match.group(1)))
        fixed.append(float(match.group(2)))
    body = f"""`python -m lab blackhole` (what `make lab` runs, after its setup), {RUNS} runs, medians. Target: under two minutes.

| measure | median (s) | runs (s) |
| --- | ---: | --- |
| wall time, process start to exit | {median(walls):.1f} | {", ".join(f"{w:.1f}" for w in walls)} |
| first probe to diagnosis (Phase 1 from 3 hosts + mss-sweep) | {median(diagnosis):.1f} | {", ".join(f"{d:.1f}" for d in diagnosis)} |
| first probe to verified fix (clamp applied, probes pass) | {median(fixed):.1f} | {", ".join(f"{f:.1f}" for f in fixed)} |

No side-by-side baseline exists for the lab as a whole: the plan's manual equivalent (curl loops,
crictl pulls, tracepath, a hand-edited firewall) has no fixed duration, and tracepath alone
never reaches the right answer across this black hole (see the mss-sweep section)."""
    write_section("make lab", body)


if __name__ == "__main__":
    main()
