"""The lab's scenarios: each reproduces one failure, probes it, and checks the diagnosis.

blackhole (default)  PMTU black hole beyond the gateway: diagnose, sweep, apply the rendered
                     gateway fix, probe again; passes only when every probe then succeeds
loss                 30% packet loss upstream: intermittent failures, the MSS fix is not the answer
dns                  the VMs' resolver is broken: dns_error
upstream-down        the internet servers are stopped: connect_refused from every host
mirror               a pull-through docker-registry on the VM subnet: cached pulls, fallback
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.render.gateway import GatewayRules, gateway_script
from lab import mirror as lab_mirror
from lab import probing, report, services
from lab import topology as lab_topology
from lab.netns import Topology
from lab.shaper import Shape
from lab.shaping import Route, shape_router
from probes.verdict import Diagnosis, diagnose


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    narrow_mtu: int  # 1500: no black hole
    expected: str  # the diagnosis the tools must reach
    inject: Callable[[Topology, services.Services], None] | None = None


def _loss(topo: Topology, _svc: services.Services) -> None:
    routes = [Route("203.0.113.0/24", "br-net"), Route("192.0.2.0/24", "wide0", "198.51.100.1"),
              Route(f"{lab_topology.GATEWAY_WAN_IP}/32", "narrow0", "198.51.100.5")]
    shape_router(topo, "isp", routes, Shape(delay_ms=5, loss=0.3), seed=7)


def _dns(topo: Topology, _svc: services.Services) -> None:
    for node in lab_topology.NODES:
        topo.set_hosts_file(node, {})
        topo.set_resolv_conf(node, ["127.0.0.1"])


def _upstream_down(topo: Topology, svc: services.Services) -> None:
    for proc in (svc.registry_proc, svc.api_proc):
        topo.stop(proc)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("blackhole", "A narrow link (MTU 1280) beyond the gateway drops ICMP fragmentation-needed on the VM subnet's egress.",
                 1280, "pmtu-black-hole"),
        Scenario("loss", "30% packet loss between the upstream router and the internet; no MTU problem.", 1500, "packet-loss", _loss),
        Scenario("dns", "The VMs' resolver does not answer (their hosts files lack the registry names).", 1500, "dns", _dns),
        Scenario("upstream-down", "The registry and API servers are down.", 1500, "upstream-down", _upstream_down),
        Scenario("mirror", "A pull-through mirror on the VM subnet: cached pulls survive the upstream, fallback survives the mirror.",
                 1500, "mirror"),
    )
}


@dataclass
class Outcome:
    scenario: str
    passed: bool
    diagnosis: Diagnosis
    timings: dict[str, float]
    report_dir: Path


def _save(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2))


def run(scenario: Scenario, topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    if scenario.name == "mirror":
        return run_mirror(topo, work, report_dir, say)
    started = time.monotonic()
    timings: dict[str, float] = {}
    lab_topology.build(topo, scenario.narrow_mtu)
    svc = services.start(topo, work)
    if scenario.inject:
        scenario.inject(topo, svc)
    timings["setup (namespaces, registry, image push)"] = time.monotonic() - started
    say(f"[{scenario.name}] Phase 1 probes from {', '.join(lab_topology.PROBE_HOSTS)} ...")
    first_probe = time.monotonic()
    before = probing.phase1(topo, lab_topology.PROBE_HOSTS, svc.cert.ca, services.TEST_IMAGE)
    for host, doc in before.items():
        _save(report_dir / f"before-{host}.json", doc)
    vm_docs = {h: before[h] for h in lab_topology.PROBE_HOSTS}
    diagnosis = diagnose(vm_docs, reference_host="pve")
    sweep = None
    if diagnosis.kind == "pmtu-black-hole":
        say(f"[{scenario.name}] TLS handshakes stall after good connects: mss-sweep from cp1 ...")
        sweep = probing.sweep(topo, "cp1", "ghcr.io:443", svc.cert.ca)
        _save(report_dir / "mss-sweep.json", sweep)
        diagnosis = diagnose(vm_docs, sweep=sweep, reference_host="pve")
    timings["first probe to diagnosis"] = time.monotonic() - first_probe
    say(f"[{scenario.name}] " + diagnosis.lines()[0])

    after = None
    fix = None
    passed = diagnosis.kind == scenario.expected
    if passed and diagnosis.mss_fix_applies and sweep and sweep.get("path_mtu"):
        fix = apply_fix(topo, int(sweep["path_mtu"]), work / "gateway-root")
        say(f"[{scenario.name}] gateway clamp applied from the measured path MTU {sweep['path_mtu']}; probing again ...")
        after = probing.phase1(topo, lab_topology.PROBE_HOSTS, svc.cert.ca, services.TEST_IMAGE)
        for host, doc in after.items():
            _save(report_dir / f"after-{host}.json", doc)
        passed = diagnose(after).kind == "healthy"
        timings["first probe to verified fix"] = time.monotonic() - first_probe
    timings["total"] = time.monotonic() - started
    text = report.render(scenario.name, scenario.description, diagnosis, scenario.expected, before, after, sweep, fix, passed, timings)
    (report_dir / "REPORT.md").write_text(text)
    return Outcome(scenario.name, passed, diagnosis, timings, report_dir)


def apply_fix(topo: Topology, path_mtu: int, root: Path) -> dict[str, str]:
    """The same script the GatewayFirewall component runs, rendered from the measurement. Its boot-time
    files go under `root` (NETSTAB_ROOT): the gateway namespace shares this machine's /etc."""
    rules = GatewayRules.build([lab_topology.VM_SUBNET], stack="lab", path_mtu=path_mtu, mtu=lab_topology.VM_MTU)
    script = gateway_script("apply", "nftables", rules)
    topo.run("gw", "env", f"NETSTAB_ROOT={root}", "sh", "-c", script)
    verify = topo.run("gw", "env", f"NETSTAB_ROOT={root}", "sh", "-c", gateway_script("verify", "nftables", rules))
    return {"script": script, "verify": verify.stdout}


def run_mirror(topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    steps, timings = lab_mirror.run_steps(topo, work, say)
    for step in steps:
        say(f"[mirror] {step.name}: {'PASS' if step.passed else 'FAIL'} ({step.record.get('served_by') or step.record['error_class']})")
        _save(report_dir / f"{step.name.split(' ')[0]}-{steps.index(step)}.json", step.record)
    (report_dir / "REPORT.md").write_text(lab_mirror.report(steps, timings))
    passed = all(s.passed for s in steps)
    summary = "cached pulls and fallback behave" if passed else "see REPORT.md"
    return Outcome("mirror", passed, Diagnosis("mirror", summary, False), timings, report_dir)
