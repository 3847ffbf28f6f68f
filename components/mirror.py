"""RegistryMirror: the pull-through cache VM, healthy before any node's registries.yaml points at
it, then warmed with the priority images. NodeRegistries: registries.yaml on every node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_command as command

from components import remote
from components.config import StackConfig
from components.nodes import guest_network, keyed_vm
from components.render.bundle import MirrorArtifacts, RegistriesArtifacts
from components.render.mirror import credentials_stdin
from components.render.shell import as_login_user, as_root
from components.vm import BootImage, ProxmoxVmArgs, VmSpec


@dataclass(frozen=True)
class RegistryMirrorArgs:
    config: StackConfig
    artifacts: MirrorArtifacts
    agent: str  # the probe agent's text: the warm-up pulls with it
    ssh_private_key: pulumi.Input[str]
    image: BootImage | None = None
    credentials: pulumi.Input[Any] | None = None  # secret JSON, see netstab:mirrorCredentials
    after: Sequence[pulumi.Resource] = ()


class RegistryMirror(pulumi.ComponentResource):
    health: pulumi.Output[str]
    warmup: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryMirrorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:mirror:RegistryMirror", name, None, opts)
        cfg, art = args.config, args.artifacts
        vm_cfg = cfg.mirror.vm
        assert cfg.mirror.enabled and vm_cfg is not None
        spec = VmSpec(vm_cfg.name, vm_cfg.vm_id, vm_cfg.cores, vm_cfg.memory_mb, vm_cfg.disk_gb, vm_cfg.mac, ("netstab", "mirror"),
                      art.network_config, art.user_data)
        # its instances, ports and firewall live in its user-data, which cloud-init applies once per
        # instance: a change of them rebuilds the mirror (a cache; the warm-up fills it again)
        vm, host_key = keyed_vm(f"{name}-vm", ProxmoxVmArgs(spec, cfg.proxmox, cfg.network, args.image, cfg.image.template_vm_id,
                                                            rebuild_on_user_data=True), self, args.after)
        conn = remote.connection(str(vm_cfg.ip), cfg.ssh.user, args.ssh_private_key, host_key)
        # the guest network first: a new address is in place before anything dials it
        network = guest_network(f"{name}-network", vm, art.guest_network, cfg.proxmox, args.ssh_private_key, self)
        # always declared: with no credentials (or fewer) it takes the old ones off the instances
        lines: pulumi.Output[str] = pulumi.Output.from_input(args.credentials).apply(credentials_stdin)
        stdin = cast("pulumi.Output[str]", pulumi.Output.secret(lines))
        credentials = remote.run(f"{name}-credentials", conn, as_root(art.credentials), pulumi.ResourceOptions(parent=self, depends_on=[network]),
                                 stdin=stdin, secret_stdin=True, on=vm.vm)
        health = remote.run(f"{name}-health", conn, as_root(art.health), pulumi.ResourceOptions(parent=self, depends_on=[credentials]), on=vm.vm)
        # the warm-up pulls with the agent it gets on stdin: a new agent re-runs it (it has no delete)
        warm = remote.run(f"{name}-warmup", conn, as_login_user(art.warmup), pulumi.ResourceOptions(parent=self, depends_on=[health]),
                          stdin=args.agent, on=vm.vm)
        self.healthy = health
        self.connection, self.vm = conn, vm.vm  # for steps on the mirror VM from outside (the continuous probe)
        self.health = health.stdout
        self.warmup = warm.stdout
        self.register_outputs({"health": self.health, "warmup": self.warmup})


@dataclass(frozen=True)
class NodeRegistriesArgs:
    config: StackConfig
    artifacts: RegistriesArtifacts
    connections: Mapping[str, command.remote.ConnectionArgs]  # node name -> SSH to it (ClusterNodes.connections)
    booted: Mapping[str, pulumi.Resource]
    vms: Mapping[str, pulumi.Resource]  # node name -> its VM: the file goes (and comes back) with it
    mirror_healthy: pulumi.Resource


class NodeRegistries(pulumi.ComponentResource):
    """registries.yaml on every node: after the node booted and the mirror is healthy, before K3s."""

    def __init__(self, name: str, args: NodeRegistriesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:registries:NodeRegistries", name, None, opts)
        cfg = args.config
        write, remove = as_root(args.artifacts.update), as_root(args.artifacts.remove)
        self.written: dict[str, pulumi.Resource] = {}
        for node in cfg.nodes:
            conn = args.connections[node.name]
            # a delete: disabling the mirror takes the file off every node (and restarts K3s)
            self.written[node.name] = remote.run(
                f"{name}-{node.name}", conn, write, pulumi.ResourceOptions(parent=self, depends_on=[args.booted[node.name], args.mirror_healthy]),
                delete=remove, on=args.vms[node.name],
            )
        self.register_outputs({})
