"""The `intermittent` scenario: what only continuous probing sees (docs/monitoring.md).

The agent's `cycle` (what the netstab-probe timer runs) runs on a schedule in cp1, worker1 and pve
(the reference), every INTERVAL_S, each host with its own store and metrics file, while the faults
switch on and off: the black hole (the narrow link's MTU drops to 1280; up and isp drop ICMP
fragmentation-needed) for HOLE_CYCLES, then, separately, Doppler loss (every packet to the API
address dropped, from every host) for LOSS_CYCLES. Then:

- `python -m probes history` on the stores must name an intermittent black hole on the VM nodes
  with one burst whose start and end are within one interval of when it switched on and off, the
  reference host not seeing it, and the Doppler loss as its own burst, the reference seeing it;
- the alert rules' unit test (promtool), fed the metrics files the cycles wrote, must fire
  NetstabBlackHole for cp1 and worker1 and not for pve;
- the post-up gate alone, run once in an "off" window (at the end), must pass: it cannot see it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.render.alerts import alerts
from lab import gate as lab_gate
from lab import services
from lab import topology as lab_topology
from lab.netns import Topology
from probes import AGENT_PATH, plan
from probes.history import History, judge_history, load_runs

HOSTS = ("cp1", "worker1", "pve")
REFERENCE = "pve"
INTERVAL_S = 35  # the shortest the agent accepts for the lab's cycle settings below (their bound is 33 s)
CYCLES = 7
HOLE_CYCLES = (1, 2)  # the black hole is on for these cycles (from 0)
LOSS_CYCLES = (4, 5)  # Doppler loss is on for these
NARROW_ON, NARROW_OFF = 1280, 1500
DOPPLER_DROP = f"""
table inet lab_doppler_loss {{
  chain forward {{
    type filter hook forward priority 0; policy accept;
    ip daddr {lab_topology.API_IP} drop
  }}
}}
"""


@dataclass
class Window:
    fault: str
    on: float  # Unix time it switched on
    off: float = 0.0


def cycle_config(host: str, work: Path, ca: Path) -> Path:
    folder = work / "probe" / host
    (folder / "textfile").mkdir(parents=True, exist_ok=True)
    cfg = {"host": "proxmox" if host == REFERENCE else host, "role": "reference" if host == REFERENCE else "node",
           "interval_seconds": INTERVAL_S, "endpoints": list(plan.ENDPOINTS), "images": [services.TEST_IMAGE], "ca_file": str(ca),
           "repeats": 2, "timeout_seconds": 2, "max_sweeps": 1, "sweep_budget_seconds": 5, "tracepath_timeout_seconds": 2,
           "store": str(folder / "store"), "textfile_dir": str(folder / "textfile")}
    path = folder / "probe.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def run_cycle(topo: Topology, host: str, config: Path) -> str:
    """One timer tick in the host's namespace; the metrics file it left."""
    done = topo.run(host, sys.executable, str(AGENT_PATH), "cycle", "--config", str(config), timeout=INTERVAL_S * 2, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the cycle failed on {host} ({done.returncode}): {done.stderr[-800:]}")
    return (config.parent / "textfile" / "netstab_probe.prom").read_text()


def set_hole(topo: Topology, on: bool) -> None:
    for host in ("up", "isp"):
        topo.run(host, "ip", "link", "set", "narrow0", "mtu", str(NARROW_ON if on else NARROW_OFF))


def set_loss(topo: Topology, on: bool) -> None:
    if on:
        topo.nft("isp", DOPPLER_DROP)
    else:
        topo.run("isp", "nft", "delete", "table", "inet", "lab_doppler_loss")


def run_schedule(topo: Topology, configs: dict[str, Path], say: Callable[[str], None]) -> tuple[list[Window], list[dict[str, str]], list[float]]:
    """CYCLES ticks INTERVAL_S apart on every host at once, the faults switched between ticks.
    Returns the fault windows and, per tick, every host's metrics text and when the tick ended."""
    windows: list[Window] = []
    snapshots: list[dict[str, str]] = []
    ticks: list[float] = []
    start = time.time()
    for n in range(CYCLES):
        for fault, cycles, switch in (("black hole", HOLE_CYCLES, set_hole), ("Doppler loss", LOSS_CYCLES, set_loss)):
            if n == cycles[0]:
                switch(topo, True)
                windows.append(Window(fault, time.time()))
                say(f"[intermittent] {fault} on")
            elif n == cycles[-1] + 1:
                switch(topo, False)
                next(w for w in windows if w.fault == fault).off = time.time()
                say(f"[intermittent] {fault} off")
        with ThreadPoolExecutor(max_workers=len(HOSTS)) as pool:
            texts = dict(zip(HOSTS, pool.map(lambda h: run_cycle(topo, h, configs[h]), HOSTS), strict=True))
        snapshots.append(texts)
        ticks.append(time.time())
        say(f"[intermittent] cycle {n + 1}/{CYCLES} done on {', '.join(HOSTS)}")
        time.sleep(max(0.0, start + (n + 1) * INTERVAL_S - time.time()))
    for w in windows:  # a fault still on after the last tick
        if not w.off:
            w.off = time.time()
    return windows, snapshots, ticks


# ---------------------------------------------------------------- the alert test, on the exported series


SAMPLE = re.compile(r"^(\w+)(\{[^}]*\})? (\S+)$")


def series_values(snapshots: list[dict[str, str]], name: str) -> dict[str, list[str]]:
    """series (name{labels}) -> its value in each snapshot ('_' where a host's file lacked it)."""
    out: dict[str, list[str]] = {}
    for index, texts in enumerate(snapshots):
        for text in texts.values():
            for line in text.splitlines():
                found = SAMPLE.match(line)
                if found and found.group(1) == name:
                    out.setdefault(found.group(1) + (found.group(2) or ""), ["_"] * len(snapshots))[index] = found.group(3)
    return out


def alert_test(snapshots: list[dict[str, str]], rules: Path) -> dict[str, Any]:
    """A promtool unit test of NetstabBlackHole on the series the cycles exported, one sample per
    tick (INTERVAL_S apart), evaluated three ticks after the first tick whose sweep found the hole."""
    values = series_values(snapshots, "netstab_probe_sweeps_total")
    hole = [name for name in values if 'verdict="black-hole"' in name]
    first = min(i for name in hole for i, v in enumerate(values[name]) if v not in ("_", "0"))
    rule = next(a for a in alerts() if a.name == "NetstabBlackHole")
    expected = []
    for host in ("cp1", "worker1"):
        labels = {"host": host, "target": "ghcr.io", "path": "direct", "severity": rule.severity}
        summary = rule.summary
        for key, value in labels.items():
            summary = summary.replace("{{ $labels." + key + " }}", value)
        expected.append({"exp_labels": labels, "exp_annotations": {"summary": summary, "description": rule.description}})
    return {
        "rule_files": [str(rules)],
        "evaluation_interval": f"{INTERVAL_S}s",
        "tests": [{
            "interval": f"{INTERVAL_S}s",
            "input_series": [{"series": name, "values": " ".join(v)} for name, v in values.items()],
            "alert_rule_test": [
                {"eval_time": f"{first * INTERVAL_S}s", "alertname": "NetstabBlackHole", "exp_alerts": []},
                {"eval_time": f"{(first + 3) * INTERVAL_S}s", "alertname": "NetstabBlackHole", "exp_alerts": expected},
            ],
        }],
    }


def run_alert_test(snapshots: list[dict[str, str]], report_dir: Path, promtool: str) -> tuple[bool, str]:
    rules = Path(__file__).resolve().parents[1] / "monitoring" / "rules.yaml"
    test = report_dir / "alert-test.yaml"
    test.write_text(yaml.safe_dump(alert_test(snapshots, rules), sort_keys=False, width=1000))
    done = subprocess.run([promtool, "test", "rules", str(test)], capture_output=True, text=True, timeout=60)
    return done.returncode == 0, (done.stdout + done.stderr).strip()


# ---------------------------------------------------------------- the checks


def check_history(h: History, windows: list[Window]) -> list[str]:
    problems = []
    hole = next((p for p in h.problems if p.kind == "pmtu-black-hole"), None)
    truth = next(w for w in windows if w.fault == "black hole")
    if hole is None:
        problems.append(f"history names no black hole (it names {', '.join(p.kind for p in h.problems) or 'nothing'})")
    else:
        if hole.pattern != "intermittent":
            problems.append(f"history calls the black hole {hole.pattern}")
        if set(hole.hosts) != {"cp1", "worker1"}:
            problems.append(f"history puts the black hole on {', '.join(hole.hosts)}")
        if len(hole.bursts) != 1:
            problems.append(f"history finds {len(hole.bursts)} black-hole bursts, not 1")
        else:
            burst = hole.bursts[0]
            off_start, off_end = burst.start - truth.on, burst.end - truth.off
            if abs(off_start) > INTERVAL_S or abs(off_end) > INTERVAL_S:
                problems.append(f"the burst is {off_start:+.0f} s / {off_end:+.0f} s off the truth (allowed: one interval, {INTERVAL_S} s)")
            if burst.reference_saw != "no":
                problems.append(f"history says the reference host saw the black hole: {burst.reference_saw}")
    loss = next(w for w in windows if w.fault == "Doppler loss")
    lossy = [p for p in h.problems if any(b.start <= loss.off + INTERVAL_S and b.end >= loss.on - INTERVAL_S for b in p.bursts)
             and p.kind != "pmtu-black-hole"]
    if not lossy:
        problems.append("history names nothing during the Doppler loss")
    elif not any(b.reference_saw == "yes" for p in lossy for b in p.bursts):
        problems.append("history does not say the reference host saw the Doppler loss too")
    if not any(m > 0 for m in h.doppler_longest_failure_minutes.values()):
        problems.append("history reports no Doppler failure run")
    return problems


def report(h: History, windows: list[Window], gate: lab_gate.GateRun, alert: tuple[bool, str], problems: list[str]) -> str:
    from probes.history import iso

    truth = [f"| {w.fault} | {iso(w.on)} | {iso(w.off)} |" for w in windows]
    result = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return "\n".join([
        "# netstab lab: intermittent", "",
        f"**Result: {result}**", "",
        f"The agent's `cycle` ran every {INTERVAL_S} s on {', '.join(HOSTS)} ({REFERENCE} the reference) for {CYCLES} cycles, "
        "while the faults switched on and off:", "",
        "| fault | on | off |", "| --- | --- | --- |", *truth, "",
        "## `python -m probes history`", "", "```text", h.text(), "```", "",
        f"## The alert rules on the exported series (`promtool test rules alert-test.yaml`): {'PASS' if alert[0] else 'FAIL'}", "",
        "```text", alert[1], "```", "",
        f"## The post-up gate alone, once, in an off window: {gate.verdict.upper()}", "",
        "```text", gate.text.strip(), "```", "",
        "Files: `stores/<host>/` (each host's stored runs: `python -m probes history --reference proxmox cp1=stores/cp1 ...`), "
        "`history.json`, `alert-test.yaml`, `metrics-<host>.prom` (each host's last metrics file).", "",
    ])


def promtool() -> str:
    """The promtool `make tools` unpacks from Debian's prometheus .deb, else one on PATH."""
    unpacked = Path(__file__).resolve().parents[1] / ".cache" / "prometheus" / "usr" / "bin" / "promtool"
    found = str(unpacked) if unpacked.exists() else shutil.which("promtool")
    if not found:
        raise RuntimeError("promtool is missing: run `make tools` (part of `make deps`)")
    return found


def run(topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> tuple[bool, str, list[str], dict[str, float]]:
    started = time.monotonic()
    timings: dict[str, float] = {}
    lab_topology.build(topo, NARROW_OFF)
    svc = services.start(topo, work)
    configs = {host: cycle_config(host, work, svc.cert.ca) for host in HOSTS}
    timings["setup (namespaces, registry, image push)"] = time.monotonic() - started
    say(f"[intermittent] {CYCLES} cycles every {INTERVAL_S} s on {', '.join(HOSTS)} ...")
    windows, snapshots, _ = run_schedule(topo, configs, say)
    timings["the schedule"] = time.monotonic() - started - timings["setup (namespaces, registry, image push)"]
    stores = report_dir / "stores"
    for host in HOSTS:
        label = "proxmox" if host == REFERENCE else host
        shutil.copytree(configs[host].parent / "store", stores / label)
        (report_dir / f"metrics-{label}.prom").write_text(snapshots[-1][host])
    runs = load_runs([f"{'proxmox' if h == REFERENCE else h}={stores / ('proxmox' if h == REFERENCE else h)}" for h in HOSTS])
    history = judge_history(runs, ["proxmox"])
    (report_dir / "history.json").write_text(json.dumps(history.to_dict(), indent=2))
    say(f"[intermittent] history: {history.verdict}; " + "; ".join(f"{p.kind} {p.pattern} on {', '.join(p.hosts)}" for p in history.problems))
    alert = run_alert_test(snapshots, report_dir, promtool())
    say(f"[intermittent] the alert test on the exported series: {'PASS' if alert[0] else 'FAIL'}")
    gate_started = time.monotonic()
    gate = lab_gate.gate(topo, svc.cert.ca, services.TEST_IMAGE, report_dir / "gate-off-window", None)
    timings["post-up gate in an off window"] = time.monotonic() - gate_started
    say(f"[intermittent] the post-up gate alone, in an off window: {gate.verdict.upper()}")
    problems = check_history(history, windows)
    if not alert[0]:
        problems.append("the alert rule test on the exported series failed")
    if gate.verdict != "pass":
        problems.append(f"the gate in an off window says {gate.verdict}, not pass")
    timings["total"] = time.monotonic() - started
    (report_dir / "REPORT.md").write_text(report(history, windows, gate, alert, problems))
    headline = "; ".join(f"{p.kind} {p.pattern}" for p in history.problems) or "nothing found"
    return not problems, headline, problems, timings
