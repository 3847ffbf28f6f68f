"""The lab's scenarios: each reproduces one fault, probes it from cp1, worker1 and the Proxmox
host (pve, the reference host), and passes only when the judge names it and says what fixes it.

blackhole (default)  PMTU black hole beyond the gateway, both directions: the judge's clamp is
                     applied with the rendered gateway script and verified; passes only when the
                     probes after the fix are healthy
toward-server        the same hole toward the server only: plain hellos pass, large ones stall;
                     the same clamp fixes it, and is verified the same way
loss                 30% packet loss upstream: intermittent failures, the MSS fix is not the answer
dns                  the VMs' resolver is broken: dns
upstream-down        the internet servers are stopped: TCP refused from every host
silent-server        the servers accept TCP and never answer TLS, from every host: server-stall
bad-cert             the API presents a certificate from another CA: tls-certificate
server-5xx           the API answers 503: server-error
rate-limited         the registry answers 429: rate-limited, the mirror or credentials fix it
blob-host            the registry API on a clean path, its blob downloads redirected to a host beyond
                     the black hole: the sweep of the pull's blob host finds it; the judge's clamp
                     (gateway.pathMtu set to its path MTU) fixes it, verified the same way
mirror               a pull-through docker-registry on the VM subnet: cached pulls, fallback
intermittent         the black hole, then Doppler loss, switch on and off while the continuous
                     probe's cycle runs on a schedule: the history names both, the alert fires on
                     the exported series, the gate alone in an off window passes (lab/intermittent.py)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.mss import mss_from_path_mtu
from components.render.gateway import GatewayRules, gateway_script
from components.render.validation import MAX_SWEEPS
from lab import gate as lab_gate
from lab import mirror as lab_mirror
from lab import probing, services
from lab import topology as lab_topology
from lab.gate import GateRun
from lab.netns import Topology
from lab.pki import issue
from lab.shaper import Shape
from lab.shaping import Route, shape_router
from probes.charts import charts
from probes.report import AppliedFix, Report, render
from probes.stalls import stalled_targets
from probes.verdict import Diagnosis, diagnose

REFERENCE = ("pve",)
SWEEP_FROM = "cp1"

Inject = Callable[[Topology, Path, services.Services], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    expected: str  # the kind the judge must reach
    narrow_mtu: int = 1500  # 1500: no black hole
    inject: Inject | None = None
    direction: str | None = None  # a black hole's direction the judge must name
    # the fix's path MTU: the gateway's own measurement (pathMtu: auto, against the endpoints), or,
    # for a hole only a pull's redirect host is behind, the judge's (pathMtu set to what it names)
    gateway_measures: bool = True


def _toward_server(topo: Topology, _work: Path, _svc: services.Services) -> None:
    # replies to the VM subnet come back over the wide link: only the client's large segments meet the narrow one
    topo.route("isp", f"{lab_topology.GATEWAY_WAN_IP}/32", "198.51.100.1")


def _loss(topo: Topology, _work: Path, _svc: services.Services) -> None:
    routes = [Route("203.0.113.0/24", "br-net"), Route("192.0.2.0/24", "wide0", "198.51.100.1"),
              Route(f"{lab_topology.GATEWAY_WAN_IP}/32", "narrow0", "198.51.100.5")]
    shape_router(topo, "isp", routes, Shape(delay_ms=5, loss=0.3), seed=7)


def _dns(topo: Topology, _work: Path, _svc: services.Services) -> None:
    for node in lab_topology.NODES:
        topo.set_hosts_file(node, {})
        topo.set_resolv_conf(node, ["127.0.0.1"])


def _upstream_down(topo: Topology, _work: Path, svc: services.Services) -> None:
    for proc in (svc.registry_proc, svc.api_proc):
        topo.stop(proc)


def _silent(topo: Topology, _work: Path, svc: services.Services) -> None:
    services.replace_registry(topo, svc, "silent")
    services.replace_api(topo, svc, "silent")


def _bad_cert(topo: Topology, work: Path, svc: services.Services) -> None:
    rogue = issue(work / "rogue-pki", "rogue", [*lab_topology.NAMES, lab_topology.API_IP])  # its own CA, which nobody trusts
    services.replace_api(topo, svc, "normal", rogue)


def _server_5xx(topo: Topology, _work: Path, svc: services.Services) -> None:
    services.replace_api(topo, svc, "error")


def _blob_host(topo: Topology, work: Path, svc: services.Services) -> None:
    lab_topology.add_blob_host(topo)
    services.redirect_blobs(topo, svc, work)


def _rate_limited(topo: Topology, _work: Path, svc: services.Services) -> None:
    services.replace_registry(topo, svc, "limit")


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("blackhole", "A narrow link (MTU 1280) beyond the gateway drops ICMP fragmentation-needed on the VM subnet's egress.",
                 "pmtu-black-hole", 1280, direction="both"),
        Scenario("toward-server", "The same narrow link, on the way to the servers only (replies take the wide link): plain "
                 "ClientHellos pass, large post-quantum-sized ones stall.", "pmtu-black-hole", 1280, _toward_server, "toward-server"),
        Scenario("loss", "30% packet loss between the upstream router and the internet; no MTU problem.", "packet-loss", inject=_loss),
        Scenario("dns", "The VMs' resolver does not answer (their hosts files lack the registry names).", "dns", inject=_dns),
        Scenario("upstream-down", "The registry and API servers are down.", "upstream-down", inject=_upstream_down),
        Scenario("silent-server", "The registry and API addresses accept TCP and never answer the ClientHello, for every host.",
                 "server-stall", inject=_silent),
        Scenario("bad-cert", "The API (api.doppler.com, auth.docker.io) presents a certificate from a CA nobody trusts.",
                 "tls-certificate", inject=_bad_cert),
        Scenario("server-5xx", "The API answers every request 503 Service Unavailable.", "server-error", inject=_server_5xx),
        Scenario("rate-limited", "The registry answers every request 429 Too Many Requests, as Docker Hub past its pull limit.",
                 "rate-limited", inject=_rate_limited),
        Scenario("blob-host", f"The registry API is on a clean path; its blob downloads are redirected (307) to {lab_topology.BLOB_NAME}, "
                 "which the VM subnet reaches only across a narrow link (MTU 1280) that drops ICMP fragmentation-needed. No endpoint "
                 "stalls: only the pulls do, at the blob host.", "pmtu-black-hole", 1280, _blob_host, "both", gateway_measures=False),
    )
}
NAMES = (*SCENARIOS, "mirror")


@dataclass
class Outcome:
    scenario: str
    passed: bool
    headline: str  # the judge's kind, or the mirror's summary
    problems: list[str]  # why it did not pass
    timings: dict[str, float]
    report_dir: Path


def run(name: str, topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    if name == "mirror":
        return run_mirror(topo, work, report_dir, say)
    if name == "intermittent":
        return run_intermittent(topo, work, report_dir, say)
    return run_judged(SCENARIOS[name], topo, work, report_dir, say)


def run_judged(scenario: Scenario, topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    started = time.monotonic()
    timings: dict[str, float] = {}
    lab_topology.build(topo, scenario.narrow_mtu)
    svc = services.start(topo, work)
    if scenario.inject:
        scenario.inject(topo, work, svc)
    timings["setup (namespaces, registry, image push)"] = time.monotonic() - started
    say(f"[{scenario.name}] Phase 1 probes from {', '.join(lab_topology.PROBE_HOSTS)} ...")
    first_probe = time.monotonic()
    before = probe_and_sweep(topo, svc, say, scenario.name, timings)
    diagnosis = diagnose(before, REFERENCE)
    timings["first probe to diagnosis"] = time.monotonic() - first_probe
    _save(report_dir, "before", before)
    say(f"[{scenario.name}] {diagnosis.verdict}: {diagnosis.kind} - {diagnosis.summary}")

    fix = after = after_docs = None
    gates: list[tuple[str, GateRun]] = []
    measured: int | None = None
    if diagnosis.mss_fix_applies and diagnosis.recommended_clamp:
        gates.append(("before the fix", _gate(topo, svc, report_dir / "gate-before", None, say, scenario.name, timings, "gate before the fix")))
        if scenario.gateway_measures:
            started_measure = time.monotonic()
            measured, _ = lab_gate.measure_from_gateway(topo, svc.cert.ca, work / "gateway-root")
            timings["gateway's own measurement (pathMtu: auto)"] = time.monotonic() - started_measure
            say(f"[{scenario.name}] the gateway measures path MTU {measured} from its VM-subnet address (the judge's clamp: {diagnosis.recommended_clamp})")
        else:
            measured = diagnosis.recommended_clamp + 40
            say(f"[{scenario.name}] the gateway's own measurement sweeps the endpoints, not a redirect's blob host: "
                f"gateway.pathMtu set to the judge's {measured} (clamp {diagnosis.recommended_clamp})")
        fix = apply_fix(topo, measured, work / "gateway-root")
        say(f"[{scenario.name}] gateway clamp for path MTU {measured} applied ({'verified' if fix.verified else 'verify FAILED'}); probing again ...")
        after_docs = probing.phase1(topo, lab_topology.PROBE_HOSTS, svc.cert.ca, services.TEST_IMAGE)
        _save(report_dir, "after", after_docs)
        after = diagnose(after_docs, REFERENCE)
        timings["first probe to verified fix"] = time.monotonic() - first_probe
        gates.append(("after the fix", _gate(topo, svc, report_dir / "gate-after", measured, say, scenario.name, timings, "gate after the fix")))
    timings["total"] = time.monotonic() - started
    problems = check(scenario, diagnosis, fix, after) + check_gate(diagnosis, measured, gates, scenario.gateway_measures)
    result = ("PASS" if not problems else "FAIL: " + "; ".join(problems)) + f" (expected `{scenario.expected}`, the judge says `{diagnosis.kind}`)"
    files = "`netstab.probe/v1` documents beside this file, a JSON list per host: `before-<host>.json`" + (", `after-<host>.json`" if after else "")
    title = f"netstab lab: {scenario.name}"
    drawn = charts(before, after_docs, mss_from_path_mtu(measured, ipv6=False) if measured else None)
    text = render(title, diagnosis, intro=scenario.description, result=result, fix=fix, after=after, charts=drawn,
                  timings=timings, files=files + "; judge them again with `python -m probes diagnose --reference pve HOST=FILE...`.")
    text += gate_section(measured, gates, scenario.gateway_measures)
    for name, content in Report.of(text, title, result, drawn).files().items():
        (report_dir / name).write_text(content)
    return Outcome(scenario.name, not problems, diagnosis.kind, problems, timings, report_dir)


def probe_and_sweep(topo: Topology, svc: services.Services, say: Callable[[str], None], name: str,
                    timings: dict[str, float]) -> dict[str, list[dict[str, Any]]]:
    """Phase 1 from every host; when handshakes stalled on the sweeping node, an mss-sweep to each host
    they stalled at (a pull's blob host included, at most MAX_SWEEPS, at once) joins its evidence, as
    the post-up gate does."""
    started = time.monotonic()
    docs = probing.phase1(topo, lab_topology.PROBE_HOSTS, svc.cert.ca, services.TEST_IMAGE)
    timings["Phase 1 probes, every host at once"] = time.monotonic() - started
    stalled = stalled_targets(docs[SWEEP_FROM], MAX_SWEEPS)
    if stalled:
        say(f"[{name}] TLS handshakes stalled: mss-sweep from {SWEEP_FROM} to {', '.join(stalled)} ...")
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(stalled)) as pool:
            docs[SWEEP_FROM] += list(pool.map(lambda target: probing.sweep(topo, SWEEP_FROM, target, svc.cert.ca), stalled))
        timings["mss-sweep"] = time.monotonic() - started
    return docs


def check(scenario: Scenario, diagnosis: Diagnosis, fix: AppliedFix | None, after: Diagnosis | None) -> list[str]:
    """Why the scenario fails: the judge must name the fault, fail it with the default criteria,
    and when the MSS fix is its answer, the clamp must be applied, verified, and leave the path healthy."""
    problems = []
    if diagnosis.kind != scenario.expected:
        problems.append(f"the judge says {diagnosis.kind}")
    if scenario.direction and diagnosis.direction != scenario.direction:
        problems.append(f"the black hole's direction is {diagnosis.direction}, not {scenario.direction}")
    if diagnosis.verdict != "fail":
        problems.append(f"the default criteria give {diagnosis.verdict}, not fail")
    wants_fix = scenario.expected == "pmtu-black-hole"
    if diagnosis.mss_fix_applies != wants_fix:
        problems.append(f"the judge says the MSS fix {'applies' if diagnosis.mss_fix_applies else 'does not apply'}")
    if wants_fix and fix is None:
        problems.append("no clamp was measured, so no fix was applied")
    if fix and not fix.verified:
        problems.append("the gateway's verify failed")
    if fix and (after is None or after.kind != "healthy" or after.verdict != "pass"):
        problems.append(f"after the fix: {after.verdict if after else 'no'} {after.kind if after else 'probes'}")
    return problems


def _gate(topo: Topology, svc: services.Services, folder: Path, path_mtu: int | None, say: Callable[[str], None], name: str,
          timings: dict[str, float], label: str) -> GateRun:
    started = time.monotonic()
    run = lab_gate.gate(topo, svc.cert.ca, services.TEST_IMAGE, folder, path_mtu)
    timings[label] = time.monotonic() - started
    say(f"[{name}] post-up {label}: {run.verdict.upper()}")
    return run


def check_gate(diagnosis: Diagnosis, measured: int | None, gates: list[tuple[str, GateRun]], gateway_measured: bool = True) -> list[str]:
    """With the MSS fix the answer: the gateway's own measurement (when it measured) agrees with the
    judge's clamp, the gate fails the deploy before the fix naming the black hole and its clamp, and
    passes after it."""
    if not diagnosis.mss_fix_applies or not diagnosis.recommended_clamp:
        return []
    problems = []
    if gateway_measured and (measured is None or mss_from_path_mtu(measured, ipv6=False) != diagnosis.recommended_clamp):
        problems.append(f"the gateway measured path MTU {measured}, not the judge's {diagnosis.recommended_clamp} + 40")
    runs = dict(gates)
    before, after = runs.get("before the fix"), runs.get("after the fix")
    if before is None or before.verdict != "fail" or "pmtu-black-hole" not in before.text or f"clamp {diagnosis.recommended_clamp}" not in before.text:
        problems.append("the gate did not fail the deploy on the black hole with its clamp")
    if after is None or after.verdict != "pass":
        problems.append(f"after the fix the gate says {after.verdict if after else 'nothing'}")
    return problems


def gate_section(measured: int | None, gates: list[tuple[str, GateRun]], gateway_measured: bool = True) -> str:
    if not gates:
        return ""
    out = ["", "## The post-up gate (NetworkGate's own create, on the rendered probe runs)", ""]
    if measured is not None and gateway_measured:
        out += [f"The gateway measured path MTU **{measured}** from its VM-subnet address (`gateway.pathMtu: auto`); the clamp applied "
                f"is for that value.", ""]
    elif measured is not None:
        out += [f"The clamp applied is for path MTU **{measured}**, the judge's (`gateway.pathMtu: {measured}`): the gateway's own "
                "measurement sweeps the endpoints (`validation.endpoints`), and the hole is only on the way to a host a registry "
                "redirected the pulls to.", ""]
    for label, run in gates:
        out += [f"### {label}: {run.verdict.upper()}", "", "```text", run.text.strip(), "```", "", f"Report: `{run.report}`", ""]
    return "\n".join(out)


def apply_fix(topo: Topology, path_mtu: int, root: Path) -> AppliedFix:
    """The clamp for the path MTU the gateway measured, as `gateway.pathMtu: auto` sets it: the same
    script the GatewayFirewall component runs. Its boot-time files go under `root` (NETSTAB_ROOT):
    the gateway namespace shares this machine's /etc."""
    rules = GatewayRules.build([lab_topology.VM_SUBNET], stack="lab", path_mtu=path_mtu, mtu=lab_topology.VM_MTU)
    script = gateway_script("apply", "nftables", rules)
    topo.run("gw", "env", f"NETSTAB_ROOT={root}", "sh", "-c", script)
    verify = topo.run("gw", "env", f"NETSTAB_ROOT={root}", "sh", "-c", gateway_script("verify", "nftables", rules), check=False)
    return AppliedFix(script, verify.stdout + verify.stderr, verify.returncode == 0)


def _save(report_dir: Path, when: str, docs: dict[str, list[dict[str, Any]]]) -> None:
    for host, host_docs in docs.items():
        (report_dir / f"{when}-{host}.json").write_text(json.dumps(host_docs, indent=2))


def run_mirror(topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    steps, timings = lab_mirror.run_steps(topo, work, say)
    for index, step in enumerate(steps):
        say(f"[mirror] {step.name}: {'PASS' if step.passed else 'FAIL'} ({step.record.get('served_by') or step.record['error_class']})")
        (report_dir / f"step-{index + 1}.json").write_text(json.dumps(step.record, indent=2))
    (report_dir / "REPORT.md").write_text(lab_mirror.report(steps, timings))
    failed = [s.name for s in steps if not s.passed]
    return Outcome("mirror", not failed, "cached pulls and fallback behave" if not failed else "mirror steps failed",
                   [f"step failed: {name}" for name in failed], timings, report_dir)


# ---------------------------------------------------------------- intermittent (continuous probes: lab/intermittent.py)

NAMES = (*NAMES, "intermittent")


def run_intermittent(topo: Topology, work: Path, report_dir: Path, say: Callable[[str], None]) -> Outcome:
    from lab import intermittent

    passed, headline, problems, timings = intermittent.run(topo, work, report_dir, say)
    return Outcome("intermittent", passed, headline, problems, timings, report_dir)
