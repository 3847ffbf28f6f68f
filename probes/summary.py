"""The evidence grouped for people: failures by class x target x host, pull failures by image x
node with the node's facts, the reference host against the VM nodes, and the host x target table
(ok/attempts, p50/p95 per phase). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from probes.criteria import percentile
from probes.evidence import Attempt, Collected

PHASES = ("dns", "connect", "tls", "ttfb", "total")


@dataclass(frozen=True)
class FailureGroup:
    error_class: str
    probe: str
    target: str
    host: str
    failed: int
    attempts: int


@dataclass(frozen=True)
class PullFailure:
    image: str
    node: str
    failed: int
    attempts: int
    classes: Mapping[str, int]
    node_facts: str  # MTU, default route, resolver


@dataclass(frozen=True)
class Comparison:
    reference_hosts: tuple[str, ...]
    vm_hosts: tuple[str, ...]
    points_to: str | None  # "vm-egress", "upstream", "reference-path" or None
    text: str


@dataclass(frozen=True)
class Row:
    host: str
    probe: str
    target: str
    ok: int
    attempts: int
    errors: Mapping[str, int]  # failure class -> attempts
    phases_ms: Mapping[str, Mapping[str, float]]  # phase -> {"p50": ms, "p95": ms}, successful attempts only


def _by_cell(ev: Collected) -> dict[tuple[str, str, str], list[Attempt]]:
    """host, probe, target label -> attempts, in the order they first appear."""
    out: dict[tuple[str, str, str], list[Attempt]] = {}
    for a in ev.attempts:
        out.setdefault((a.host, a.probe, a.label), []).append(a)
    return out


def failure_groups(ev: Collected) -> tuple[FailureGroup, ...]:
    groups = []
    for (host, probe, label), atts in _by_cell(ev).items():
        classes = sorted({str(a.error_class) for a in atts if not a.ok})
        groups += [FailureGroup(cls, probe, label, host, sum(a.error_class == cls for a in atts), len(atts)) for cls in classes]
    return tuple(sorted(groups, key=lambda g: (g.error_class, g.probe, g.target, g.host)))


def pull_failures(ev: Collected) -> tuple[PullFailure, ...]:
    out = []
    for (host, probe, image), atts in _by_cell(ev).items():
        failed = [a for a in atts if not a.ok]
        if probe != "pull" or not failed:
            continue
        facts = ev.facts[host].describe() if host in ev.facts else "no host facts in the evidence"
        out.append(PullFailure(image, host, len(failed), len(atts), _classes(atts), facts))
    return tuple(sorted(out, key=lambda p: (p.image, p.node)))


def compare(ev: Collected) -> Comparison:
    """The plan's host-vs-VM comparison: which side of the gateway fails."""
    ref, vms = tuple(h for h in ev.hosts if h in ev.reference), ev.vm_hosts
    bad = {a.host for a in ev.failures}
    ref_bad, vm_bad = [h for h in ref if h in bad], [h for h in vms if h in bad]
    refs = ", ".join(ref)
    if not ref:
        return Comparison(ref, vms, None, "no reference host: probe from the Proxmox host too, to tell the VM subnet's egress from the upstream")
    if not vms:
        return Comparison(ref, vms, None, "no VM node evidence to compare with the reference host")
    heard = {a.host for a in ev.attempts}
    if not heard & set(ref):
        return Comparison(ref, vms, None, f"the reference host ({refs}) recorded no attempts: nothing to compare the VM nodes with")
    if not heard & set(vms):
        return Comparison(ref, vms, None, "the VM nodes recorded no attempts: nothing to compare with the reference host")
    if vm_bad and not ref_bad:
        return Comparison(ref, vms, "vm-egress", f"the reference host ({refs}) passes while VM nodes fail: the fault is on the VM "
                          "side, the subnet's egress through the gateway (MSS clamping, ICMP frag-needed, NAT, firewall) or the "
                          "nodes' own settings")
    if vm_bad and ref_bad:
        return Comparison(ref, vms, "upstream", f"the reference host ({refs}) fails too: look upstream of the gateway (the ISP, "
                          "the upstream DNS, the services)")
    if ref_bad:
        return Comparison(ref, vms, "reference-path", f"only the reference host ({refs}) fails: its own path, not the VM subnet's")
    silent = [h for h in (*ref, *vms) if h not in heard]
    unheard = f"; {', '.join(silent)} recorded no attempts" if silent else ""
    return Comparison(ref, vms, None, f"the reference host ({refs}) and the VM nodes all pass{unheard}")


def table(ev: Collected) -> tuple[Row, ...]:
    rows = []
    for (host, probe, label), atts in _by_cell(ev).items():
        phases = {}
        for phase in PHASES:
            values = [a.phases[phase] for a in atts if a.ok and phase in a.phases]
            if values:
                phases[phase] = {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}
        rows.append(Row(host, probe, label, sum(a.ok for a in atts), len(atts), _classes(atts), phases))
    return tuple(rows)


def _classes(attempts: list[Attempt]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for a in attempts:
        if not a.ok:
            counts[str(a.error_class)] = counts.get(str(a.error_class), 0) + 1
    return dict(sorted(counts.items()))
