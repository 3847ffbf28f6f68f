"""NetworkValidation: the post-up gate. Probe runs from each vantage point (the Proxmox host, the
server, an agent node) feed NetworkGate; ClusterGate reads the cluster. Nothing but the stack's
exports depends on them.

The probe runs re-run whenever the gate runs, so the gate never judges stale evidence: their
`triggers` carry the run id, new on every `pulumi up` (`validation.run: always`) or a hash of
what they probe (`on-change`). They have no `delete`, so being replaced is harmless.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_command as command

from components import remote
from components.clustergate import ClusterGate
from components.config import StackConfig
from components.config.validation import PROXMOX
from components.networkgate import NetworkGate
from components.nodes import proxmox_connection
from components.render.bundle import ValidationArtifacts
from components.render.shell import as_login_user

REPORT_DIR = Path("validation-report")


def mss_source(config: StackConfig) -> str:
    """Where this stack's clamp comes from, so the gate says how to change it: auto, path_mtu, mss, pmtu or manual."""
    gw = config.gateway
    if not gw.manage:
        return "manual"
    return "auto" if gw.measured else "path_mtu" if gw.path_mtu is not None else "mss" if gw.mss is not None else "pmtu"


def run_id(config: StackConfig, artifacts: ValidationArtifacts) -> str:
    """New on every program run for `always`; for `on-change`, a hash of the probe runs (so of every setting they follow)."""
    if config.validation.run == "always":
        return uuid.uuid4().hex
    return hashlib.sha256("".join(artifacts.probe_runs[p] for p in sorted(artifacts.probe_runs)).encode()).hexdigest()[:16]


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


class NetworkValidation(pulumi.ComponentResource):
    network_verdict: pulumi.Output[dict[str, object]]
    cluster_verdict: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkValidationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:validation:NetworkValidation", name, None, opts)
        cfg, validation = args.config, args.config.validation
        current = run_id(cfg, args.artifacts)
        runs: dict[str, pulumi.Output[str]] = {}
        for point, script in args.artifacts.probe_runs.items():
            if point == PROXMOX:
                conn, on = proxmox_connection(cfg.proxmox, args.ssh_private_key), None
            else:
                conn, on = args.connections[point], args.vms[point]
            probe = remote.run(f"{name}-probe-{point}", conn, as_login_user(script), pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                               stdin=args.agent, data_stdout=True, on=on, replace_on=[current])
            runs[point] = probe.stdout
        spec = {
            "mode": validation.mode,
            "criteria": validation.criteria.judge_criteria(),
            "reference": [PROXMOX],
            "report_dir": str((Path.cwd() / REPORT_DIR).resolve()),
            "gateway_mss": args.gateway_mss,
            "mss_source": mss_source(cfg),
            "remeasure": cfg.gateway.remeasure,
            "stack": pulumi.get_stack(),
        }
        gate = NetworkGate(f"{name}-network-gate", runs, spec, current, opts=pulumi.ResourceOptions(parent=self))
        cluster = ClusterGate(f"{name}-cluster-gate", args.kubeconfig, {"mode": validation.mode}, current,
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
