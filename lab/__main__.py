"""`python -m lab [SCENARIO|all] [--report DIR]`: the network lab, end to end (`make lab`).

Needs root (network namespaces). Cleans up stale namespaces from an interrupted run first, and
its own on exit and on Ctrl-C. Exit 0 only when every scenario run passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

from lab.netns import Topology, exclusive, remove_stale
from lab.scenarios import NAMES, Outcome, run
from lab.topology import PREFIX
from probes import cli
from probes.report import HTML

TOOLS = ("ip", "nft", "docker-registry", "skopeo", "openssl", "tracepath")
LONG = ("intermittent",)


def preflight() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root: it creates network namespaces. Run it as root (sudo make lab)."
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        return f"missing tools: {', '.join(missing)}; run `make deps` as root"
    return None


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", nargs="?", default="default", choices=["default", *NAMES, "all"],
                   help="default: blackhole then mirror; all: every scenario but intermittent (minutes long: run it by itself)")
    p.add_argument("--report", type=Path, default=Path("lab-report"), help="report folder (default lab-report/)")
    args = p.parse_args(argv)
    problem = preflight()
    if problem:
        print(f"lab: {problem}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    # intermittent runs a schedule of several minutes: by itself only (make lab SCENARIO=intermittent)
    names = {"all": [n for n in NAMES if n not in LONG], "default": ["blackhole", "mirror"]}.get(args.scenario, [args.scenario])
    try:
        with exclusive():  # waits while another lab or real-kernel test run uses namespaces
            stale = remove_stale(PREFIX)
        if stale:
            print(f"lab: removed {len(stale)} namespaces left by an interrupted run")
        outcomes = [run_one(name, args.report / name if len(names) > 1 else args.report) for name in names]
    except KeyboardInterrupt:
        print("lab: interrupted; namespaces removed", file=sys.stderr)
        return 130
    for o in outcomes:
        print(summary_line(o))
        if (o.report_dir / HTML).exists():
            print(f"lab: {o.scenario}: charts and report in one page: {(o.report_dir / HTML).resolve()}")
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


def run_one(name: str, folder: Path) -> Outcome:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with Topology(PREFIX) as topo, tempfile.TemporaryDirectory(prefix="netstab-lab-") as work:
        return run(name, topo, Path(work), folder, print)


def summary_line(o: Outcome) -> str:
    fix = o.timings.get("first probe to verified fix")
    diagnosed = o.timings.get("first probe to diagnosis")
    detail = f"diagnosis {diagnosed:.1f}s after the first probe" if diagnosed is not None else ""
    detail += f", verified fix after {fix:.1f}s" if fix is not None else ""
    why = f" [{'; '.join(o.problems)}]" if o.problems else ""
    return (f"lab: {o.scenario}: {'PASS' if o.passed else 'FAIL'} - {o.headline}{why} ({detail + '; ' if detail else ''}"
            f"total {o.timings['total']:.1f}s) -> {o.report_dir}/REPORT.md")


if __name__ == "__main__":
    cli.run(main)
