"""The plan's baseline (`curl -w` loop, six endpoints x 20, sequential) against `agent.py http
--repeat 20` over the same endpoints, side by side in one run, across a delayed link.
Also: `mss-sweep` against `tracepath` in the black-hole lab (time and accuracy)."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

from bench.common import median, write_section
from lab.blackhole import SERVER_IP, build, start_https
from lab.netns import Topology
from lab.pki import issue
from lab.probing import ENDPOINTS
from lab.shaper import Shape
from lab.shaping import Route, shape_router

REPO = Path(__file__).resolve().parent.parent
AGENT = REPO / "probes" / "agent.py"
NAMES = sorted({e.split("/")[2] for e in ENDPOINTS})
REPEAT = 20
RTT_MS = 40
ROUNDS = 3


def curl_loop(topo: Topology, ca: Path) -> tuple[float, list[dict[str, float]]]:
    fmt = "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\\n"
    urls = " ".join(ENDPOINTS)
    script = f"for i in $(seq {REPEAT}); do for u in {urls}; do curl -s -o /dev/null --max-time 10 --cacert {ca} -w '{fmt}' $u; done; done"
    start = time.monotonic()
    out = topo.run("client", "sh", "-c", script, timeout=600).stdout
    wall = time.monotonic() - start
    rows = []
    for line in out.splitlines():
        lookup, connect, app, first, total = (float(x) * 1000 for x in line.split())
        rows.append({"connect": connect, "appconnect": app, "starttransfer": first, "total": total})
    return wall, rows


def agent_run(topo: Topology, ca: Path, concurrency: int = 1) -> tuple[float, list[dict[str, float]]]:
    start = time.monotonic()
    out = topo.run("client", sys.executable, str(AGENT), "http", *ENDPOINTS, "--repeat", str(REPEAT), "--ca-file", str(ca),
                   "--concurrency", str(concurrency), "--json", "--quiet", timeout=600, check=False).stdout
    wall = time.monotonic() - start
    rows = []
    for rec in json.loads(out)["records"]:
        p = rec["phases_ms"]
        # curl's times are cumulative from the start; the agent's are per phase
        connect = p["dns"] + p["connect"]
        rows.append({"connect": connect, "appconnect": connect + p["tls"], "starttransfer": connect + p["tls"] + p["ttfb"], "total": p["total"]})
    return wall, rows


def setup_delay(topo: Topology) -> None:
    # This kernel has no sch_netem: the userspace shaper on r1 adds half the RTT each way.
    shape_router(topo, "r1", [Route("192.0.2.0/29", "c0"), Route("203.0.113.0/29", "n0", "198.51.100.2")], Shape(delay_ms=RTT_MS / 2))


def bench_http(work: Path) -> str:
    cert = issue(work, "endpoints", [*NAMES, SERVER_IP])
    with Topology("nstbench-") as topo:
        build(topo, both_directions=True, narrow_mtu=1500)
        topo.set_hosts_file("client", dict.fromkeys(NAMES, SERVER_IP))
        start_https(topo, "server", SERVER_IP, cert)
        setup_delay(topo)
        walls: dict[str, list[float]] = {"curl": [], "agent": [], "agent6": []}
        phases: dict[str, list[dict[str, float]]] = {"curl": [], "agent": []}
        for _ in range(ROUNDS):  # interleaved, so drift hits both sides alike
            wall, rows = curl_loop(topo, cert.ca)
            walls["curl"].append(wall)
            phases["curl"] += rows
            wall, rows = agent_run(topo, cert.ca)
            walls["agent"].append(wall)
            phases["agent"] += rows
            walls["agent6"].append(agent_run(topo, cert.ca, concurrency=6)[0])
    n = len(ENDPOINTS) * REPEAT
    lines = [
        f"Six endpoints (the plan's names, one lab TLS server) x {REPEAT} repeats = {n} requests per run, "
        f"{RTT_MS} ms RTT added in namespaces by `lab/shaper.py` (a userspace netem: this kernel has no sch_netem); {ROUNDS} interleaved runs, medians.",
        "",
        "| run | median wall time (s) | ratio to the curl loop |",
        "| --- | ---: | ---: |",
    ]
    base = median(walls["curl"])
    for key, label in (("curl", "baseline: `curl -w` shell loop, sequential"), ("agent", "`agent.py http --repeat 20`, sequential"),
                       ("agent6", "`agent.py http --repeat 20 --concurrency 6`")):
        lines.append(f"| {label} | {median(walls[key]):.2f} | {median(walls[key]) / base:.2f} |")
    lines += ["", "| phase (cumulative, as curl reports it) | curl median (ms) | agent median (ms) | agent - curl (ms) |", "| --- | ---: | ---: | ---: |"]
    for phase, curl_name in (("connect", "time_connect"), ("appconnect", "time_appconnect"), ("starttransfer", "time_starttransfer"), ("total", "time_total")):
        c = median([r[phase] for r in phases["curl"]])
        a = median([r[phase] for r in phases["agent"]])
        lines.append(f"| {curl_name} | {c:.2f} | {a:.2f} | {a - c:+.2f} |")
    return "\n".join(lines)


def tracepath_pmtu(text: str) -> int | None:
    values = [int(v) for v in re.findall(r"pmtu (\d+)", text)]
    return values[-1] if values else None


def bench_sweep(work: Path) -> str:
    cert = issue(work, "labtest", ["lab.test", SERVER_IP])
    lines = ["Black-hole lab (narrow link in the middle, routers drop ICMP frag-needed). True path MTU vs what each tool reports.", "",
             "| narrow link MTU | mss-sweep path MTU | mss-sweep time (s) | tracepath pmtu | tracepath time (s) |", "| ---: | ---: | ---: | ---: | ---: |"]
    for mtu in (1280, 1400, 1450):
        with Topology("nstbench-") as topo:
            build(topo, both_directions=True, narrow_mtu=mtu)
            start_https(topo, "server", SERVER_IP, cert)
            start = time.monotonic()
            out = topo.run("client", sys.executable, str(AGENT), "mss-sweep", "lab.test:443", "--ca-file", str(cert.ca), "--timeout", "1",
                           "--repeat", "2", "--no-tracepath", "--json", "--quiet", timeout=300, check=False).stdout
            sweep_s = time.monotonic() - start
            found = json.loads(out)["mss_sweep"]["path_mtu"]
            start = time.monotonic()
            tp = topo.run("client", "tracepath", "-n", "-m", "4", SERVER_IP, check=False, timeout=120)
            trace_s = time.monotonic() - start
            pmtu = tracepath_pmtu(tp.stdout)
            lines.append(f"| {mtu} | {found} | {sweep_s:.1f} | {pmtu} | {trace_s:.1f} |")
    lines += ["", "tracepath learns the path MTU from ICMP fragmentation-needed, which the black hole drops, so it keeps the "
              "local 1500 (and hops beyond the narrow link say `no reply`); the sweep measures what completes."]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_section("Probe agent vs the curl loop", bench_http(Path(tmp) / "http"))
        write_section("mss-sweep vs tracepath", bench_sweep(Path(tmp) / "sweep"))


if __name__ == "__main__":
    main()
