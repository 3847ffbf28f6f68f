"""Scripts that roll a disruptive change through the cluster one node at a time (docs/lifecycle.md).

Each node has two steps around its VM, both run on the Proxmox host and reaching the server's
`k3s kubectl` through the QEMU guest agent (so they need no SSH to a node that is being created or
restarted):

- drain, before the VM: cordon, then evict every pod but DaemonSets' (kubectl drain uses the
  eviction API, so PodDisruptionBudgets hold), bounded by a timeout; a drain that does not finish
  names the pods still on the node, restores the node's prior schedulable state and fails, so
  nothing is restarted. Before the cordon it records whether the node was schedulable (an
  annotation), as kured records it in its lock: only a cordon netstab made is undone;
- ready, after the node's K3s install: wait, bounded, until the API answers and the node is Ready,
  then uncordon it if (and only if) netstab cordoned it.

Both carry the node's restart key (what bpg reboots or powers the VM off for: cores, memory, the VM
datastore; and its vmId and Proxmox node, whose change rebuilds it): a change of the key updates both steps, so the
drain runs before the VM changes and the wait after. The next node's drain waits for this node's
ready step, servers first, then agents.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from components.config import NodeConfig, ProxmoxConfig, StackConfig
from components.render import k3s
from components.render.guest import via_guest_agent
from components.render.quote import in_double_quotes, word
from components.render.shell import STATE_DIR

CORDONED_BY = "netstab.dev/cordoned-by"  # on a node netstab cordoned: the one cordon it undoes
DRAIN_TIMEOUT_S = 300  # kured's and system-upgrade-controller's drains default to forever or 600 s; bounded here
API_WAIT_S = 300  # a restarting server's API: how long a step waits for it to answer
POLL_S = 5


def restart_key(node: NodeConfig, px: ProxmoxConfig, servers: int) -> str:
    """The comment both steps carry: what a change of restarts the node (its first line, which the
    restart stamp hashes), and what that means. No position in the roll: removing or adding a node
    must not touch the other nodes' steps (the order is servers first, then agents in config order)."""
    shown = in_double_quotes(node.name)
    gap = ""
    if node.role == "server" and servers == 1:
        gap = "; with one server the Kubernetes API is down while it restarts (workloads on agents keep running)"
    # a node placed explicitly moves with its Proxmox node (a rebuild); left out when unset, so the key of a
    # stack that places nothing stays as it was
    where = f" proxmoxNode={node.proxmox_node}" if node.proxmox_node else ""
    return (f"# netstab restart key of {shown}: cores={node.cores} memory={node.memory_mb} datastore={px.vm_datastore} "
            f"vmId={node.vm_id}{where}\n# a change of it restarts {shown} alone, servers first, each back and Ready before the next{gap}\n")


def _kubectl_api(wait_s: int) -> str:
    return f"""kubectl() {{ k3s kubectl "$@"; }}
api_up() {{
  deadline=$(( $(date +%s) + {wait_s} ))
  until kubectl get --raw /readyz >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep {POLL_S}
  done
}}
"""


def _kube_step_head(step: str, node: NodeConfig, api_wait_s: int, *, no_k3s: str, api_down: str, absent: str | None = None) -> str:
    """How every kubectl step about `node` starts: its header line (what the lifecycle world reads), the
    API helpers, and its early exits: no K3s on this server yet, the API not answering (a failure),
    and (with `absent`) the node not in the cluster."""
    return f"""#!/bin/sh
# netstab {step} node {in_double_quotes(node.name)}
set -u
{_kubectl_api(api_wait_s)}if ! command -v k3s >/dev/null 2>&1; then
  echo "netstab: {no_k3s}"
  exit 0
fi
if ! api_up; then
  echo "netstab: the Kubernetes API did not answer within {api_wait_s}s: {api_down}" >&2
  exit 1
fi
""" + (f"""if ! kubectl get node {word(node.name)} >/dev/null 2>&1; then
  echo "netstab: {absent}"
  exit 0
fi
""" if absent is not None else "")


def drain_script(node: NodeConfig, timeout_s: int = DRAIN_TIMEOUT_S, api_wait_s: int = API_WAIT_S) -> str:
    """Inside the server VM: cordon and drain `node`, or fail naming the pods that blocked it."""
    name, shown = word(node.name), in_double_quotes(node.name)
    return _kube_step_head("drain", node, api_wait_s, no_k3s=f"no K3s on the server yet: nothing to drain on {shown}",
                           api_down=f"{shown} is not drained and nothing is restarted",
                           absent=f"{shown} is not in the cluster: nothing to drain") + f"""if [ "$(kubectl get node {name} -o jsonpath='{{.spec.unschedulable}}')" != "true" ]; then
  kubectl annotate --overwrite node {name} {CORDONED_BY}=netstab >/dev/null
fi
kubectl cordon {name} >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if kubectl drain {name} --ignore-daemonsets --delete-emptydir-data --timeout={timeout_s}s > "$work/drain.log" 2>&1; then
  echo "netstab: {shown} cordoned and drained"
  exit 0
fi
blocked=$(kubectl get pods -A --field-selector spec.nodeName={name} \\
  -o jsonpath='{{range .items[*]}}{{.metadata.namespace}}/{{.metadata.name}} {{.metadata.ownerReferences[0].kind}}{{"\\n"}}{{end}}' \\
  | awk '$2 != "DaemonSet" && $1 != "" {{print $1}}' | paste -sd ' ' -)
if [ -n "$(kubectl get node {name} -o jsonpath='{{.metadata.annotations.netstab\\.dev/cordoned-by}}')" ]; then
  kubectl uncordon {name} >/dev/null
  kubectl annotate node {name} {CORDONED_BY}- >/dev/null
fi
echo "netstab: draining {shown} did not finish within {timeout_s}s; these pods blocked it: ${{blocked:-none left (see below)}}." >&2
echo "netstab: a PodDisruptionBudget that allows no eviction, or a pod that does not stop, holds them. {shown} is back as it was; nothing was restarted. Fix the budget or the pod, then pulumi up again." >&2
tail -n 20 "$work/drain.log" >&2
exit 1
"""


# K3s's etcd member controller (k3s-io/k3s pkg/etcd/member_controller.go, `sync` and `onRemove`): a server's
# Node annotated etcd.k3s.cattle.io/remove=true has its etcd member removed (RemovePeer), and the controller
# records etcd.k3s.cattle.io/removed-node-name on it; deleting the Node removes the member too (its
# OnRemove handler, a finalizer), unless that annotation says it is gone already.
ETCD_REMOVE = "etcd.k3s.cattle.io/remove"
ETCD_REMOVED = "etcd.k3s.cattle.io/removed-node-name"
MEMBER_WAIT_S = 120


def _leave_etcd(node: NodeConfig, wait_s: int, stays: str = "its Node and VM stay; nothing was deleted") -> str:
    """Shell (inside the drain's success branch): ask K3s to remove the server's etcd member and wait,
    bounded, until it says it did; on a timeout nothing more is deleted (the VM stays)."""
    name, shown = word(node.name), in_double_quotes(node.name)
    removed = ETCD_REMOVED.replace(".", "\\.")
    return f"""  kubectl annotate --overwrite node {name} {ETCD_REMOVE}=true >/dev/null
  deadline=$(( $(date +%s) + {wait_s} ))
  until [ -n "$(kubectl get node {name} -o jsonpath='{{.metadata.annotations.{removed}}}' 2>/dev/null)" ]; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "netstab: K3s did not remove the etcd member of {shown} within {wait_s}s: {stays}" >&2
      exit 1
    fi
    sleep {POLL_S}
  done
  echo "netstab: the etcd member of {shown} removed"
"""


ETCD_MEMBER = "etcd.k3s.cattle.io/node-name"  # on a server's Node while it is an etcd member (pkg/etcd NodeNameAnnotation)


# A running kubelet renews its node Lease every 10 s (a quarter of its 40 s duration). A Lease that does
# not move for this long has no kubelet behind it; the watch outlasts the node controller's grace
# period too, so a Node still shown Ready right after its VM went is not taken for a live one.
LEASE_WATCH_S = 60


def forget_script(node: NodeConfig, member_wait_s: int = MEMBER_WAIT_S, api_wait_s: int = API_WAIT_S,
                  lease_watch_s: int = LEASE_WATCH_S) -> str:
    """Inside another server, before a new VM of an HA server joins: remove the etcd member its old VM
    left. K3s refuses a join while a member of the same node name is in etcd (pkg/etcd/etcd.go `join`:
    "duplicate node name found"), and the member counts against quorum while it never answers.
    It runs when the server's VM is created; the old VM is gone by then (VMs are replaced delete-first).
    The member is removed only when the node's kubelet did not renew its Lease for `lease_watch_s`:
    a renewal means a live server (one deployed before this step existed), which is left alone.
    Every read that fails, other than a Node or Lease that does not exist, fails the step."""
    name, shown = word(node.name), in_double_quotes(node.name)
    member = ETCD_MEMBER.replace(".", "\\.")
    return _kube_step_head("forget", node, api_wait_s, no_k3s=f"no K3s on this server yet: no cluster holds a member of {shown}",
                           api_down=f"the old etcd member of {shown} (if any) is not removed, and {shown} does not join") + f"""work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! member=$(kubectl get node {name} -o jsonpath='{{.metadata.annotations.{member}}}' 2>"$work/err"); then
  if grep -q NotFound "$work/err"; then
    echo "netstab: {shown} is not in the cluster: no old etcd member to remove"
    exit 0
  fi
  echo "netstab: could not read the Node {shown} ($(cat "$work/err")): its old etcd member (if any) is not removed, and {shown} does not join" >&2
  exit 1
fi
if [ -z "$member" ]; then
  echo "netstab: {shown} holds no etcd member: nothing to remove"
  exit 0
fi
renewal() {{
  kubectl -n kube-node-lease get lease {name} -o jsonpath='{{.spec.renewTime}}' 2>"$work/err" && return 0
  grep -q NotFound "$work/err"  # no Lease: nothing renews it
}}
if ! first=$(renewal); then
  echo "netstab: could not read the Lease of {shown} ($(cat "$work/err")): its etcd member $member is not removed, and {shown} does not join" >&2
  exit 1
fi
deadline=$(( $(date +%s) + {lease_watch_s} ))
while [ "$(date +%s)" -lt "$deadline" ]; do
  sleep {POLL_S}
  if ! now=$(renewal); then
    echo "netstab: could not read the Lease of {shown} ($(cat "$work/err")): its etcd member $member is not removed, and {shown} does not join" >&2
    exit 1
  fi
  if [ "$now" != "$first" ]; then
    echo "netstab: {shown} runs (its kubelet renewed its lease): its etcd member $member is live; nothing to forget"
    exit 0
  fi
done
echo "netstab: no kubelet renewed the lease of {shown} for {lease_watch_s}s (last ${{first:-never}}): its etcd member $member is stale"
{_leave_etcd(node, member_wait_s, stays=f"{shown} does not join (K3s refuses a duplicate node name)")}"""


def remove_script(node: NodeConfig, timeout_s: int = DRAIN_TIMEOUT_S, api_wait_s: int = API_WAIT_S,
                  member_wait_s: int = MEMBER_WAIT_S, etcd: bool = False) -> str:
    """Inside the server VM, when `node` leaves the config: drain it, (a server) remove its etcd member,
    then delete its Node object, so it does not stay NotReady forever; its VM is deleted after this (it
    depends on the node's steps). `etcd`: the cluster runs embedded etcd (HA); a single server keeps
    its datastore in SQLite and has no member to remove."""
    name, shown = word(node.name), in_double_quotes(node.name)
    drain = drain_script(node, timeout_s, api_wait_s).replace(f"# netstab drain node {shown}\n", f"# netstab remove node {shown}\n")
    body, tail = drain.rsplit('  echo "netstab: ' + shown + ' cordoned and drained"\n  exit 0\n', 1)
    if node.role == "server" and etcd:  # an HA server: its etcd member leaves first (see ETCD_REMOVE), then its Node
        removed = f"""{_leave_etcd(node, member_wait_s)}  kubectl delete node {name} --timeout={member_wait_s}s >/dev/null
  echo "netstab: {shown} drained, its etcd member removed and its Node object deleted; its VM goes next"
  exit 0
"""
    else:
        removed = f"""  kubectl delete node {name} --wait=false >/dev/null
  echo "netstab: {shown} drained and its Node object deleted; its VM goes next"
  exit 0
"""
    return body + removed + tail.replace("nothing was restarted", "nothing was deleted")


def ready_script(node: NodeConfig, timeout_s: int, api_wait_s: int = API_WAIT_S) -> str:
    """Inside the server VM: wait until the API answers and `node` is Ready, then undo netstab's cordon."""
    name, shown = word(node.name), in_double_quotes(node.name)
    return f"""#!/bin/sh
# netstab ready node {shown}
set -u
{_kubectl_api(api_wait_s)}if ! command -v k3s >/dev/null 2>&1 || ! api_up; then
  echo "netstab: the Kubernetes API did not answer within {api_wait_s}s: {shown} is not back; the next node waits" >&2
  exit 1
fi
deadline=$(( $(date +%s) + {timeout_s} ))
until [ "$(kubectl get node {name} -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null)" = "True" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "netstab: {shown} is not Ready after {timeout_s}s: the next node waits; it stays as it is" >&2
    kubectl get node {name} -o wide >&2 || true
    exit 1
  fi
  sleep {POLL_S}
done
if [ -n "$(kubectl get node {name} -o jsonpath='{{.metadata.annotations.netstab\\.dev/cordoned-by}}')" ]; then
  kubectl uncordon {name} >/dev/null
  kubectl annotate node {name} {CORDONED_BY}- >/dev/null
  echo "netstab: {shown} Ready and uncordoned"
else
  echo "netstab: {shown} Ready (left as it was: netstab did not cordon it)"
fi
"""


def _stamp(node: NodeConfig, key: str) -> tuple[str, str]:
    """Where the Proxmox host keeps the restart key a node last came back with, and that key's hash.
    The drain step also updates when only its connection changed (a rotated SSH key): it drains only
    when the key differs from the one kept, which the ready step writes once the node is back (so a
    failed restart drains again on the next up)."""
    return f"{STATE_DIR}/restart-key-{node.vm_id}", hashlib.sha256(key.splitlines()[0].encode()).hexdigest()[:16]


def drain_step(node: NodeConfig, px: ProxmoxConfig, server_vm_id: int, key: str) -> tuple[str, str]:
    """(create, update) on the Proxmox host: nothing to drain for a node this run creates; on a change
    of the key, the drain inside the server VM (nothing to drain when that VM does not exist yet)."""
    shown = in_double_quotes(node.name)
    create = f"#!/bin/sh\n{key}echo \"netstab: {shown} is created in this run: nothing to drain\"\n"
    stamp, want = _stamp(node, key)
    unchanged = f"""if [ "$(cat {stamp} 2>/dev/null)" = {want} ]; then
  echo "netstab: {shown} came back with this restart key: nothing to drain"
  exit 0
fi
"""
    margin = 60
    inner = via_guest_agent(server_vm_id, drain_script(node), timeout_s=DRAIN_TIMEOUT_S + API_WAIT_S + margin,
                            absent_ok=f"the server VM {server_vm_id} does not exist: nothing to drain on {shown}")
    return create, key + unchanged + inner


def ready_step(node: NodeConfig, server_vm_id: int, key: str, timeout_s: int, install: str = "", absent_ok: str = "") -> str:
    """On the Proxmox host: the wait and uncordon inside the server VM, then the restart key kept.
    `install`: an HA server's K3s install script, whose hash the step carries, so every change of the
    install (one that restarts K3s) is waited for too, before the next server's install goes."""
    stamp, want = _stamp(node, key)
    keep = f"mkdir -p {STATE_DIR} && printf '%s\\n' {want} > {stamp}\n"
    if install:
        key += f"# netstab waits for {in_double_quotes(node.name)} after its K3s install {hashlib.sha256(install.encode()).hexdigest()[:16]}\n"
    # with the peer absent (the first up), the key is kept too: the node was created in this run with it
    return key + via_guest_agent(server_vm_id, ready_script(node, timeout_s), timeout_s=timeout_s + API_WAIT_S + 60, then=keep,
                                 absent_ok=absent_ok, then_when_absent=bool(absent_ok))


@dataclass(frozen=True)
class RollingSteps:
    """A node's steps around a restart, as command texts for the Proxmox host that runs the server whose
    kubectl they use (StackConfig.kube_peer)."""

    drain_create: str
    drain_update: str
    ready: str
    member: str  # on create: nothing; its delete (the node left the config): drain, delete the Node object
    remove: str
    forget: str | None = None  # an HA server: its old etcd member removed before its (re)built VM joins
    forget_again: str = ""  # the forget step's update: it never removes a member of a running VM


def rolling_order(config: StackConfig) -> tuple[str, ...]:
    """Servers first, then agents, each in config order (k3s-ansible's serial: 1, system-upgrade-controller's server plan first).
    Every HA server is in it: each is drained, waited for and (when it leaves the config) deleted as a Node, which
    makes K3s remove its etcd member, one at a time."""
    return (*(n.name for n in config.servers), *(n.name for n in config.agents))


FORGET_NOTHING = "#!/bin/sh\necho \"netstab: this server's old etcd member is removed only before its VM joins (when the VM is created)\"\n"


def rolling_steps(config: StackConfig, node: NodeConfig) -> RollingSteps:
    shown = in_double_quotes(node.name)
    servers = sum(n.role == "server" for n in config.nodes)
    key = restart_key(node, config.proxmox, servers)
    peer = config.kube_peer(node).vm_id  # another server's K3s, where there is one
    create, update = drain_step(node, config.proxmox, peer, key)
    member = f"#!/bin/sh\necho \"netstab: {shown} is a member of the cluster; leaving the config drains it and deletes its Node object\"\n"
    remove = via_guest_agent(peer, remove_script(node, etcd=config.ha), timeout_s=DRAIN_TIMEOUT_S + API_WAIT_S + 60,
                             absent_ok=f"the server VM {peer} does not exist: no Node object to delete for {shown}")
    forget, install, absent = None, "", ""
    if config.ha and node.role == "server":
        forget = via_guest_agent(peer, forget_script(node), timeout_s=LEASE_WATCH_S + MEMBER_WAIT_S + API_WAIT_S + 60,
                                 absent_ok=f"the server VM {peer} does not exist yet: no cluster holds a member of {shown}")
        install = k3s.install_script(config, node)
        # the first up: the first server's peer is created after it (its drain waits for this step); the
        # nodes-Ready check and the next server's wait for the VIP see it up instead
        absent = f"the server VM {peer} does not exist yet: {shown} is waited for by the cluster's Ready check"
    ready = ready_step(node, peer, key, config.k3s.ready_timeout_s, install, absent)
    return RollingSteps(create, update, ready, member, remove, forget, FORGET_NOTHING)
