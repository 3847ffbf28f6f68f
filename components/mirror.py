"""RegistryMirror: the pull-through cache VM, healthy before any node's registries.yaml points at
it, then warmed with the priority images. NodeRegistries: registries.yaml on every node."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi

from components import remote
from components.config import StackConfig
from components.render import cloudinit
from components.render import mirror as render
from components.render.k3s import as_login_user, as_root
from components.vm import ProxmoxVm, ProxmoxVmArgs, VmSpec

AGENT = Path(__file__).resolve().parent.parent / "probes" / "agent.py"


@dataclass(frozen=True)
class RegistryMirrorArgs:
    config: StackConfig
    ssh_private_key: pulumi.Input[str]
    boot_disk_file_id: pulumi.Input[str] | None = None
    credentials: pulumi.Input[Any] | None = None  # secret JSON, see netstab:mirrorCredentials
    after: Sequence[pulumi.Resource] = ()


class RegistryMirror(pulumi.ComponentResource):
    health: pulumi.Output[str]
    warmup: pulumi.Output[str]

    def __init__(self, name: str, args: RegistryMirrorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:mirror:RegistryMirror", name, None, opts)
        cfg = args.config
        mirror = cfg.mirror
        assert mirror.enabled and mirror.vm is not None
        vm_cfg = mirror.vm
        spec = VmSpec(vm_cfg.name, vm_cfg.vm_id, vm_cfg.cores, vm_cfg.memory_mb, vm_cfg.disk_gb, vm_cfg.mac, ("netstab", "mirror"),
                      cloudinit.network_config(vm_cfg, cfg.network), render.user_data(mirror, cfg.network, cfg.ssh))
        vm = ProxmoxVm(f"{name}-vm", ProxmoxVmArgs(spec, cfg.proxmox, cfg.network, args.boot_disk_file_id, cfg.image.template_vm_id),
                       opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)))
        conn = remote.connection(str(vm_cfg.ip), cfg.ssh.user, args.ssh_private_key)
        steps: list[pulumi.Resource] = [vm]
        if args.credentials is not None:
            lines: pulumi.Output[str] = pulumi.Output.from_input(args.credentials).apply(render.credentials_stdin)
            stdin = cast("pulumi.Output[str]", pulumi.Output.secret(lines))
            steps.append(remote.run(f"{name}-credentials", conn, as_root(render.credentials_script(mirror)),
                                    pulumi.ResourceOptions(parent=self, depends_on=[vm]), stdin=stdin))
        health = remote.run(f"{name}-health", conn, as_root(render.health_script(mirror)), pulumi.ResourceOptions(parent=self, depends_on=steps))
        warm_text = render.warmup_script(mirror, cfg.k3s.version)
        agent = AGENT.read_text()
        warm = remote.run(f"{name}-warmup", conn, as_login_user(warm_text), pulumi.ResourceOptions(parent=self, depends_on=[health]),
                          stdin=agent, extra_triggers=[remote.script_hash(agent)])
        self.healthy = health
        self.health = health.stdout
        self.warmup = warm.stdout
        self.register_outputs({"health": self.health, "warmup": self.warmup})


@dataclass(frozen=True)
class NodeRegistriesArgs:
    config: StackConfig
    ssh_private_key: pulumi.Input[str]
    booted: Mapping[str, pulumi.Resource]
    mirror_healthy: pulumi.Resource


class NodeRegistries(pulumi.ComponentResource):
    """registries.yaml on every node: after the node booted and the mirror is healthy, before K3s."""

    def __init__(self, name: str, args: NodeRegistriesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:registries:NodeRegistries", name, None, opts)
        cfg = args.config
        script = as_root(render.registries_update_script(render.registries_yaml(cfg.mirror)))
        self.written: dict[str, pulumi.Resource] = {}
        for node in cfg.nodes:
            conn = remote.connection(str(node.ip), cfg.ssh.user, args.ssh_private_key)
            self.written[node.name] = remote.run(
                f"{name}-{node.name}", conn, script, pulumi.ResourceOptions(parent=self, depends_on=[args.booted[node.name], args.mirror_healthy])
            )
        self.register_outputs({})
