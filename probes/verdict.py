"""Evidence -> diagnosis. Pure: takes `netstab.probe/v1` documents, returns what is wrong and whether
the MSS fix is the answer. Used by the lab now and by the post-deploy probes later.

Kinds: healthy, pmtu-black-hole, dns, upstream-down, packet-loss, unknown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

CONNECT_CLASSES = ("connect_refused", "connect_timeout", "connect_error")


@dataclass
class Diagnosis:
    kind: str
    summary: str
    mss_fix_applies: bool
    recommended_clamp: int | None = None
    # class -> target -> hosts where it failed that way
    failures: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"diagnosis: {self.kind} - {self.summary}"]
        out.append("the MSS fix applies" + (f": clamp to {self.recommended_clamp}" if self.recommended_clamp else "")
                   if self.mss_fix_applies else "the MSS fix is not the answer here")
        for cls, targets in sorted(self.failures.items()):
            for target, hosts in sorted(targets.items()):
                out.append(f"  {cls:<22} {target}  on {', '.join(sorted(set(hosts)))}")
        return out


def failures_by_class(docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    grouped: dict[str, dict[str, list[str]]] = {}
    for host, doc in docs.items():
        for rec in doc.get("records", []):
            if not rec["ok"]:
                grouped.setdefault(rec["error_class"], {}).setdefault(rec["target"], []).append(host)
    return grouped


def diagnose(docs: dict[str, dict[str, Any]], sweep: dict[str, Any] | None = None, reference_host: str | None = None) -> Diagnosis:
    """`docs`: host -> http evidence; `sweep`: an mss-sweep result from an affected host;
    `reference_host`: a host outside the VM subnet (the Proxmox host) to compare against."""
    grouped = failures_by_class(docs)
    records = [r for doc in docs.values() for r in doc.get("records", [])]
    failed = [r for r in records if not r["ok"]]
    if not failed:
        return Diagnosis("healthy", f"all {len(records)} attempts succeeded", False)
    classes = Counter(r["error_class"] for r in failed)
    top, top_count = classes.most_common(1)[0]
    share = top_count / len(failed)
    affected_hosts = {host for host, doc in docs.items() if any(not r["ok"] for r in doc.get("records", []))}
    reference_ok = reference_host is not None and reference_host in docs and reference_host not in affected_hosts

    if top == "dns_error" and share >= 0.8:
        return Diagnosis("dns", f"names do not resolve on {', '.join(sorted(affected_hosts))}: check the resolver "
                         "(/etc/resolv.conf, systemd-resolved upstreams) and that it is reachable", False, failures=grouped)
    if top in CONNECT_CLASSES and share >= 0.8 and not reference_ok and _consistent(docs):
        targets = sorted({r["target"] for r in failed})
        return Diagnosis("upstream-down", f"{', '.join(targets)} refuse or do not answer TCP from every host, the Proxmox host "
                         "included: the service or the path to it is down, not the packet size", False, failures=grouped)
    if top == "tls_handshake_timeout" and share >= 0.8 and _consistent(docs):
        black_hole = bool(sweep and sweep.get("black_hole"))
        where = " while the Proxmox host's egress passes" if reference_ok else ""
        if black_hole:
            clamp = sweep.get("recommended_clamp") if sweep else None
            return Diagnosis("pmtu-black-hole", f"TCP connects but TLS handshakes stall on {', '.join(sorted(affected_hosts))}{where}; "
                             f"mss-sweep finds a working MSS of {clamp} (path MTU {sweep.get('path_mtu') if sweep else '?'})", True,
                             recommended_clamp=clamp, failures=grouped)
        return Diagnosis("pmtu-black-hole", f"TCP connects but TLS handshakes stall{where}; run mss-sweep to confirm and size the clamp",
                         True, failures=grouped)
    if len(classes) > 1 or not _consistent(docs):
        sweep_note = " mss-sweep finds no consistent size limit." if sweep and not sweep.get("black_hole") else ""
        return Diagnosis("packet-loss", f"intermittent failures across classes ({', '.join(f'{c} x{n}' for c, n in classes.most_common())}) "
                         f"with successes in between: packets are being lost, not sized out.{sweep_note}", False, failures=grouped)
    return Diagnosis("unknown", f"{top} on {len(failed)} of {len(records)} attempts", False, failures=grouped)


def _consistent(docs: dict[str, dict[str, Any]]) -> bool:
    """Every attempt at a failing (host, target) failed: a wall, not a lossy link."""
    for doc in docs.values():
        by_target: dict[str, list[bool]] = {}
        for rec in doc.get("records", []):
            by_target.setdefault(rec["target"], []).append(rec["ok"])
        for oks in by_target.values():
            if any(oks) and not all(oks):
                return False
    return True


