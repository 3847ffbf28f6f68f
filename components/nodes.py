"""ClusterNodes: a VM per cluster node at the stack MTU, booted (cloud-init finished) and its guest
network as rendered.

Split from K3sCluster so that files a later layer places on the nodes (registries.yaml) fit in
between: nodes booted -> files written -> K3s installed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components import remote
from components.config import ProxmoxConfig, StackConfig
from components.hostkeys import HostKey
from components.render.bundle import ClusterArtifacts, GuestNetwork
from components.render.cloudinit import install_host_key
from components.render.shell import as_root
from components.vm import BootImage, ProxmoxVm, ProxmoxVmArgs, VmSpec


class Rolling:
    """One node at a time (docs/lifecycle.md): each node's drain waits for the previous node's ready
    step, in `order` (servers first). The ready steps come later in the program (after the K3s
    installs), so the waits are deferred outputs the cluster resolves as it declares them."""

    def __init__(self, order: Sequence[str]):
        self.order = tuple(order)
        self._waits: dict[str, pulumi.Output[pulumi.Resource]] = {}
        self._resolve: dict[str, Callable[[pulumi.Output[pulumi.Resource]], None]] = {}
        for name in self.order[1:]:
            wait: tuple[pulumi.Output[pulumi.Resource], Callable[[pulumi.Output[pulumi.Resource]], None]] = pulumi.deferred_output()
            self._waits[name], self._resolve[name] = wait

    def after(self, node: str) -> list[pulumi.Input[pulumi.Resource]]:
        """What this node's drain waits for: the previous node back, Ready and uncordoned."""
        return [self._waits[node]] if node in self._waits else []

    def back(self, node: str, ready: pulumi.Resource) -> None:
        """`ready` saw `node` back: the next node may go."""
        following = self.order[self.order.index(node) + 1:]
        if following:
            self._resolve[following[0]](pulumi.Output.from_input(ready))


@dataclass(frozen=True)
class ClusterNodesArgs:
    config: StackConfig
    artifacts: ClusterArtifacts
    ssh_private_key: pulumi.Input[str]
    image: BootImage | None = None
    # Proxmox node -> the cloud image downloaded there (a VM boots from the copy on its own node); others use `image`
    images: Mapping[str, BootImage] = dataclasses.field(default_factory=dict)
    # What the VMs wait for (the gateway fix): a component's depends_on does not reach its children.
    after: Sequence[pulumi.Resource] = ()
    # one node at a time: the drain before each VM waits for the previous node (None: no drain steps)
    rolling: Rolling | None = None


def proxmox_connection(px: ProxmoxConfig, private_key: pulumi.Input[str], node: str | None = None) -> command.remote.ConnectionArgs:
    """SSH to the Proxmox node a VM runs on (default proxmox.node), where its guest-agent steps run
    (`qm guest exec` reaches only VMs of the node it runs on; the provider uploads snippets the same way)."""
    address, host_key = px.placement(node or px.node)
    return remote.connection(address, px.ssh_user, private_key, host_key)


def guest_network(name: str, vm: ProxmoxVm, texts: GuestNetwork, px: ProxmoxConfig, private_key: pulumi.Input[str],
                  parent: pulumi.Resource, node: str | None = None) -> command.remote.Command:
    """First boot: check that the guest carries the rendered network; every later change of it:
    converge the running guest (cloud-init applies network-config only once per instance).

    It runs first, before any step dials the guest: it reaches the guest through the Proxmox host,
    so a new address is in place before a step dials it. On first boot the agent is up and the
    network applied by then: the provider's VM create waits until the agent reports a global unicast
    address (bpg v0.111.1 proxmoxtf/resource/vm/network/network.go ReadNetworkValues ->
    proxmox/nodes/vms/vms.go WaitForNetworkInterfacesFromVMAgent)."""
    return remote.run(
        name,
        proxmox_connection(px, private_key, node),
        as_root(texts.check, px.ssh_user),
        pulumi.ResourceOptions(parent=parent),
        update=as_root(texts.converge, px.ssh_user),
        on=vm.vm,
    )


def keyed_vm(name: str, args: ProxmoxVmArgs, parent: pulumi.Resource, after: Sequence[pulumi.Resource] = ()
             ) -> tuple[ProxmoxVm, pulumi.Output[str]]:
    """A VM whose user-data (rendered with markers) carries the host key generated for it; the public half to pin."""
    template = args.spec.user_data
    assert isinstance(template, str), "the rendered user-data, before its host key is put in"
    key = HostKey(f"{name}-host-key", args.spec.name, opts=pulumi.ResourceOptions(parent=parent))
    user_data = pulumi.Output.all(key.private_key, key.public_key).apply(lambda k: install_host_key(template, k[0], k[1]))
    keyed = dataclasses.replace(args, spec=dataclasses.replace(args.spec, user_data=pulumi.Output.secret(user_data)))
    vm = ProxmoxVm(name, keyed, opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)))
    return vm, key.public_key


class ClusterNodes(pulumi.ComponentResource):
    def __init__(self, name: str, args: ClusterNodesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:nodes:ClusterNodes", name, None, opts)
        cfg, art = args.config, args.artifacts
        self.vms: dict[str, ProxmoxVm] = {}
        self.booted: dict[str, pulumi.Resource] = {}
        # node name -> how every later step reaches it: the login user, the key, the pinned host key
        self.connections: dict[str, command.remote.ConnectionArgs] = {}
        for node in cfg.nodes:
            texts = art.nodes[node.name]
            spec = VmSpec(
                name=node.name,
                vm_id=node.vm_id,
                cores=node.cores,
                memory_mb=node.memory_mb,
                disk_gb=node.disk_gb,
                mac=node.mac,
                tags=("netstab", "k3s", node.role),
                network_config=texts.network_config,
                user_data=texts.user_data,
            )
            where = cfg.proxmox_node_of(node)
            after = list(args.after)
            if args.rolling is not None:
                # before the VM changes in a way that restarts it: cordon and drain it (its restart key changed),
                # inside its peer server's VM (StackConfig.kube_peer), through the guest agent of the Proxmox node that runs it
                after.append(remote.run(
                    f"{name}-{node.name}-drain", proxmox_connection(cfg.proxmox, args.ssh_private_key, cfg.proxmox_node_of(cfg.kube_peer(node))),
                    as_root(texts.rolling.drain_create, cfg.proxmox.ssh_user),
                    pulumi.ResourceOptions(parent=self, depends_on=args.rolling.after(node.name)),
                    update=as_root(texts.rolling.drain_update, cfg.proxmox.ssh_user),
                ))
            vm, host_key = keyed_vm(f"{name}-{node.name}", ProxmoxVmArgs(spec, cfg.proxmox, cfg.network, args.images.get(where, args.image),
                                                                         cfg.image.template_vm_id, node_name=where),
                                    self, after)
            self.vms[node.name] = vm
            network = guest_network(f"{name}-{node.name}-network", vm, texts.guest_network, cfg.proxmox, args.ssh_private_key, self, where)
            conn = remote.connection(str(node.ip), cfg.ssh.user, args.ssh_private_key, host_key)
            self.connections[node.name] = conn
            # the login user's keys, through the guest agent (no SSH to the node, with either key), before any step dials it
            keys = remote.run(f"{name}-{node.name}-ssh-keys", proxmox_connection(cfg.proxmox, args.ssh_private_key, where),
                              as_root(texts.authorized_keys, cfg.proxmox.ssh_user), pulumi.ResourceOptions(parent=self, depends_on=[network]),
                              on=vm.vm)
            self.booted[node.name] = remote.run(f"{name}-{node.name}-cloud-init", conn, as_root(art.cloud_init_wait),
                                                pulumi.ResourceOptions(parent=self, depends_on=[keys]), on=vm.vm)
            # a grown disk reaches the root filesystem now, not at the next boot (through the guest agent)
            remote.run(f"{name}-{node.name}-disk", proxmox_connection(cfg.proxmox, args.ssh_private_key, where),
                       as_root(texts.grow_root, cfg.proxmox.ssh_user), pulumi.ResourceOptions(parent=self, depends_on=[self.booted[node.name]]),
                       on=vm.vm)
        self.register_outputs({"vm_ids": {n: vm.vm_id for n, vm in self.vms.items()}})
