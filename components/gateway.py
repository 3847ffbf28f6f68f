"""GatewayFirewall: the MSS clamp and ICMP rules on the VM subnet's gateway, over SSH.

create/update run `apply`, delete runs `remove`; a second command runs `verify` after every apply
and its output is exported. New rules update in place (apply converges this stack's rules,
whatever MSS they had); another gateway or flavor replaces them delete-first, so the old remove
runs where the old rules are, before the new apply.

gateway.pathMtu: auto: a `measure` step runs first (on the first `up`, and again only when
gateway.remeasure changes), and the rules are those for the path MTU it measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import remote
from components.config import GatewayConfig, NetworkConfig
from components.render.bundle import GatewayArtifacts
from components.render.gateway_measure import MeasureError, measured_path_mtu
from components.render.shell import as_root


@dataclass(frozen=True)
class GatewayFirewallArgs:
    gateway: GatewayConfig
    network: NetworkConfig
    artifacts: GatewayArtifacts
    agent: str  # the probe agent: the measurement (pathMtu: auto) sweeps with it
    ssh_private_key: pulumi.Input[str]


class GatewayFirewall(pulumi.ComponentResource):
    verified: pulumi.Output[str]
    path_mtu: pulumi.Output[int] | None  # measured (pathMtu: auto), else None

    def __init__(self, name: str, args: GatewayFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:gateway:GatewayFirewall", name, None, opts)
        gw, art = args.gateway, args.artifacts
        assert gw.manage and gw.host and gw.host_key, "GatewayFirewall needs gateway.manage, host and hostKey (config validation ensures it)"
        conn = remote.connection(gw.host, gw.user, args.ssh_private_key, gw.host_key, port=gw.port)
        here = pulumi.ResourceOptions(parent=self)
        apply: pulumi.Input[str]
        verify_text: pulumi.Input[str]
        self.path_mtu = None
        after: list[pulumi.Resource] = []
        if art.measure is None:
            apply, verify_text = as_root(art.scripts["apply"], gw.user), as_root(art.scripts["verify"], gw.user)
        else:
            assert art.measure_again is not None and art.for_path_mtu is not None, "a measured gateway renders all three"
            # measured on create; an update (a new agent or endpoint list) prints the kept measurement;
            # gateway.remeasure replaces the step, and its create measures again with the current script
            measure = remote.run(f"{name}-measure", conn, as_root(art.measure, gw.user), here, stdin=args.agent,
                                 update=as_root(art.measure_again, gw.user), data_stdout=True, replace_on=[f"remeasure {gw.remeasure}"])
            mtu, render_for = args.network.mtu, art.for_path_mtu
            self.path_mtu = measure.stdout.apply(lambda out: _path_mtu(out, mtu))
            scripts = self.path_mtu.apply(render_for)
            apply = scripts.apply(lambda s: as_root(s["apply"], gw.user))
            verify_text = scripts.apply(lambda s: as_root(s["verify"], gw.user))
            after.append(measure)
        where = f"{gw.user}@{gw.host}:{gw.port} {gw.flavor}"
        applied = remote.run(f"{name}-rules", conn, apply, pulumi.ResourceOptions(parent=self, depends_on=after),
                             delete=as_root(art.scripts["remove"], gw.user), replace_on=[where])
        # re-verify whenever the applied rules change, not only when verify's own text does
        self.verify = remote.run(f"{name}-verify", conn, verify_text, pulumi.ResourceOptions(parent=self, depends_on=[applied]),
                                 replace_on=[pulumi.Output.from_input(apply).apply(remote.script_hash)])
        self.verified = self.verify.stdout
        self.register_outputs({"verified": self.verified, "path_mtu": self.path_mtu})


def _path_mtu(output: str, mtu: int) -> int:
    """The measured path MTU; a measurement without one stops `pulumi up` with its message alone."""
    try:
        return measured_path_mtu(output, mtu)
    except MeasureError as exc:
        raise pulumi.RunError(f"netstab: gateway.pathMtu: auto: {exc}") from None
