"""ClusterNodes: a VM per cluster node at the stack MTU, and a wait until cloud-init has finished.

Split from K3sCluster so that files a later layer places on the nodes (registries.yaml) fit in
between: nodes booted -> files written -> K3s installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components import remote
from components.config import StackConfig
from components.render.bundle import ClusterArtifacts
from components.render.shell import as_root
from components.vm import ProxmoxVm, ProxmoxVmArgs, VmSpec


@dataclass(frozen=True)
class ClusterNodesArgs:
    config: StackConfig
    artifacts: ClusterArtifacts
    ssh_private_key: pulumi.Input[str]
    boot_disk_file_id: pulumi.Input[str] | None = None
    # What the VMs wait for (the gateway fix): a component's depends_on does not reach its children.
    after: Sequence[pulumi.Resource] = ()


class ClusterNodes(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterNodesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:nodes:ClusterNodes", name, None, opts)
        cfg, art = args.config, args.artifacts
        self.vms: dict[str, ProxmoxVm] = {}
        self.booted: dict[str, pulumi.Resource] = {}
        for node in cfg.nodes:
            spec = VmSpec(
                name=node.name,
                vm_id=node.vm_id,
                cores=node.cores,
                memory_mb=node.memory_mb,
                disk_gb=node.disk_gb,
                mac=node.mac,
                tags=("netstab", "k3s", node.role),
                network_config=art.nodes[node.name].network_config,
                user_data=art.nodes[node.name].user_data,
            )
            vm = ProxmoxVm(
                f"{name}-{node.name}",
                ProxmoxVmArgs(spec, cfg.proxmox, cfg.network, args.boot_disk_file_id, cfg.image.template_vm_id),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            self.vms[node.name] = vm
            conn = remote.connection(str(node.ip), cfg.ssh.user, args.ssh_private_key)
            self.booted[node.name] = remote.run(
                f"{name}-{node.name}-cloud-init", conn, as_root(art.cloud_init_wait), pulumi.ResourceOptions(parent=self, depends_on=[vm])
            )
        self.register_outputs({"vm_ids": {n: vm.vm_id for n, vm in self.vms.items()}})
