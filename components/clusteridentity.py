"""ClusterIdentity: a dynamic resource that records who the cluster's nodes are (name, K3s role,
Proxmox vmId) and refuses, in `pulumi preview`, a change that no `pulumi up` can carry out safely.

It refuses from the stack's previous state: the engine hands its Check the inputs it recorded on
the last `up` (`olds`) beside this run's (`news`), so the refusal needs no cluster and no Proxmox.
The Proxmox provider depends on it, so nothing on Proxmox is touched before its check (`pulumi up`
previews first; with `--skip-preview`, no VM, snippet or image is touched either).

Refused (docs/lifecycle.md):
- a node whose K3s role changes (a server that would become an agent, or the reverse): the agent
  install would run on the running server (its rejoin check removes /var/lib/rancher/k3s/agent
  under it), the server install beside a running k3s-agent, and the kubeconfig step keeps its id,
  so the secrets layer stays on the old cluster;
- an HA node restarted or rebuilt in the same up as its peer (the server its drain, wait and old-member
  removal go through) is rebuilt;
- one server becoming an HA control plane, or the reverse: the datastore (SQLite or embedded etcd)
  and the address every node dials would change, and one etcd member has no quorum while it restarts;
- a vmId that would pass to another node name (a rename that keeps its vmId): the engine creates
  the new VM before it deletes the old one, and Proxmox refuses an id in use.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi.dynamic import CheckFailure, CheckResult, ConfigureRequest, CreateResult, DiffResult, ResourceProvider, UpdateResult

from components.config import StackConfig
from components.sdkvalues import unwrap

WHO = "netstab cluster identity"


def identity(config: StackConfig) -> dict[str, dict[str, Any]]:
    """node name -> its role and vmId (HA: also its Proxmox node, what restarts it, and its peer): what the refusals compare."""
    if not config.ha:
        return {n.name: {"role": n.role, "vmId": n.vm_id} for n in config.nodes}
    # HA: what restarts or rebuilds each node, and the server its kubectl steps go through
    return {n.name: {"role": n.role, "vmId": n.vm_id, "proxmoxNode": config.proxmox_node_of(n), "cores": n.cores,
                     "memoryMb": n.memory_mb, "datastore": config.proxmox.vm_datastore, "peer": config.kube_peer(n).name}
            for n in config.nodes}


def problems(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What no `pulumi up` can do from `old` nodes to `new` ones, one sentence each with what to do instead."""
    found: list[str] = []
    swapped = [(name, old[name]["role"], node["role"]) for name, node in sorted(new.items()) if name in old and old[name]["role"] != node["role"]]
    if swapped:
        said = "; ".join(f"{name} was the K3s {was} and would become {'the server' if now == 'server' else 'an agent'}"
                         for name, was, now in swapped)
        found.append(f"{said}. A node cannot change its K3s role in place: the agent install would run on the running "
                     "server and the server install beside a running agent, and the secrets layer would stay on the old "
                     "cluster. Instead keep the roles as deployed, or rebuild the cluster (pulumi destroy, then pulumi up).")
    found += _control_plane_shape(old, new)
    found += _peer_rebuilt_alongside(old, new)
    by_id = {int(node["vmId"]): name for name, node in old.items()}
    for name, node in sorted(new.items()):
        was = by_id.get(int(node["vmId"]))
        if was is not None and was != name and was not in new:
            found.append(f"{was} would be renamed {name} keeping vmId {node['vmId']}: the new VM would be created before "
                         f"the old one is deleted, and Proxmox refuses a vmId in use. Instead give {name} a new vmId "
                         f"(the old VM goes after the new one is up), or remove {was} in one pulumi up and add {name} in the next.")
        elif was is not None and was != name:
            found.append(f"vmId {node['vmId']} would pass from {was} to {name} while {was} stays: Proxmox refuses a "
                         f"vmId in use. Instead give {name} a vmId no other node has.")
    return found


def _control_plane_shape(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """A change between one server and an HA control plane: both directions change where the cluster
    keeps its state and the address every node dials, which no install step converts in place."""
    was = sorted(name for name, node in old.items() if node["role"] == "server")
    now = sorted(name for name, node in new.items() if node["role"] == "server")
    if not was or not now:
        return []
    if len(was) > 1 and len(now) == 1:
        return [f"the control plane would shrink from {len(was)} servers ({', '.join(was)}) to one ({now[0]}). The "
                f"single-server install neither rewrites nor removes {now[0]}'s /etc/rancher/k3s/config.yaml, which joins "
                "the VIP, nor the kube-vip manifest, while every node would dial the server itself; and one etcd member has "
                "no quorum while it restarts. Instead keep an odd number of at least 3 servers (remove two in one pulumi up), "
                "or rebuild the cluster (pulumi destroy, then pulumi up)."]
    if len(was) == 1 and len(now) > 1:
        return [f"the control plane would grow from one server ({was[0]}) to {len(now)}. A single server keeps the "
                "cluster's state in SQLite, which other servers cannot join (embedded etcd is founded with cluster-init), "
                "and its agents dial it, not a VIP. Instead rebuild the cluster with its servers (pulumi destroy, then "
                "pulumi up)."]
    return []


REBUILDS = ("vmId", "proxmoxNode")
RESTARTS = ("cores", "memoryMb", "datastore", *REBUILDS)


def _peer_rebuilt_alongside(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """An HA node that restarts or is rebuilt in the same up as its peer is rebuilt: its drain, its wait
    and its old member's removal go through the peer at the peer's new VM id and Proxmox node, which do
    not exist yet when they run (the peer's VM waits for them), so the node would restart undrained,
    and a rebuilt server could not rejoin (its old etcd member stays)."""
    found = []
    for name, node in sorted(new.items()):
        peer = node.get("peer")
        if not peer or peer == name or name not in old or peer not in old or peer not in new:
            continue
        rebuilt = [k for k in REBUILDS if k in old[peer] and old[peer][k] != new[peer].get(k)]
        restarted = [k for k in RESTARTS if k in old[name] and old[name][k] != node.get(k)]
        if rebuilt and restarted:
            found.append(f"{name} would restart ({', '.join(restarted)}) in the same pulumi up as {peer}, the server its drain and "
                         f"readiness steps go through, is rebuilt ({', '.join(rebuilt)}): those steps would find no {peer} to run in. "
                         f"Instead change {peer} in one pulumi up and {name} in the next.")
    return found


def refusal(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """The one message a refused change fails its preview with, or None."""
    found = problems(old, new)
    if not found:
        return None
    return f"{WHO}: refused before anything is touched: " + " ".join(found)


class ClusterIdentityProvider(ResourceProvider):
    def configure(self, req: ConfigureRequest) -> None:
        sys.tracebacklimit = 0

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        old, new = unwrap(_olds.get("nodes")), unwrap(news.get("nodes"))
        message = refusal(old, new) if isinstance(old, dict) and isinstance(new, dict) else None
        return CheckResult(news, [CheckFailure("nodes", message)] if message else [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=olds.get("nodes") != news.get("nodes"), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="cluster-identity", outs={"nodes": props.get("nodes")})

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={"nodes": news.get("nodes")})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class ClusterIdentity(pulumi.dynamic.Resource):
    nodes: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ClusterIdentityProvider(), name, {"nodes": identity(config)}, opts)
