"""The post-up gate and the gateway's own measurement (gateway.pathMtu: auto), run in the lab as
`pulumi up` runs them: the rendered scripts, with the agent on stdin, inside the namespaces; the
NetworkGate provider's own create judging their output.

The lab's servers use its own CA: the scripts get it through SSL_CERT_FILE (the agent's default
trust store honours it), the one thing that differs from a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import NetworkConfig, ValidationConfig
from components.kubeapi import GateError
from components.mss import mss_from_path_mtu
from components.networkgate import NetworkGateProvider
from components.render.gateway_measure import measure_script, measured_path_mtu
from components.render.validation import probe_script
from components.validation import gate_spec
from lab import topology as lab_topology
from lab.netns import Topology
from lab.probing import ENDPOINTS
from probes import agent_source

# the gate's vantage points: the lab's reference host plays the Proxmox host
VANTAGE_POINTS = {"cp1": "cp1", "worker1": "worker1", "proxmox": "pve"}


@dataclass(frozen=True)
class GateRun:
    verdict: str  # the gate's verdict; "fail" when its create refused (mode enforce)
    text: str  # the gate's message: its error when it failed the deploy, its summary when not
    report: Path


# the lab's own gate settings: 3 repeats, as its Phase 1
LAB_SETTINGS = {"repeats": 3, "budgetSeconds": 60}


def validation(image: str, settings: Mapping[str, Any] | None = None) -> ValidationConfig:
    """The gate's settings for the lab: its endpoints and image, with `settings` (stack `validation`
    keys; default LAB_SETTINGS; `{}` is the stack's defaults, as bench/gate_cost.py measures them)."""
    chosen = LAB_SETTINGS if settings is None else settings
    return ValidationConfig.model_validate({**chosen, "endpoints": ENDPOINTS, "images": [image]})


def _run_script(topo: Topology, host: str, script: str, ca_file: Path, timeout: float, root: Path | None = None) -> str:
    """`root`: NETSTAB_ROOT for what the script keeps (the namespaces share this machine's files)."""
    env = [f"SSL_CERT_FILE={ca_file}", *([f"NETSTAB_ROOT={root}"] if root else [])]
    done = topo.run(host, "env", *env, "sh", "-c", script, input_text=agent_source(), timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the rendered script failed on {host} ({done.returncode}): {done.stderr[-800:]}")
    return done.stdout


def gate(topo: Topology, ca_file: Path, image: str, report_dir: Path, gateway_path_mtu: int | None,
         config: ValidationConfig | None = None) -> GateRun:
    """Every vantage point's rendered probe run, at once; then NetworkGate's create on their output."""
    config = config or validation(image)
    with ThreadPoolExecutor(max_workers=len(VANTAGE_POINTS)) as pool:
        outputs = dict(zip(VANTAGE_POINTS, pool.map(
            lambda point: _run_script(topo, VANTAGE_POINTS[point], probe_script(point, config, None), ca_file, config.budget_s + 60),
            VANTAGE_POINTS), strict=True))
    mss = mss_from_path_mtu(gateway_path_mtu, ipv6=False) if gateway_path_mtu else None
    spec = gate_spec(config, report_dir, mss, "auto", remeasure=0, stack="lab")
    try:
        created = NetworkGateProvider().create({"runs": outputs, "spec": spec, "run_id": "lab"})
    except GateError as failed:
        return GateRun("fail", str(failed), report_dir / "REPORT.md")
    outs = created.outs or {}
    return GateRun(str(outs["verdict"]), str(outs["summary"]), Path(outs["report"]))


def measure_from_gateway(topo: Topology, ca_file: Path, root: Path) -> tuple[int, str]:
    """gateway.pathMtu: auto: the rendered measurement, run on the gateway, bound to its VM-subnet address."""
    topo.set_hosts_file("gw", lab_topology.NAMES)
    network = NetworkConfig.model_validate({"bridge": "br0", "subnet": lab_topology.VM_SUBNET, "gateway": lab_topology.GATEWAY_VM_IP,
                                            "dns": ["192.0.2.1"], "mtu": lab_topology.VM_MTU})
    output = _run_script(topo, "gw", measure_script(network, ENDPOINTS, "lab", reuse=False), ca_file, 120, root)
    return measured_path_mtu(output, lab_topology.VM_MTU), output
