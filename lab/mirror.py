"""The mirror scenario: a real docker-registry pull-through instance on the VM subnet, started from
the rendered config, in front of the real upstream registry on the simulated internet.

Shows: pulls from cp1 through the mirror match the upstream digests; with the upstream
unreachable, cached images still pull; with the mirror stopped, pulls fall back to the upstream.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.config import MirrorConfig, UpstreamConfig, WarmupConfig
from components.render import mirror as render
from components.render.registry import registry_config
from lab import probing, services
from lab import registry as lab_registry
from lab import topology as lab_topology
from lab.netns import Topology, wait_for_port

UPSTREAM = UpstreamConfig(registry="ghcr.io", remote="https://ghcr.io", port=5002)


def lab_mirror() -> MirrorConfig:
    import ipaddress

    return MirrorConfig(enabled=True, name="mirror", vm_id=2731, ip=ipaddress.ip_address(lab_topology.MIRROR_IP),
                        upstreams=(UPSTREAM,), warmup=WarmupConfig(groups={}, k3s_images=False))


def start_mirror(topo: Topology, work: Path, ca_file: Path) -> Any:
    """The rendered instance config, with its storage moved into the lab's work folder."""
    instance = dataclasses.replace(render.instance(lab_mirror(), UPSTREAM), storage_dir=str(work / "mirror-data"))
    config = work / "mirror" / "ghcr.io.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(registry_config(instance))
    proc = topo.start("mirror", *lab_registry.command(config), env={"SSL_CERT_FILE": str(ca_file)}, log=work / "mirror" / "registry.log")
    wait_for_port(topo, "cp1", lab_topology.MIRROR_IP, UPSTREAM.port)
    return proc


@dataclasses.dataclass
class Step:
    name: str
    expect: str
    record: dict[str, Any]
    passed: bool


def pull(topo: Topology, ca: Path, mirror: str | None) -> dict[str, Any]:
    args = ["pull", services.TEST_IMAGE, "--ca-file", str(ca), "--timeout", "3"] + (["--mirror", mirror] if mirror else [])
    return dict(probing.agent(topo, "cp1", *args)["records"][0])


def run_steps(topo: Topology, work: Path, say: Callable[[str], None]) -> tuple[list[Step], dict[str, float]]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    lab_topology.build(topo, narrow_mtu=1500)
    lab_topology.add_vm(topo, "mirror", lab_topology.MIRROR_IP)
    svc = services.start(topo, work)
    mirror_proc = start_mirror(topo, work, svc.cert.ca)
    timings["setup"] = time.monotonic() - started
    steps: list[Step] = []

    direct = pull(topo, svc.cert.ca, None)
    say(f"[mirror] direct pull from the upstream: {direct.get('digest') or direct['error_class']}")
    upstream_digest = direct.get("digest")
    empty = not stored(work, upstream_digest)
    cold = pull(topo, svc.cert.ca, mirror_url())
    steps.append(Step("cold pull through the mirror", "served by the mirror, upstream's digest, now stored by the mirror", cold,
                      empty and _served(cold, "mirror", upstream_digest) and stored(work, upstream_digest)))
    topo.stop(svc.registry_proc)
    cached = pull(topo, svc.cert.ca, mirror_url())
    steps.append(Step("cached pull, upstream unreachable", "still served by the mirror, from its cache", cached, _served(cached, "mirror", upstream_digest)))
    no_upstream = pull(topo, svc.cert.ca, None)
    steps.append(Step("upstream unreachable, no mirror", "fails: the upstream really is down", no_upstream, not no_upstream["ok"]))
    topo.stop(mirror_proc)
    restart_upstream(topo, work, svc)
    fallback = pull(topo, svc.cert.ca, mirror_url())
    steps.append(Step("mirror stopped", "falls back to the upstream", fallback, _served(fallback, "upstream", upstream_digest)))
    timings["total"] = time.monotonic() - started
    return steps, timings


def _served(record: dict[str, Any], role: str, digest: str | None) -> bool:
    return bool(record["ok"] and record.get("served_by") == role and digest and record.get("digest") == digest)


def stored(work: Path, digest: str | None) -> bool:
    """The mirror's storage holds this blob (the filesystem driver's layout)."""
    if not digest:
        return False
    algorithm, _, hexdigest = digest.partition(":")
    return (work / "mirror-data" / "docker" / "registry" / "v2" / "blobs" / algorithm / hexdigest[:2] / hexdigest / "data").is_file()


def mirror_url() -> str:
    """The mirror's endpoint on the VM subnet, as registries.yaml names it."""
    return f"http://{lab_topology.MIRROR_IP}:{UPSTREAM.port}"


def restart_upstream(topo: Topology, work: Path, svc: services.Services) -> None:
    """Bring the upstream back with its stored content (same config and storage)."""
    proc = topo.start("registry", *lab_registry.command(work / "registry" / "config.yml"), log=work / "registry" / "registry.log")
    svc.registry_proc = proc
    wait_for_port(topo, "registry", lab_topology.REGISTRY_IP, 443)


def report(steps: list[Step], timings: dict[str, float]) -> str:
    lines = ["# netstab lab: mirror", "", "A real `docker-registry` pull-through instance on the VM subnet (10.27.27.5:5002), started from "
             "the rendered mirror config, in front of the upstream registry answering as ghcr.io. Pulls run from cp1 with the probe agent "
             "(`pull --mirror`, falling back to the upstream as containerd does).", "",
             f"**Result: {'PASS' if all(s.passed for s in steps) else 'FAIL'}**", "",
             "| step | expected | result | served by | digest | time (ms) |", "| --- | --- | --- | --- | --- | ---: |"]
    for s in steps:
        r = s.record
        outcome = "ok" if r["ok"] else r["error_class"]
        lines.append(f"| {s.name} | {s.expect} | {'PASS' if s.passed else 'FAIL'}: {outcome} | {r.get('served_by', '-')} | "
                     f"{(r.get('digest') or '-')[:19]} | {r['phases_ms'].get('total', 0):.0f} |")
    lines += ["", "## Timings", ""] + [f"- {k}: {v:.1f} s" for k, v in timings.items()] + [""]
    return "\n".join(lines)
