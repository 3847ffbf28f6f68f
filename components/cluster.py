"""K3sCluster: K3s over SSH on booted nodes: server, agents joining it, all Ready, kubeconfig out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_command as command

from components import remote
from components.config import NodeConfig, StackConfig
from components.nodes import Rolling
from components.render.bundle import ClusterArtifacts
from components.render.k3s import rewrite_kubeconfig
from components.render.shell import as_root


@dataclass(frozen=True)
class K3sClusterArgs:
    config: StackConfig
    artifacts: ClusterArtifacts
    connections: Mapping[str, command.remote.ConnectionArgs]  # node name -> SSH to it (ClusterNodes.connections)
    k3s_token: pulumi.Input[str]
    # node name -> the resource after which the node is up (ClusterNodes.booted)
    booted: Mapping[str, pulumi.Resource]
    # node name -> its VM: what each step configures, and is rebuilt with
    vms: Mapping[str, pulumi.Resource]
    # The hook for files that must be on a node before K3s starts (registries.yaml):
    # node name -> resources that must finish before that node's K3s install runs.
    before_install: Mapping[str, Sequence[pulumi.Resource]] = field(default_factory=dict)
    # one node at a time: after each install, a step on the Proxmox host waits until the node is
    # Ready again and uncordons it; the next node's drain waits for it
    rolling: Rolling | None = None
    # a server -> SSH to the Proxmox node that runs its VM: the kubectl steps about a node run inside a
    # server (StackConfig.kube_peer) through that node's guest agent
    proxmox_for: Callable[[NodeConfig], command.remote.ConnectionArgs] | None = None


# The founding step is a record of the stack's first up, never compared again: no change of the
# config, the token or the first server's VM (a rebuild) runs cluster-init a second time; `pulumi
# destroy` forgets it with the cluster. Input names as pulumi-command's CommandArgs.
FOUNDED_ONCE = ["connection", "create", "update", "delete", "stdin", "triggers", "logging", "environment", "addPreviousOutputInEnv"]


class K3sCluster(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]
    node_ips: pulumi.Output[dict[str, str]]
    nodes_ready: pulumi.Output[str]

    def __init__(self, name: str, args: K3sClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:cluster:K3sCluster", name, None, opts)
        cfg, art = args.config, args.artifacts
        px_user = cfg.proxmox.ssh_user
        installs: dict[str, pulumi.Resource] = {}
        backs: dict[str, pulumi.Resource] = {}  # node name -> its ready step (with rolling)
        order = (*cfg.servers, *cfg.agents)
        assert args.rolling is None or args.rolling.order == tuple(n.name for n in order), "one order: servers first, then agents"
        # The first server first; then each other server, one at a time: in an HA stack a server's install
        # waits for the previous server back and Ready, so a change that restarts K3s on every server (a
        # version, the VIP) never has two etcd members down at once, and joins go one at a time (etcd
        # takes one learner at a time). Each agent joins once every server is in (through the VIP in an
        # HA stack). Files a later layer places on a node come before its install.
        for index, node in enumerate(order):
            after = [args.booted[node.name], *args.before_install.get(node.name, ())]
            if node.role == "agent":
                after.extend(installs[s.name] for s in cfg.servers)
            elif node != cfg.server:
                previous = cfg.servers[index - 1].name
                after.append(backs.get(previous, installs[previous]) if cfg.ha else installs[cfg.server.name])
            forget = art.nodes[node.name].rolling.forget
            if forget is not None:
                # an HA server's VM is new (first up, or a rebuild): the member its old VM left goes before it joins
                assert args.proxmox_for is not None, "the forget step runs on the Proxmox node of another server"
                after.append(remote.run(
                    f"{name}-{node.name}-forget", args.proxmox_for(cfg.kube_peer(node)), as_root(forget, px_user),
                    pulumi.ResourceOptions(parent=self, depends_on=[args.booted[node.name]]),
                    update=as_root(art.nodes[node.name].rolling.forget_again, px_user), on=args.vms[node.name]))
            if art.found_cluster is not None and node == cfg.server:
                after.append(remote.run(
                    f"{name}-found-cluster", args.connections[node.name], as_root(art.found_cluster),
                    pulumi.ResourceOptions(parent=self, depends_on=list(after), ignore_changes=FOUNDED_ONCE),
                    stdin=args.k3s_token, secret_stdin=True))
            installs[node.name] = remote.run(
                f"{name}-{node.name}-k3s",
                args.connections[node.name],
                as_root(art.nodes[node.name].k3s_install),
                pulumi.ResourceOptions(parent=self, depends_on=after),
                stdin=args.k3s_token,
                secret_stdin=True,
                on=args.vms[node.name],
                # a rebuilt single server is a new cluster: every agent joins it again (an HA server rejoins its cluster)
                follows=[args.vms[cfg.server.name]] if node.role == "agent" and not cfg.ha else (),
            )
            if args.rolling is None:
                continue
            assert args.proxmox_for is not None, "the ready steps run on the Proxmox host"
            peer = cfg.kube_peer(node)
            steps = art.nodes[node.name].rolling
            backs[node.name] = remote.run(
                f"{name}-{node.name}-ready", args.proxmox_for(cfg.kube_peer(node)), as_root(steps.ready, px_user),
                pulumi.ResourceOptions(parent=self, depends_on=[installs[node.name]]),
                update=as_root(steps.ready, px_user),
                on=args.vms[node.name],
                # a rebuilt single server is a new cluster: every node is waited for again
                follows=[args.vms[cfg.server.name]] if node != cfg.server and not cfg.ha else (),
                # an HA server's K3s restarts with a new token too (its stamp hashes it): waited for then as well
                replace_on=[args.k3s_token] if cfg.ha and node.role == "server" else (),
            )
            args.rolling.back(node.name, backs[node.name])
            if peer != node:
                # when the node leaves the config: drained (a server: its etcd member removed) and its Node
                # object deleted before its VM goes (deletes run dependents first); not when its peer goes
                # too (destroy; a single server: a new cluster)
                # In an HA stack it is never replaced with its peer's VM: before Pulumi CLI 3.260 a replaced
                # step's delete runs even when its deleted_with target is replaced too (pulumi#23818), which
                # would remove this running node when its peer is rebuilt.
                remote.run(f"{name}-{node.name}-member", args.proxmox_for(peer), as_root(steps.member, px_user),
                           pulumi.ResourceOptions(parent=self, depends_on=[installs[node.name]]),
                           delete=as_root(steps.remove, px_user), on=None if cfg.ha else args.vms[peer.name],
                           deleted_with=args.vms[peer.name] if cfg.ha else None)
        server_conn = args.connections[cfg.server.name]
        server_vm = args.vms[cfg.server.name]
        # re-check readiness whenever any node is rebuilt or any install changes
        ready = remote.run(
            f"{name}-nodes-ready", server_conn, as_root(art.nodes_ready), pulumi.ResourceOptions(parent=self, depends_on=[*installs.values(), *backs.values()]),
            on=server_vm, follows=[vm for n, vm in args.vms.items() if n != cfg.server.name],
            replace_on=[remote.script_hash("".join(art.nodes[n].k3s_install for n in sorted(art.nodes)))],
        )
        fetched = remote.run(
            f"{name}-kubeconfig",
            server_conn,
            as_root(art.fetch_kubeconfig),
            pulumi.ResourceOptions(parent=self, depends_on=[ready]),
            secret_stdout=True,
            on=server_vm,
        )
        server_ip = cfg.api_address  # the VIP with several servers
        self.installs = installs
        self.kubeconfig_step = fetched
        self.ready = ready
        context = f"netstab-{pulumi.get_stack()}"
        self.kubeconfig = pulumi.Output.secret(fetched.stdout.apply(lambda text: rewrite_kubeconfig(text, server_ip, context)))
        self.node_ips = pulumi.Output.from_input({n.name: str(n.ip) for n in cfg.nodes})
        self.nodes_ready = ready.stdout
        self.register_outputs({"kubeconfig": self.kubeconfig, "node_ips": self.node_ips, "nodes_ready": self.nodes_ready})
