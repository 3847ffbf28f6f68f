"""What the post-up gate adds to a healthy `pulumi up`: the lab with no fault (no black hole), the
gate run as `pulumi up` runs it (`lab.gate.gate`: the rendered probe run on cp1, worker1 and the
Proxmox host at once, then NetworkGate's create judging them and writing its report), at the
stack's default `validation` settings (20 repeats, 120 s budget) side by side with `quick: true`
(3 repeats), interleaved; on the lab's own links, and again with 40 ms RTT added on the ISP router.
The judgement alone (the judge and the report writer, on the saved evidence) is timed apart, so the
table says where the time goes."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, write_section
from components.config import ValidationConfig
from components.networkgate import write_report
from components.validation import gate_spec
from lab import gate as lab_gate
from lab import services
from lab import topology as lab_topology
from lab.netns import Topology
from lab.shaper import Shape
from lab.shaping import Route, shape_router
from probes.gate import judge_runs

RUNS = 3
SETTINGS: dict[str, dict[str, Any]] = {"quick": {"quick": True}, "defaults": {}}  # stack `validation` keys; {}: every default
TARGET_S = 15.0  # the most the gate may add at the defaults (issue 23)
WAN = Shape(delay_ms=20)  # each way: 40 ms RTT, no loss, no rate cap
# everything the ISP router forwards, both ways (as bench/mirror_bench.py shapes it)
WAN_ROUTES = [Route("203.0.113.0/24", "br-net"), Route("192.0.2.0/24", "wide0", "198.51.100.1"),
              Route(f"{lab_topology.GATEWAY_WAN_IP}/32", "narrow0", "198.51.100.5")]


def _attempts(folder: Path) -> int:
    docs = [doc for path in folder.glob("*.json") for doc in json.loads(path.read_text())]
    return sum(len(doc.get("records", [])) for doc in docs)


def _judge_only(folder: Path, config: ValidationConfig) -> float:
    """The judge and the report writer again on the gate's saved evidence, into a scratch folder."""
    evidence = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
    with tempfile.TemporaryDirectory() as scratch:
        started = time.monotonic()
        judged = judge_runs(evidence, gate_spec(config, Path(scratch), None, "auto", 0, "lab"), [])
        write_report(Path(scratch), judged.files, evidence)
        return time.monotonic() - started


def measure(shape: Shape | None) -> dict[str, dict[str, list[float]]]:
    seen: dict[str, dict[str, list[float]]] = {name: {"wall": [], "judge": [], "attempts": []} for name in SETTINGS}
    with Topology(lab_topology.PREFIX) as topo, tempfile.TemporaryDirectory(prefix="netstab-bench-") as work:
        lab_topology.build(topo, narrow_mtu=1500)  # no black hole: the healthy path
        svc = services.start(topo, Path(work))
        if shape:
            shape_router(topo, "isp", WAN_ROUTES, shape, seed=5)
        for run in range(RUNS):
            order = list(SETTINGS) if run % 2 == 0 else list(reversed(SETTINGS))
            for name in order:
                config = lab_gate.validation(services.TEST_IMAGE, SETTINGS[name])
                folder = Path(work) / f"gate-{name}-{run}"
                started = time.monotonic()
                result = lab_gate.gate(topo, svc.cert.ca, services.TEST_IMAGE, folder, None, config)
                seen[name]["wall"].append(time.monotonic() - started)
                if result.verdict != "pass":
                    raise SystemExit(f"bench: the gate ({name}) did not pass the healthy lab: {result.text}")
                seen[name]["attempts"].append(float(_attempts(folder)))
                seen[name]["judge"].append(_judge_only(folder, config))
    return seen


def _rows(path: str, seen: dict[str, dict[str, list[float]]]) -> list[str]:
    base = median(seen["quick"]["wall"])
    rows = []
    for name, label in (("quick", "`quick: true` (3 repeats; baseline)"), ("defaults", "defaults (20 repeats, budget 120 s)")):
        walls, judge = seen[name]["wall"], seen[name]["judge"]
        rows.append(f"| {path} | {label} | {int(median(seen[name]['attempts']))} | {median(walls):.1f} | {', '.join(f'{w:.1f}' for w in walls)} | "
                    f"{median(judge):.2f} | {median(walls) / base:.2f} |")
    return rows


def main() -> None:
    paths = {"lab links (no added delay)": measure(None), f"{2 * int(WAN.delay_ms)} ms RTT (lab shaper on the ISP router)": measure(WAN)}
    rows = [row for path, seen in paths.items() for row in _rows(path, seen)]
    added = {path: median(seen["defaults"]["wall"]) for path, seen in paths.items()}
    worst = max(added.values())
    body = f"""The lab with no fault (`lab.topology.build(narrow_mtu=1500)`: no black hole), the gate as `pulumi up` runs it
(`lab.gate.gate`: the rendered probe run on cp1, worker1 and the Proxmox host at once, then NetworkGate's create judging
them and writing REPORT.md, report.html and the charts), healthy every run; {RUNS} runs of each setting, interleaved,
medians; once on the lab's own links and once with {2 * int(WAN.delay_ms)} ms RTT added (as the agent benchmark). The
judgement column is the judge and the report writer alone (charts included), again on each run's saved evidence. Target:
at most {TARGET_S:.0f} s added to a healthy `pulumi up` at the defaults.

| path | `validation` settings | attempts judged | gate wall time, median (s) | runs (s) | judgement alone, median (s) | ratio to quick |
| --- | --- | ---: | ---: | --- | ---: | ---: |
{chr(10).join(rows)}

At the defaults the gate adds {', '.join(f'{v:.1f} s ({k.split(" (")[0]})' for k, v in added.items())}: {'within' if worst <= TARGET_S else 'OVER'}
the {TARGET_S:.0f} s target. Most of it is the three agent runs each vantage point makes one after the other (http, http with
the large hello, the pulls), not the judgement."""
    write_section("post-up gate on a healthy path", body)


if __name__ == "__main__":
    main()
