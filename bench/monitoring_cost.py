"""What the continuous probe costs a node, beside blackbox_exporter probing the same targets.

In the lab (healthy path), from cp1's namespace: the agent's `cycle` at the defaults (6 endpoints x 3
repeats + 6 big hellos, 8 at once, 5 s timeout; a manifest check of the lab's test image) against
blackbox_exporter 0.23 (Debian's, the binary from its .deb: `make tools`) probing the same six
endpoints once per interval (http prober, one probe per target, as Prometheus would scrape them).
Per cycle: CPU seconds (user + system of every process the cycle or the scrapes ran, including
the exporter's), bytes sent and received on cp1's eth0. Then the store after 24 simulated hours:
288 runs at the 300 s default written through the agent's own store code (rotation included),
healthy runs and runs with a black-hole sweep.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.common import median, write_section
from lab import services
from lab import topology as lab_topology
from lab.netns import Topology, exclusive, remove_stale
from probes import AGENT_PATH, agent, plan

REPO = Path(__file__).resolve().parent.parent
BLACKBOX = REPO / ".cache" / "blackbox" / "usr" / "bin" / "prometheus-blackbox-exporter"
RUNS = 5
DAY_RUNS = 24 * 3600 // 300
TARGETS = {"cpu": 1.0, "sent": 300 * 1024, "store": 50 * 1024 * 1024}


def counters(topo: Topology) -> tuple[int, int]:
    """cp1 eth0: (bytes sent, bytes received)."""
    stats = json.loads(topo.run("cp1", "ip", "-s", "-j", "link", "show", "eth0").stdout)[0]["stats64"]
    return int(stats["tx"]["bytes"]), int(stats["rx"]["bytes"])


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime, stime in clock ticks (USER_HZ 100)


def agent_cycle(topo: Topology, config: Path) -> dict[str, float]:
    sent, received = counters(topo)
    cpu, start = cpu_children(), time.monotonic()
    topo.run("cp1", sys.executable, str(AGENT_PATH), "cycle", "--config", str(config), timeout=300)
    elapsed = time.monotonic() - start
    cpu = cpu_children() - cpu
    sent2, received2 = counters(topo)
    return {"cpu": cpu, "sent": sent2 - sent, "received": received2 - received, "wall": elapsed}


def blackbox_cycle(topo: Topology, proc: subprocess.Popen[bytes]) -> dict[str, float]:
    """One interval of scrapes: /probe for each endpoint, one after the other as Prometheus's targets."""
    sent, received = counters(topo)
    exporter, children, start = process_cpu(exporter_pid(proc)), cpu_children(), time.monotonic()
    for url in plan.ENDPOINTS:
        query = urllib.parse.urlencode({"module": "http_tls", "target": url})
        topo.run("cp1", "curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:9115/probe?{query}", timeout=30)
    elapsed = time.monotonic() - start
    cpu = (process_cpu(exporter_pid(proc)) - exporter) + (cpu_children() - children)
    sent2, received2 = counters(topo)
    return {"cpu": cpu, "sent": sent2 - sent, "received": received2 - received, "wall": elapsed}


def exporter_pid(proc: subprocess.Popen[bytes]) -> int:
    """The exporter itself, under `ip netns exec` (which execs it: the same pid)."""
    return proc.pid


def store_after_a_day(docs: list[dict[str, Any]], store: Path) -> int:
    """288 runs written through the agent's store code (its rotation at the defaults), their
    stamps 300 s apart; the store's bytes at the end, state included."""
    cfg = dict(agent.CYCLE_DEFAULTS, host="cp1", endpoints=list(plan.ENDPOINTS), images=[services.TEST_IMAGE], store=str(store),
               textfile_dir=str(store / "textfile"))
    (store / "textfile").mkdir(parents=True, exist_ok=True)
    base = time.time() - DAY_RUNS * 300
    for n in range(DAY_RUNS):
        agent.finish_cycle(cfg, docs, base + n * 300, 5.0)
    return sum(p.stat().st_size for p in store.iterdir() if p.is_file())


def config(work: Path, ca: Path) -> Path:
    cfg = {"host": "cp1", "endpoints": list(plan.ENDPOINTS), "images": [services.TEST_IMAGE], "ca_file": str(ca),
           "store": str(work / "store"), "textfile_dir": str(work / "textfile")}
    (work / "textfile").mkdir(parents=True, exist_ok=True)
    path = work / "probe.json"
    path.write_text(json.dumps(cfg))
    return path


def blackbox_config(work: Path, ca: Path) -> Path:
    path = work / "blackbox.yml"
    path.write_text(f"""modules:
  http_tls:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200, 401, 404]
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: {ca}
""")
    return path


def measure() -> dict[str, Any]:
    if not BLACKBOX.exists():
        raise SystemExit("bench: blackbox_exporter is missing: run `make tools`")
    with exclusive():
        remove_stale(lab_topology.PREFIX)
        with Topology(lab_topology.PREFIX) as topo, tempfile.TemporaryDirectory(prefix="netstab-bench-") as tmp:
            work = Path(tmp)
            lab_topology.build(topo, 1500)
            svc = services.start(topo, work)
            probe = config(work, svc.cert.ca)
            bb = blackbox_config(work, svc.cert.ca)
            proc = subprocess.Popen(["ip", "netns", "exec", topo.ns("cp1"), str(BLACKBOX), f"--config.file={bb}",
                                     "--web.listen-address=127.0.0.1:9115"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(50):
                    if topo.run("cp1", "curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:9115/metrics", check=False).returncode == 0:
                        break
                    time.sleep(0.1)
                ours, theirs = [], []
                for _ in range(RUNS):  # interleaved
                    ours.append(agent_cycle(topo, probe))
                    theirs.append(blackbox_cycle(topo, proc))
                runs = sorted((work / "store").glob("run-*.json"))
                healthy = json.loads(runs[-1].read_text())
                run_bytes = runs[-1].stat().st_size
                # a run with a black hole: the same, plus the mss-sweep the cycle then adds (from cp1, across the lab's narrow link at 1280)
                from lab.intermittent import set_hole

                set_hole(topo, True)
                swept = topo.run("cp1", sys.executable, str(AGENT_PATH), "mss-sweep", "ghcr.io:443", "--json", "--quiet", "--ca-file",
                                 str(svc.cert.ca), "--budget", "30", "--tracepath-timeout", "5", timeout=120, check=False)
                sweep_doc = json.loads(swept.stdout)
                assert sweep_doc["mss_sweep"]["verdict"] == "black-hole", sweep_doc["mss_sweep"]["verdict"]
                set_hole(topo, False)
            finally:
                proc.terminate()
                proc.wait(10)
            day_clean = store_after_a_day(healthy, work / "day-clean")
            day_hole = store_after_a_day(healthy + [sweep_doc], work / "day-hole")
    return {"ours": ours, "theirs": theirs, "run_bytes": run_bytes, "day_clean": day_clean, "day_hole": day_hole}


def main() -> None:
    found = measure()
    ours, theirs = found["ours"], found["theirs"]

    def col(rows: list[dict[str, float]], key: str) -> float:
        return median([r[key] for r in rows])

    def runs(rows: list[dict[str, float]], key: str, fmt: str) -> str:
        return ", ".join(format(r[key], fmt) for r in rows)

    lines = []
    for key, label, fmt in (("cpu", "CPU seconds per cycle", ".2f"), ("sent", "bytes sent per cycle", ".0f"),
                            ("received", "bytes received per cycle", ".0f"), ("wall", "wall time per cycle (s)", ".2f")):
        a, b = col(ours, key), col(theirs, key)
        ratio = f"{a / b:.1f}" if b else "-"
        lines.append(f"| {label} | {a:{fmt}} ({runs(ours, key, fmt)}) | {b:{fmt}} ({runs(theirs, key, fmt)}) | {ratio} |")
    mb = 1024 * 1024
    body = f"""{__doc__.split(chr(10), 1)[1].strip()}

{RUNS} interleaved runs, medians (all runs in brackets). Targets (issue 20): at most 1 CPU-second and 300 KB sent per
cycle, a store of at most 50 MB. The machine is shared (2 cores): CPU and wall times move with its load, the ratios less.

| per cycle | netstab cycle (defaults) | blackbox_exporter, same 6 targets (baseline) | ratio |
| --- | --- | --- | ---: |
{chr(10).join(lines)}

What each does per cycle: netstab 24 TLS requests (18 plain, 6 with a ~1.6 KB ClientHello), a manifest check (token,
index, manifest, the first KiB of a config blob), host facts, its store and metrics file; blackbox_exporter 6 TLS
requests, one per target, no hello-size variant, no manifest, no failure class beyond "probe_success 0".

| store after 24 simulated hours (288 runs, 300 s apart, agent's rotation at the defaults) | bytes | MiB |
| --- | ---: | ---: |
| one stored run (healthy) | {found['run_bytes']} | {found['run_bytes'] / mb:.3f} |
| 288 healthy runs | {found['day_clean']} | {found['day_clean'] / mb:.1f} |
| 288 runs, each with a black-hole sweep | {found['day_hole']} | {found['day_hole'] / mb:.1f} |
"""
    write_section("Continuous probe cost vs blackbox_exporter", body)
    print(body)


if __name__ == "__main__":
    if shutil.which("ip") is None:
        raise SystemExit("bench: needs iproute2")
    main()
