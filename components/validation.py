"""NetworkValidation: the post-up gate. Probe runs from each vantage point (the Proxmox host, the
server, an agent node) feed NetworkGate; ClusterGate reads the cluster. Nothing but the stack's
exports depends on them.

The probe runs re-run whenever the gate runs, so the gate never judges stale evidence: their
`triggers` carry the run id, new on every `pulumi up` (`validation.run: always`) or, with
`on-change`, a hash of everything the gate's judgement rests on: what the runs probe, the gate's
spec (criteria, the clamp the gateway applies), the rendered network they cross, and the nonce the
last failed gate run left in the report folder (components/gate.py), so the `up` after a failure
probes again. They have no `delete`, so being replaced is harmless.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_command as command

from components import remote
from components.clustergate import ClusterGate
from components.config import StackConfig, ValidationConfig
from components.config.validation import PROXMOX
from components.gate import digest, last_failure
from components.networkgate import NetworkGate
from components.nodes import proxmox_connection
from components.render.bundle import Artifacts, ValidationArtifacts
from components.render.shell import as_login_user

REPORT_DIR = Path("validation-report")


def mss_source(config: StackConfig) -> str:
    """Where this stack's clamp comes from, so the gate says how to change it: auto, path_mtu, mss, pmtu or manual."""
    gw = config.gateway
    if not gw.manage:
        return "manual"
    return "auto" if gw.measured else "path_mtu" if gw.path_mtu is not None else "mss" if gw.mss is not None else "pmtu"


def gate_spec(validation: ValidationConfig, report_dir: Path, gateway_mss: pulumi.Input[int] | None, source: str, remeasure: int,
              stack: str) -> dict[str, Any]:
    """What NetworkGate judges with: the criteria and mode, the Proxmox host as the reference, where
    the report goes, and the clamp the gateway applies and how this stack changes it (the lab's
    gate step builds it here too)."""
    return {"mode": validation.mode, "criteria": validation.criteria.judge_criteria(), "reference": [PROXMOX], "report_dir": str(report_dir),
            "gateway_mss": gateway_mss, "mss_source": source, "remeasure": remeasure, "stack": stack}


def network_digest(artifacts: Artifacts) -> str:
    """The probed path as rendered: every VM's network config, registries.yaml and the gateway's
    scripts (a measured clamp is not in them: it reaches the run id through the gate's spec)."""
    parts = [node.network_config for _, node in sorted(artifacts.cluster.nodes.items())]
    parts += [artifacts.mirror.network_config if artifacts.mirror else "", artifacts.registries.content if artifacts.registries else ""]
    parts += [f"{action}\n{script}" for action, script in sorted(artifacts.gateway.scripts.items())]
    parts.append(artifacts.gateway.manual or "")
    return digest(*parts)


def run_id(run: str, probe_runs: Mapping[str, str], network: str, spec: Mapping[str, Any], failure: str = "") -> pulumi.Input[str]:
    """New on every program run for `always`. For `on-change`: new whenever anything the gate's
    judgement rests on changed, so that a changed criterion or clamp is never judged on old evidence,
    and after every failed gate run (`failure`: its nonce), so a failure is judged again on fresh evidence."""
    if run == "always":
        return uuid.uuid4().hex
    return pulumi.Output.from_input(spec).apply(lambda resolved: digest(sorted(probe_runs.items()), network, resolved,
                                                                        *([failure] if failure else [])))


@dataclass(frozen=True)
class NetworkValidationArgs:
    config: StackConfig
    artifacts: ValidationArtifacts
    agent: str
    connections: Mapping[str, command.remote.ConnectionArgs]  # node name -> SSH to it
    ssh_private_key: pulumi.Input[str]  # for the Proxmox host
    kubeconfig: pulumi.Input[str]
    vms: Mapping[str, pulumi.Resource]  # node name -> its VM
    after: Sequence[pulumi.Resource]  # the gateway fix, registries.yaml, K3s Ready
    gateway_mss: pulumi.Input[int] | None = None  # the IPv4 MSS the gateway clamps to; None in pmtu mode
    network: str = ""  # network_digest() of the stack's artifacts: on-change re-probes when it changes


class NetworkValidation(pulumi.ComponentResource):
    network_verdict: pulumi.Output[dict[str, object]]
    cluster_verdict: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkValidationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:validation:NetworkValidation", name, None, opts)
        cfg, validation = args.config, args.config.validation
        spec = gate_spec(validation, (Path.cwd() / REPORT_DIR).resolve(), args.gateway_mss, mss_source(cfg), cfg.gateway.remeasure,
                         pulumi.get_stack())
        report_dir = (Path.cwd() / REPORT_DIR).resolve()
        current = run_id(validation.run, args.artifacts.probe_runs, args.network, spec, last_failure(report_dir))
        runs: dict[str, pulumi.Output[str]] = {}
        for point, script in args.artifacts.probe_runs.items():
            if point == PROXMOX:
                conn, on = proxmox_connection(cfg.proxmox, args.ssh_private_key), None
            else:
                conn, on = args.connections[point], args.vms[point]
            probe = remote.run(f"{name}-probe-{point}", conn, as_login_user(script), pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                               stdin=args.agent, data_stdout=True, on=on, replace_on=[current])
            runs[point] = probe.stdout
        gate = NetworkGate(f"{name}-network-gate", runs, spec, current, opts=pulumi.ResourceOptions(parent=self))
        cluster = ClusterGate(f"{name}-cluster-gate", args.kubeconfig, {"mode": validation.mode, "report_dir": str(report_dir)}, current,
                              opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        if validation.mode == "warn":
            gate.verdict.apply(lambda verdict: _warn_on_fail(verdict, gate.text))
            cluster.verdict.apply(lambda verdict: _warn_on_fail(verdict, cluster.text))
        self.network_verdict = pulumi.Output.all(gate.verdict, gate.kind, gate.summary, gate.table, gate.report).apply(
            lambda v: {"verdict": v[0], "kind": v[1], "summary": v[2], "table": v[3], "report": v[4]})
        self.cluster_verdict = cluster.verdict
        self.register_outputs({"network_verdict": self.network_verdict, "cluster_verdict": self.cluster_verdict})


def _warn_on_fail(verdict: str, text: pulumi.Output[str]) -> None:
    if verdict == "fail":
        text.apply(lambda message: pulumi.log.warn(f"{message}\n(validation.mode: warn, so `pulumi up` goes on)"))
