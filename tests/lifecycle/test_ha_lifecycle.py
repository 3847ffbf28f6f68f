"""The HA stack's day 2 in the model (docs/ha.md): 3 servers (embedded etcd) behind the VIP and 2 agents
over 3 Proxmox nodes. Every change converges with etcd quorate and its members exactly the configured
servers, or is refused in preview (test_second_up.py's REFUSED)."""

from __future__ import annotations

import copy
import re

import pytest

from tests.conftest import VM
from tests.lifecycle.engine import plan
from tests.lifecycle.scenarios import SecondUp, rewired, run_plans, second_up
from tests.lifecycle.test_second_up import without_identity
from tests.lifecycle.world import first_up, restarted_at_once
from tests.program.harness import Recording

SERVERS = {"cp1", "cp2", "cp3"}
VIP = "10.27.27.10"


def changed(second: SecondUp) -> set[str]:
    """Every resource the up creates, replaces or deletes, the gate and the cluster-wide checks left out."""
    return {s.name for s in second.up.steps if s.op in ("create", "delete") and not s.name.startswith("validation-")
            and s.name not in ("k3s-nodes-ready",)}


def members(second: SecondUp) -> set[str]:
    (cluster,) = {g.cluster for g in second.after.guests.values() if g.service == "k3s"}
    return second.after.etcd[str(cluster)]


def test_the_first_up_of_the_ha_stack_founds_one_cluster_every_server_joins_and_agents_dial_the_vip():
    before = second_up("ha-add-agent").before
    assert before.clusters == 1, "one cluster-init, every other server joined it"
    assert list(before.etcd.values()) == [SERVERS]
    assert set(before.vip.values()) == {VIP}
    placed = {g.name: g.px_node for g in before.guests.values()}
    assert placed == {"cp1": "pve1", "cp2": "pve2", "cp3": "pve3", "worker1": "pve2", "worker2": "pve3", "mirror": "pve1"}
    assert {g.name for g in before.guests.values() if g.service == "k3s-agent"} == {"worker1", "worker2"}


CONVERGING = ["ha-add-agent", "ha-remove-agent", "ha-add-servers", "ha-remove-servers", "ha-vip", "ha-move-agent", "ha-move-server",
              "ha-rebuild-first-server", "ha-rebuild-server", "ha-image-new-name",
              "ha-k3s-version", "ha-ssh-key"]


@pytest.mark.parametrize("change", CONVERGING)
def test_every_ha_change_converges_with_etcd_quorate_and_its_members_the_configured_servers(change):
    second = second_up(change)
    assert not second.preview.refused and second.after.errors == [], "\n".join(second.after.errors)
    servers = {vm.inputs["name"] for vm in second.new.of_type(VM) if "server" in (vm.inputs.get("tags") or [])}
    assert members(second) == servers
    assert second.after.clusters == 1, "no server founded a second cluster"


def test_an_added_agent_joins_through_the_vip_and_nothing_else_is_rebuilt():
    second = second_up("ha-add-agent")
    assert second.after.guest("worker3").service == "k3s-agent" and second.after.guest("worker3").px_node == "pve1"
    assert all("worker3" in name for name in changed(second)), changed(second)


def test_a_removed_agent_leaves_its_node_object_and_no_etcd_member():
    second = second_up("ha-remove-agent")
    assert not any(g.name == "worker2" for g in second.after.guests.values())
    assert all("worker2" in name for name in changed(second)), changed(second)
    assert members(second) == SERVERS


def test_added_servers_join_etcd_and_are_rolled_like_every_node():
    second = second_up("ha-add-servers")
    assert members(second) == SERVERS | {"cp4", "cp5"}
    # each new server has its ready step and its member step (its removal path): the rolling order holds every server
    names = {s.name for s in second.up.steps}
    assert {"k3s-cp4-ready", "k3s-cp5-ready", "k3s-cp4-member", "k3s-cp5-member"} <= names


def test_removed_servers_leave_etcd_and_their_node_objects_before_their_vms_go():
    second = second_up("ha-remove-servers")
    order = [s.name for s in second.up.steps]
    for name in ("cp4", "cp5"):
        assert order.index(f"k3s-{name}-member") < order.index(f"nodes-{name}-vm"), order
    assert members(second) == SERVERS


def without_server_members(recording: Recording) -> Recording:
    """Before this issue: only the first server was in the rolling order, so no other server had a member step."""
    return Recording([r for r in recording.resources if not (r.name.startswith("k3s-cp") and r.name.endswith("-member"))],
                     dict(recording.outputs))


def test_without_the_server_member_steps_removed_servers_stay_in_etcd():
    second = second_up("ha-remove-servers")
    old_way = run_plans(without_server_members(second.old), without_server_members(second.new))
    assert "etcd of cluster 1 keeps the member cp4, whose VM is gone" in old_way.after.errors, old_way.after.errors
    assert "cp5's Node object stays NotReady forever (its VM is gone)" in old_way.after.errors


def test_the_vip_change_moves_kube_vip_and_every_agent_to_the_new_address_in_place():
    second = second_up("ha-vip")
    assert set(second.after.vip.values()) == {"10.27.27.9"}
    assert changed(second) == set(), "no VM is rebuilt: the installs update in place"
    for name in ("worker1", "worker2"):
        body, _ = second.after.guest(name).k3s  # type: ignore[misc]
        assert "https://10.27.27.9:6443" in body


def test_an_agent_moved_to_another_proxmox_node_previews_as_a_rebuild_of_that_vm_only():
    second = second_up("ha-move-agent")
    for p in (second.preview, second.up):
        vms = {s.name for s in p.steps if s.res.type == VM and s.replacing}
        assert vms == {"nodes-worker1-vm"}, p.mode
        assert not any(s.res.type == VM and s.op == "update" for s in p.steps), p.mode
    assert all("worker1" in name for name in changed(second)), changed(second)
    assert second.after.guest("worker1").px_node == "pve1" and second.after.guest("worker1").service == "k3s-agent"


def test_the_quorum_model_counts_a_majority_of_members():
    world = copy.deepcopy(second_up("ha-add-agent").before)  # the cached run stays as it was
    cluster = next(iter(world.etcd))
    assert world.quorate(cluster)
    servers = [g for g in world.guests.values() if g.service == "k3s"]
    servers[0].service = None
    assert world.quorate(cluster), "2 of 3 members: quorate"
    servers[1].service = None
    assert not world.quorate(cluster), "1 of 3 members: not quorate"


# ---------------------------------------------------------------- a rebuilt server rejoins its cluster

def test_the_cluster_is_founded_once_on_the_first_up_and_no_later_change_touches_the_founding_step():
    founding = [s for s in second_up("ha-add-agent").old.resources if s.name == "k3s-found-cluster"]
    assert len(founding) == 1
    assert "cluster-init: true" in founding[0].inputs["create"]
    installs = [r for r in second_up("ha-add-agent").old.resources if r.name.endswith("-k3s")]
    assert installs and not any("cluster-init" in str(r.inputs["create"]) for r in installs), "every install joins through the VIP"
    for change in CONVERGING:
        assert second_up(change).up.ops("k3s-found-cluster") == [], change


@pytest.mark.parametrize("change", ["ha-rebuild-first-server", "ha-rebuild-server", "ha-move-server"])
def test_a_rebuilt_server_rejoins_the_running_cluster_and_only_its_vm_is_rebuilt(change):
    second = second_up(change)
    name = {"ha-rebuild-first-server": "cp1", "ha-rebuild-server": "cp2", "ha-move-server": "cp3"}[change]
    vms = {s.name for s in second.up.steps if s.res.type == VM and s.replacing}
    assert vms == {f"nodes-{name}-vm"}
    assert second.after.clusters == 1 and members(second) == SERVERS
    assert second.after.guest(name).cluster == second.before.guest(name).cluster
    assert second.after.drained == [name], "drained through its peer while its old VM still runs"
    agents = [s.name for s in second.up.steps if s.name in ("k3s-worker1-k3s", "k3s-worker2-k3s")]
    assert agents == [], "the agents stay joined: their cluster did not change"


def with_cluster_init_in_the_first_install(recording: Recording) -> Recording:
    """Before this issue: the first server's own install carried cluster-init (k3s-ansible's shape)."""
    founding = next((r for r in recording.resources if r.name == "k3s-found-cluster"), None)
    assert founding is not None
    return rewired(Recording([r for r in recording.resources if r.name != "k3s-found-cluster"], dict(recording.outputs)),
                   lambda name: name == "k3s-cp1-k3s", inputs=lambda r: {**r.inputs, "create": founding.inputs["create"]})


def test_with_cluster_init_in_the_first_servers_install_its_rebuild_founds_a_second_cluster():
    second = second_up("ha-rebuild-first-server")
    old_way = run_plans(with_cluster_init_in_the_first_install(second.old), with_cluster_init_in_the_first_install(second.new))
    assert old_way.after.clusters == 2, old_way.after.errors
    assert "cp1 is not in the cluster of the server" in old_way.after.errors, old_way.after.errors
    assert any("cp2 never becomes Ready in the cluster of cp1" in e for e in old_way.after.errors)


def without_forget_steps(recording: Recording) -> Recording:
    return Recording([r for r in recording.resources if not r.name.endswith("-forget")], dict(recording.outputs))


@pytest.mark.parametrize("change", ["ha-rebuild-first-server", "ha-rebuild-server", "ha-move-server"])
def test_without_the_forget_step_a_rebuilt_server_cannot_rejoin(change):
    second = second_up(change)
    old_way = run_plans(without_forget_steps(second.old), without_forget_steps(second.new))
    assert any("K3s refuses a duplicate node name" in e for e in old_way.after.errors), old_way.after.errors


def test_a_new_image_rebuilds_every_server_one_at_a_time_and_the_cluster_survives():
    second = second_up("ha-image-new-name")
    vms = {s.name for s in second.up.steps if s.res.type == VM and s.replacing and s.op == "create"}
    assert {f"nodes-{n}-vm" for n in SERVERS} <= vms
    assert second.after.clusters == 1 and members(second) == SERVERS and second.after.errors == []
    order = [s.name for s in second.up.steps]
    # each server's new VM waits for the previous server back: never two members down at once
    assert order.index("k3s-cp1-ready") < order.index("nodes-cp2-vm") and order.index("k3s-cp2-ready") < order.index("nodes-cp3-vm")


# ---------------------------------------------------------------- K3s restarts, one server at a time

INSTALL_WAIT = re.compile(r"# netstab waits for \S+ after its K3s install \w+\n")


def without_install_wait(recording: Recording) -> Recording:
    """Before this round: a server's ready step ran again only when its restart key changed, not when its
    K3s install did, so nothing waited for a server whose K3s restarted before the next one's went."""
    def strip(r):
        return {k: INSTALL_WAIT.sub("", v) if k in ("create", "update") and isinstance(v, str) else v for k, v in r.inputs.items()}

    return rewired(recording, lambda name: name.startswith("k3s-cp") and name.endswith("-ready"), inputs=strip)


@pytest.mark.parametrize("change", ["ha-k3s-version", "ha-vip"])
def test_a_change_that_restarts_k3s_on_every_server_restarts_one_server_at_a_time(change):
    second = second_up(change)
    restarted = {r.node for r in second.after.restarts}
    assert restarted == SERVERS, "each server's K3s restarts with its new invocation"
    assert restarted_at_once(second.after, second.new) == 1
    assert all(INSTALL_WAIT.search(r.inputs["create"]) for r in second.new.resources if r.name in ("k3s-cp1-ready", "k3s-cp2-ready"))
    old_way = run_plans(without_install_wait(second.old), without_install_wait(second.new))
    assert restarted_at_once(old_way.after, without_install_wait(second.new)) == 3, "nothing waited: every etcd member may be down at once"


@pytest.mark.parametrize("change", ["ha-rebuild-first-server", "ha-rebuild-server", "ha-move-server", "ha-image-new-name"])
def test_on_a_cli_before_3_260_a_server_rebuild_removes_no_running_member(change):
    """Before Pulumi CLI 3.260 a replaced step's delete runs even when its deleted_with target is replaced
    too (pulumi#23818): a member step replaced with its peer's VM would remove that running node. The HA
    member steps are deleted with their peer's VM but never replaced with it."""
    second = second_up(change)
    older = plan(second.old, second.new, "up", deleted_with_replaces=False)
    world = first_up(second.old).run(older)
    assert world.errors == [] and members(SecondUp(second.old, second.new, older, older, second.before, world)) == SERVERS
    assert not [s for s in older.steps if s.name.endswith("-member") and s.op == "delete"]


def test_with_the_member_steps_replaced_with_their_peer_an_older_cli_removes_running_servers():
    second = second_up("ha-rebuild-server")

    def on_the_peer(recording: Recording) -> Recording:
        return rewired(recording, lambda name: name.endswith("-member"), replace_with=lambda r: [r.deleted_with])

    older = plan(on_the_peer(second.old), on_the_peer(second.new), "up", deleted_with_replaces=False)
    world = first_up(on_the_peer(second.old)).run(older)
    assert any("lost quorum" in e for e in world.check(second.new).errors), world.errors


def test_a_change_of_only_the_ssh_key_drains_no_node():
    """Every drain step updates (its connection changed) and finds the key each node came back with:
    the first server's too, although its peer did not exist when its ready step first ran."""
    second = second_up("ha-ssh-key")
    assert {s.name for s in second.up.steps if s.name.endswith("-drain")} == {f"nodes-{n}-drain" for n in (*SERVERS, "worker1", "worker2")}
    assert second.after.drained == []


def test_without_the_key_kept_when_the_peer_is_absent_the_first_server_is_drained_for_nothing():
    second = second_up("ha-ssh-key")
    keep = re.compile(r"(exist yet: cp1 is waited for[^\n]*\n)mkdir -p [^\n]*restart-key-2711\n")

    def forgetful(recording: Recording) -> Recording:
        return rewired(recording, lambda name: name == "k3s-cp1-ready",
                       inputs=lambda r: {**r.inputs, "create": keep.sub(r"\1", r.inputs["create"]), "update": keep.sub(r"\1", r.inputs["update"])})

    assert keep.search(second.old.named("k3s-cp1-ready").inputs["create"])
    old_way = run_plans(forgetful(second.old), forgetful(second.new))
    assert old_way.after.drained == ["cp1"]


def test_a_server_resized_while_its_peer_moves_is_refused_and_would_restart_undrained():
    second = second_up("ha-move-peer-and-resize-first")
    assert second.preview.refused and "cp1 would restart (cores) in the same pulumi up as cp2" in second.preview.refused
    assert second.up.steps == []
    old_way = run_plans(without_identity(second.old), without_identity(second.new))
    assert {r.node for r in old_way.after.restarts} == {"cp1", "cp2"}
    assert old_way.after.drained == ["cp2"], "cp1's drain looked for cp2 at its new place, found nothing and drained nothing"
