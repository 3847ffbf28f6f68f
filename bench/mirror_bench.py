"""The mirror across a slow, lossy WAN (lab shaper: 40 ms RTT, 1% loss, 20 Mbit/s), side by side:
median pull time of the test image warm through the mirror against direct from the upstream,
and the success rate of 20 pulls while the upstream flaps (mirror with fallback vs direct);
several runs, so the figures come with their spread."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from bench.common import median, write_section
from lab import mirror as lab_mirror
from lab import registry as lab_registry
from lab import services
from lab import topology as lab_topology
from lab.netns import Topology
from lab.shaper import Shape
from lab.shaping import Route, shape_router

SHAPE = Shape(delay_ms=20, loss=0.01, rate_kbit=20_000)
RUNS = 3
PULLS = 10
FLAP_PULLS = 20
FLAP_PERIOD_S = 1.5


def shape_wan(topo: Topology) -> None:
    routes = [Route("203.0.113.0/24", "br-net"), Route("192.0.2.0/24", "wide0", "198.51.100.1"),
              Route(f"{lab_topology.GATEWAY_WAN_IP}/32", "narrow0", "198.51.100.5")]
    shape_router(topo, "isp", routes, SHAPE, seed=3)


def flapping(topo: Topology, work: Path, svc: services.Services, stop: threading.Event) -> None:
    up = True
    while not stop.wait(FLAP_PERIOD_S):
        if up:
            topo.stop(svc.registry_proc)
        else:
            proc = topo.start("registry", *lab_registry.command(work / "registry" / "config.yml"), log=work / "registry" / "registry.log")
            svc.registry_proc = proc
        up = not up


def measure(topo: Topology, work: Path, svc: services.Services, url: str) -> tuple[dict[str, list[float]], dict[str, int]]:
    """One run: PULLS warm pulls each way (interleaved), then FLAP_PULLS each way while the upstream flaps."""
    times: dict[str, list[float]] = {"direct": [], "mirror": []}
    for _ in range(PULLS):  # interleaved
        for key, mirror in (("direct", None), ("mirror", url)):
            rec = lab_mirror.pull(topo, svc.cert.ca, mirror)
            if rec["ok"]:
                times[key].append(rec["phases_ms"]["total"])
    stop = threading.Event()
    flapper = threading.Thread(target=flapping, args=(topo, work, svc, stop), daemon=True)
    flapper.start()
    ok = {"direct": 0, "mirror": 0}
    for _ in range(FLAP_PULLS):
        for key, mirror in (("direct", None), ("mirror", url)):
            ok[key] += bool(lab_mirror.pull(topo, svc.cert.ca, mirror)["ok"])
    stop.set()
    flapper.join(10)
    if svc.registry_proc.poll() is not None:  # leave the upstream up for the next run
        svc.registry_proc = topo.start("registry", *lab_registry.command(work / "registry" / "config.yml"), log=work / "registry" / "registry.log")
    return times, ok


def main() -> None:
    runs: list[tuple[dict[str, list[float]], dict[str, int]]] = []
    with Topology(lab_topology.PREFIX) as topo, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lab_topology.build(topo, narrow_mtu=1500)
        lab_topology.add_vm(topo, "mirror", lab_topology.MIRROR_IP)
        svc = services.start(topo, work)
        lab_mirror.start_mirror(topo, work, svc.cert.ca)
        shape_wan(topo)
        url = lab_mirror.mirror_url()
        cold = lab_mirror.pull(topo, svc.cert.ca, url)
        for _ in range(RUNS):
            runs.append(measure(topo, work, svc, url))
    medians = {key: [median(times[key]) for times, _ in runs] for key in ("direct", "mirror")}
    counts = {key: [len(times[key]) for times, _ in runs] for key in ("direct", "mirror")}
    flaps = {key: [ok[key] for _, ok in runs] for key in ("direct", "mirror")}
    d, m = median(medians["direct"]), median(medians["mirror"])
    body = f"""Lab WAN shaped by `lab/shaper.py` on the ISP router: {SHAPE.delay_ms * 2:.0f} ms RTT, {SHAPE.loss:.0%} loss,
{SHAPE.rate_kbit // 1000} Mbit/s. Test image: 3 layers, ~170 KB for one platform. Pulls from cp1 with `agent.py pull`
(digests verified), interleaved; {RUNS} runs of {PULLS} pulls each way: the median of the runs' medians, and each run's median.

| pull | successful pulls per run | median time (ms) | runs' medians (ms) | ratio to direct |
| --- | --- | ---: | --- | ---: |
| direct from the upstream (baseline) | {_each(counts['direct'], PULLS)} | {d:.0f} | {_ms(medians['direct'])} | 1.00 |
| warm through the mirror | {_each(counts['mirror'], PULLS)} | {m:.0f} | {_ms(medians['mirror'])} | {m / d:.2f} |

The first (cold) pull through the mirror took {cold['phases_ms']['total']:.0f} ms (served by {cold.get('served_by')}).

While the upstream flaps (down and up every {FLAP_PERIOD_S} s), {FLAP_PULLS} pulls each way per run:

| pull | successes per run |
| --- | --- |
| direct from the upstream (baseline) | {_each(flaps['direct'], FLAP_PULLS)} |
| through the mirror, upstream as fallback | {_each(flaps['mirror'], FLAP_PULLS)} |"""
    write_section("Registry mirror", body)


def _each(values: list[int], out_of: int) -> str:
    return ", ".join(f"{v}/{out_of}" for v in values)


def _ms(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


if __name__ == "__main__":
    main()
