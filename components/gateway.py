"""GatewayFirewall: the MSS clamp and ICMP rules on the VM subnet's gateway, over SSH.

create/update run `apply`, delete runs `remove`; a second command runs `verify` after every apply
and its output is exported. Both re-run exactly when the rendered rules change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import remote
from components.config import GatewayConfig
from components.render.bundle import GatewayArtifacts
from components.render.shell import as_root


@dataclass(frozen=True)
class GatewayFirewallArgs:
    gateway: GatewayConfig
    artifacts: GatewayArtifacts
    ssh_private_key: pulumi.Input[str]


class GatewayFirewall(pulumi.ComponentResource):
    verified: pulumi.Output[str]

    def __init__(self, name: str, args: GatewayFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:gateway:GatewayFirewall", name, None, opts)
        gw = args.gateway
        assert gw.manage and gw.host, "GatewayFirewall needs gateway.manage: true and gateway.host (config validation ensures it)"
        assert gw.host_key, "config validation requires gateway.hostKey with manage: true"
        conn = remote.connection(gw.host, gw.user, args.ssh_private_key, gw.host_key, port=gw.port)
        script = {action: as_root(args.artifacts.scripts[action], gw.user) for action in ("apply", "remove", "verify")}
        # New rules update in place: apply converges this stack's rules, whatever MSS they had. Another
        # gateway or flavor replaces, delete-first: the old remove runs where the old rules are, first.
        where = f"{gw.user}@{gw.host}:{gw.port} {gw.flavor}"
        applied = remote.run(f"{name}-rules", conn, script["apply"], pulumi.ResourceOptions(parent=self),
                             delete=script["remove"], replace_on=[where])
        # re-verify whenever the applied rules change, not only when verify's own text does
        verify = remote.run(f"{name}-verify", conn, script["verify"], pulumi.ResourceOptions(parent=self, depends_on=[applied]),
                            replace_on=[remote.script_hash(script["apply"])])
        self.verify = verify
        self.verified = verify.stdout
        self.register_outputs({"verified": self.verified})
