"""ContinuousProbes: the netstab-probe timer on every cluster node, the mirror VM and the Proxmox
host (render/monitoring.py renders what it installs). One remote step per host: its text changes
with the settings, so a change updates it in place (the install converges); its delete removes the
probe when monitoring is disabled or the stack destroyed. A step on a VM goes with the VM."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components import remote
from components.config import StackConfig
from components.config.validation import PROXMOX
from components.nodes import proxmox_connection
from components.render.bundle import HostProbe
from components.render.shell import as_root


@dataclass(frozen=True)
class ContinuousProbesArgs:
    config: StackConfig
    probes: Mapping[str, HostProbe]  # host -> what to install there (Artifacts.monitoring)
    agent: str  # probes/agent.py, on stdin
    connections: Mapping[str, command.remote.ConnectionArgs]  # node or mirror name -> SSH to it
    vms: Mapping[str, pulumi.Resource]  # node or mirror name -> its VM
    ssh_private_key: pulumi.Input[str]  # for the Proxmox host
    after: Sequence[pulumi.Resource] = ()  # nodes booted, the mirror healthy


class ContinuousProbes(pulumi.ComponentResource):
    def __init__(self, name: str, args: ContinuousProbesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:monitoring:ContinuousProbes", name, None, opts)
        self.installed: dict[str, command.remote.Command] = {}
        for host, probe in args.probes.items():
            if host == PROXMOX:
                px = args.config.proxmox
                conn, on, user = proxmox_connection(px, args.ssh_private_key), None, px.ssh_user
            else:
                conn, on, user = args.connections[host], args.vms[host], args.config.ssh.user
            self.installed[host] = remote.run(
                f"{name}-{host}", conn, as_root(probe.install, user), pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
                delete=as_root(probe.remove, user), stdin=args.agent, on=on,
            )
        self.register_outputs({})
