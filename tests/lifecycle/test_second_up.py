"""The second `pulumi up` of the homelab stack after each kind of change: the plan's shape and the
end state of the simulated node, guests and gateway. Counterfactuals rewire a recording the old
way and show the same test failing."""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import pytest
import yaml

from components.remote import script_hash
from tests.conftest import COMMAND, SNIPPET, VM
from tests.lifecycle.engine import Plan, Step, plan
from tests.lifecycle.scenarios import BY_KEY, CHANGES, NEW_IMAGE, SAME_NAME_IMAGE, SecondUp, configs, rewired, run_plans, second_up
from tests.lifecycle.values import unwrap
from tests.lifecycle.world import first_up, restarted_at_once
from tests.program.harness import DUMMY_SECRETS, Recording, run_program

VALIDATION = "netstab:validation:NetworkValidation"


def gate(recording: Recording) -> set[str]:
    """The post-up gate: it runs on every `up`, so the minimal plans below leave it out."""
    components = {r.urn for r in recording.resources if r.type == VALIDATION}
    return {r.name for r in recording.resources if r.parent in components}


def minimal(p: Plan, recording: Recording) -> list[Step]:
    return [s for s in p.steps if s.name not in gate(recording)]


def shape(steps: list[Step]) -> dict[str, set[str]]:
    """op -> resource names, with replacements told apart: replace / replace-first (delete-before-replace)."""
    out: dict[str, set[str]] = {}
    for s in steps:
        if s.op == "delete" and s.replacing:
            continue  # the other half of a replacement
        op = ("replace-first" if s.delete_first else "replace") if s.replacing else s.op
        out.setdefault(op, set()).add(s.name)
    return out


def vm_urn(second: SecondUp, name: str) -> str:
    return next(r.urn for r in second.new.of_type(VM) if r.inputs["name"] == name)


def on(recording: Recording, urn: str) -> set[str]:
    """The commands that configure that VM (deleted with it)."""
    return {r.name for r in recording.of_type(COMMAND) if r.deleted_with == urn}


NODES = ("cp1", "worker1", "worker2")
VMS = {"nodes-cp1-vm", "nodes-worker1-vm", "nodes-worker2-vm", "mirror-vm-vm"}
NETWORK_SNIPPETS = {"nodes-cp1-network-config", "nodes-worker1-network-config", "nodes-worker2-network-config", "mirror-vm-network-config"}
USER_SNIPPETS = {n.replace("network-config", "user-data") for n in NETWORK_SNIPPETS}
GUEST_NETWORK = {"nodes-cp1-network", "nodes-worker1-network", "nodes-worker2-network", "mirror-network"}


# ---------------------------------------------------------------- every change


# the defects the model shows in today's wiring: change -> what breaks (issue 22)
BREAKS: dict[str, str] = {}
# refused in preview by the cluster identity (components/clusteridentity.py): change -> (refusal, what the up would break without it)
REFUSED = {
    "rename-same-vm-id": ("worker2 would be renamed worker3 keeping vmId 2722", "create nodes-worker3-vm: VM 2722 already exists"),
    "server-swap": ("cp1 was the K3s server and would become an agent; worker1 was the K3s agent and would become the server",
                    "the agent script runs on the running server cp1"),
    "ha-rebuild-two-servers": ("cp1 would restart (vmId) in the same pulumi up as cp2, the server its drain and readiness steps go through",
                               "cp1 cannot join etcd: a member of node name cp1 (its old VM's) is still there"),
    "ha-to-single": ("the control plane would shrink from 3 servers (cp1, cp2, cp3) to one (cp1)",
                     "cp1 still reads a config.yaml that joins 10.27.27.10"),
    "single-to-ha": ("the control plane would grow from one server (cp1) to 3",
                     "cp2 joins cluster 1 at https://10.27.27.10:6443, which keeps its state in SQLite"),
}


def test_no_change_breaks_the_cluster_in_the_model():
    assert BREAKS == {}, "every change converges or is refused in preview"


def without_identity(recording: Recording) -> Recording:
    return Recording([r for r in recording.resources if r.name != "cluster-identity"], dict(recording.outputs))


@pytest.mark.parametrize("change", list(REFUSED))
def test_a_change_no_up_can_carry_out_is_refused_in_preview_before_any_step(change):
    second = second_up(change)
    said, _ = REFUSED[change]
    for p in (second.preview, second.up):
        assert p.refused.startswith("netstab cluster identity: refused before anything is touched: ") and said in p.refused, p.refused
        assert p.steps == [], "the identity is registered first: nothing ran before the refusal"
    assert "Instead" in second.preview.refused
    assert second.after.errors == [] and second.after.guests == second.before.guests


@pytest.mark.parametrize("change", list(REFUSED))
def test_without_the_cluster_identity_the_change_breaks_the_cluster(change):
    second = second_up(change)
    old_way = run_plans(without_identity(second.old), without_identity(second.new))
    assert not old_way.preview.refused
    _, breaks = REFUSED[change]
    assert any(breaks in e for e in old_way.after.errors), old_way.after.errors


def test_a_vm_id_change_of_the_same_name_is_not_refused():
    second = second_up("vm-id")
    assert not second.preview.refused and second.up.ops("cluster-identity") == ["update"]


# ---------------------------------------------------------------- rolling, one node at a time

ROLLING = {"-drain", "-ready"}


def unchained(recording: Recording) -> Recording:
    """Before issue 22: no drain before a VM, no wait for the node after, nothing chains the nodes."""
    gone = {r.urn for r in recording.resources if any(r.name.endswith(s) and r.name != "k3s-nodes-ready" for s in ROLLING)}
    kept = [dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in gone],
                                property_dependencies={k: [u for u in v if u not in gone] for k, v in r.property_dependencies.items()})
            for r in recording.resources if r.urn not in gone]
    return Recording(kept, dict(recording.outputs))


@pytest.mark.parametrize("change", [c.key for c in CHANGES])
def test_no_change_restarts_more_than_one_node_at_a_time(change):
    second = second_up(change)
    assert restarted_at_once(second.after, second.new) <= 1


@pytest.mark.parametrize("change", ["cores-all", "datastore"])
def test_a_restart_of_every_node_rolls_servers_first_each_drained_and_back_before_the_next(change):
    second = second_up(change)
    assert restarted_at_once(second.after, second.new) == 1
    for p in (second.preview, second.up):
        order = [s.name for s in p.steps if s.name.startswith(("nodes-", "k3s-")) and s.name.endswith(("-drain", "-vm", "-ready"))]
        assert order == [f"{prefix}-{n}-{what}" for n in NODES for prefix, what in (("nodes", "drain"), ("nodes", "vm"), ("k3s", "ready"))], p.mode
    restarts = [(r.node, r.down, r.back) for r in second.after.restarts]
    assert restarts == [(n, f"nodes-{n}-vm", f"k3s-{n}-ready") for n in NODES]
    for n in NODES:
        drain = second.up.of(f"nodes-{n}-drain")[0]
        assert drain.op == "update" and drain.script == drain.res.inputs["update"], "the drain runs, not the first-up no-op"
        assert second.new.depends_on(second.new.named(f"nodes-{n}-vm"), second.new.named(f"nodes-{n}-drain"))
    server_key = second.new.named("nodes-cp1-drain").inputs["update"]
    assert "with one server the Kubernetes API is down while it restarts" in server_key, "the preview says so"
    assert "the Kubernetes API is down" not in second.new.named("nodes-worker1-drain").inputs["update"]


@pytest.mark.parametrize("change", ["cores-all", "datastore"])
def test_without_the_chain_every_node_restarts_at_once_and_the_gate_dials_a_restarting_api(change):
    second = second_up(change)
    old_way = run_plans(unchained(second.old), unchained(second.new))
    assert restarted_at_once(old_way.after, old_way.new) == 3
    assert any("needs the Kubernetes API while cp1 restarts" in e for e in old_way.after.errors), old_way.after.errors


def test_a_change_that_restarts_nothing_drains_nothing():
    for change in ("mtu", "disk", "k3s-version", "user-data", "server-address"):
        second = second_up(change)
        assert not [s for s in second.up.steps if s.name.endswith("-drain")], change


def test_a_ready_step_that_did_not_follow_the_drain_leaves_the_node_cordoned():
    """The ready step carries the same restart key as the drain: without it, the drain's cordon stays."""
    second = second_up("cores-memory")
    stale = rewired(second.new, lambda n: n == "k3s-worker1-ready", inputs=lambda r: second.old.named(r.name).inputs)
    old_way = run_plans(second.old, stale)
    assert "worker1 is left cordoned" in old_way.after.errors


def test_a_server_swap_would_leave_the_objects_on_the_old_cluster():
    """Even with both installs allowed, the kubeconfig step keeps its id: the provider is updated in
    place and no object is created on the new server's cluster."""
    second = second_up("server-swap")
    second = run_plans(without_identity(second.old), without_identity(second.new))
    world = copy.deepcopy(second.before)
    for guest in world.guests.values():
        guest.service = guest.cluster = None  # as if both nodes had been reset first
    world.run(second.up).check(second.new)
    assert any("the cluster of the server lacks" in e for e in world.errors), world.errors


# refused too; the harm without the refusal is a restart without its drain, which is no error in the model
# (tests/lifecycle/test_ha_lifecycle.py shows it)
REFUSED_UNDRAINED = {"ha-move-peer-and-resize-first"}


@pytest.mark.parametrize("change", [c.key for c in CHANGES if c.key not in BREAKS and c.key not in REFUSED and c.key not in REFUSED_UNDRAINED])
def test_every_kind_of_change_converges_in_the_model_and_runs_the_gate(change):
    second = second_up(change)
    assert second.after.errors == [], "\n".join(second.after.errors)
    assert second.up.ops("validation-network-gate") == ["update"], "the post-up gate judges every up"
    for name, guest in ((g.name, g) for g in second.after.guests.values()):
        assert guest.network is not None and guest.nic_mtu == guest.network["mtu"], f"{name}: NIC and guest MTU differ"


# ---------------------------------------------------------------- network


def test_an_mtu_change_rebuilds_no_vm_and_converges_every_guest():
    second = second_up("mtu")
    # the homelab's path MTU is measured and was clean, so the clamp follows the node MTU: new rules, verified again
    expected = {"replace-first": NETWORK_SNIPPETS, "update": VMS | GUEST_NETWORK | {"gateway-rules"}, "replace": {"gateway-verify"}}
    for p in (second.preview, second.up):
        assert shape(minimal(p, second.new)) == expected, p.mode
        assert {s.why for s in p.steps if s.name in VMS} == {"networkDevices.0.mtu"}, p.mode
    for step in second.up.steps:
        if step.name in GUEST_NETWORK:
            assert step.script == step.res.inputs["update"], f"{step}: the converge runs, not the first-boot check"
    for guest in second.after.guests.values():
        assert guest.nic_mtu == guest.network["mtu"] == 1450, guest.name
        assert "mtu: 1450" in second.after.files[guest.snippets[1]], f"{guest.name}: the network snippet is gone or stale"


@pytest.mark.parametrize("change", ["mtu", "dns", "search", "address", "server-address"])
def test_every_guest_runs_the_network_its_snippet_now_renders(change):
    second = second_up(change)
    for guest in second.after.guests.values():
        rendered = yaml.safe_load(second.after.files[guest.snippets[1]])["ethernets"]["eth0"]
        assert guest.network == rendered, f"{guest.name} runs {guest.network}"
    assert any(g.network != second.after.guest(g.name).network for g in second.before.guests.values()), "nothing changed"


def test_an_mtu_change_would_preview_every_vm_rebuilt_if_the_vm_took_its_snippet_ids_from_their_outputs():
    """Defect 3 (bpg#2901): a `*_file_id` from the snippet's output is unknown while the snippet is replaced."""
    def from_outputs(recording: Recording) -> Recording:
        by_parent: dict[str, list[str]] = {}
        for r in recording.of_type(SNIPPET):
            by_parent.setdefault(r.parent, []).append(r.urn)
        return rewired(recording, lambda n: n in VMS, property_dependencies=lambda r: {"initialization": by_parent[r.parent]})

    second = second_up("mtu")
    old_way = run_plans(from_outputs(second.old), from_outputs(second.new))
    assert old_way.preview.replaced() >= VMS and old_way.up.replaced() >= VMS
    assert not VMS & second.preview.replaced()


def test_an_address_change_converges_the_guest_before_anything_dials_the_new_address():
    second = second_up("address")
    assert second.after.errors == []
    assert second.after.guest("worker1").address == "10.27.27.31"
    assert "--node-ip 10.27.27.31" in second.after.guest("worker1").k3s[0]
    dials = [s for s in second.up.steps if s.res.type == COMMAND and unwrap(s.res.inputs["connection"])["host"] == "10.27.27.31"]
    assert dials and all(second.up.index("nodes-worker1-network", "update") < second.up.steps.index(s) for s in dials)


# ---------------------------------------------------------------- gateway


def old_gateway_wiring(recording: Recording) -> Recording:
    """Before 014bd80: the rules replaced on any change of their text, create-before-delete."""
    return rewired(recording, lambda n: n == "gateway-rules", delete_before_replace=None,
                   inputs=lambda r: {**r.inputs, "triggers": [script_hash(r.inputs["create"])]})


def test_a_gateway_rule_change_updates_the_rules_in_place_and_they_stay():
    second = second_up("gateway-rules")
    assert second.up.ops("gateway-rules") == ["update"]
    assert second.up.of("gateway-rules")[0].script == second.new.named("gateway-rules").inputs["create"]
    assert second.up.ops("gateway-verify") == ["create", "delete"], "verify re-runs after the new rules"
    assert second.after.gateway == {"10.27.27.1": "test"}


def test_the_old_gateway_wiring_removes_the_rules_after_a_green_verify():
    second = second_up("gateway-rules")
    old_way = run_plans(old_gateway_wiring(second.old), old_gateway_wiring(second.new))
    rules = [s.op for s in old_way.up.of("gateway-rules")]
    assert rules == ["create", "delete"] and old_way.up.of("gateway-rules")[1].script == second.old.named("gateway-rules").inputs["delete"]
    assert old_way.after.errors == [], "verify ran between the new apply and the old remove: green"
    assert old_way.after.gateway == {}, "the old remove took the new rules away"


@pytest.mark.parametrize("change", ["gateway-host", "gateway-flavor"])
def test_another_gateway_host_or_flavor_is_replaced_delete_first(change):
    second = second_up(change)
    first, then = second.up.of("gateway-rules")
    assert (first.op, then.op) == ("delete", "create") and then.delete_first
    assert first.script == second.old.named("gateway-rules").inputs["delete"], "the old remove, as the old rules were written"
    assert unwrap(first.res.inputs["connection"])["host"] == "10.27.27.1"
    host = unwrap(then.res.inputs["connection"])["host"]
    assert second.after.gateway == {host: "test"}


# ---------------------------------------------------------------- snippets and image


def test_a_user_data_change_keeps_every_snippet_file_and_rebuilds_no_node():
    second = second_up("user-data")
    mirror = {"mirror-vm-vm", *on(second.new, vm_urn(second, "mirror"))}
    keys = {f"nodes-{n}-ssh-keys" for n in NODES}
    assert shape(minimal(second.up, second.new)) == {"replace-first": USER_SNIPPETS | mirror, "update": keys}, "only the mirror is rebuilt"
    for node in NODES:
        assert "AnotherKeyForTheLifecycleRing" in " ".join(second.after.guest(node).authorized), "a running node gets the new key now"
    for guest in second.after.guests.values():
        assert "AnotherKeyForTheLifecycleRing" in second.after.files[guest.snippets[0]], guest.name


@functools.cache
def then_more_cores() -> Recording:
    """After the user-data change, worker1 gets more cores: the provider reboots it."""
    _, raw = configs(BY_KEY["user-data"])
    raw["nodes"][1]["cores"] = 8
    return run_program(raw)


def test_a_reboot_after_a_user_data_change_starts_a_new_cloud_init_instance_with_the_pinned_host_key():
    second = second_up("user-data")
    rebooted = copy.deepcopy(second.after).run(plan(second.new, then_more_cores(), "up"))
    assert rebooted.errors == [], "every later step still finds the host key it pins"
    assert (rebooted.guest("worker1").instances, rebooted.guest("worker2").instances) == (2, 1)
    assert rebooted.guest("worker1").host_key == second.before.guest("worker1").host_key, "the key comes from the user-data"


def test_without_delete_before_replace_a_snippet_change_deletes_the_snippet_and_the_next_boot_fails():
    second = second_up("user-data")
    create_first = [rewired(r, lambda n: n in USER_SNIPPETS, delete_before_replace=None) for r in (second.old, second.new, then_more_cores())]
    old_way = run_plans(*create_first[:2])
    assert [s.op for s in old_way.up.of("nodes-cp1-user-data")] == ["create", "delete"]
    assert "local:snippets/cp1-user-data.yaml" not in old_way.after.files
    rebooted = copy.deepcopy(old_way.after).run(plan(create_first[1], create_first[2], "up"))
    assert any("VM 2721 cannot start, local:snippets/worker1-user-data.yaml is gone" in e for e in rebooted.errors)


def test_a_new_image_file_name_rebuilds_every_vm_and_re_runs_every_step_on_it():
    second = second_up("image-new-name")
    assert second.up.replaced() >= VMS
    for name in ("cp1", "worker1", "worker2", "mirror"):
        steps = on(second.new, vm_urn(second, name))
        assert steps and steps <= second.up.replaced(), f"{name}: {steps - second.up.replaced()} not re-run"
    assert second.after.files.get("local:iso/ubuntu-24.04-server-cloudimg-amd64.img") == NEW_IMAGE
    for node in NODES:
        guest = second.after.guest(node)
        assert guest.k3s and guest.registries and guest.image == "local:iso/ubuntu-24.04-server-cloudimg-amd64.img", node


def test_without_replace_with_a_rebuilt_vm_is_left_bare():
    """Defect 5: nothing tied the steps to their VM, so their inputs did not change and they did not run."""
    second = second_up("image-new-name")
    untied = (rewired(r, lambda n: True, replace_with=[], deleted_with="") for r in (second.old, second.new))
    old_way = run_plans(*untied)
    assert old_way.up.replaced() >= VMS
    assert all(old_way.after.guest(n).k3s is None for n in NODES), "the rebuilt nodes got no K3s"


def test_a_rebuilt_vm_keeps_the_host_key_its_steps_pin():
    """Its user-data carries the key (components/hostkeys.py); every step after the rebuild dialed it without an error."""
    second = second_up("image-new-name")
    assert second.after.errors == []
    for node in NODES:
        assert second.after.guest(node).host_key == second.before.guest(node).host_key, node



def test_a_new_image_url_with_the_same_file_name_keeps_the_image_and_every_vm():
    second = second_up("image-same-name")
    assert shape(minimal(second.up, second.new)) == {"replace-first": {"cloud-image"}}
    assert second.after.files["local:iso/noble-server-cloudimg-amd64.img"] == SAME_NAME_IMAGE


def test_without_delete_before_replace_the_same_image_name_cannot_be_downloaded_again():
    second = second_up("image-same-name")
    old_way = run_plans(*(rewired(r, lambda n: n == "cloud-image", delete_before_replace=None) for r in (second.old, second.new)))
    assert any("File already exists" in e for e in old_way.after.errors)


# ---------------------------------------------------------------- K3s


def test_a_k3s_version_change_re_applies_every_install_in_place():
    second = second_up("k3s-version")
    for node in NODES:
        install = second.up.of(f"k3s-{node}-k3s")
        assert [s.op for s in install] == ["update"], node
        assert second.after.guest(node).k3s[0].count("v1.34.1+k3s1") >= 1, node
    assert "k3s-nodes-ready" in second.up.replaced(), "readiness is checked again"


def test_a_k3s_token_change_re_applies_every_install_with_the_new_token_on_stdin():
    """The model's server holds whatever token it is given: this is the documented path, with the token
    rotated on the server first (docs/lifecycle.md). Without that rotation the server's install refuses
    the new token: tests/real/test_remote_steps.py::test_a_server_refuses_a_token_it_does_not_hold_in_either_form."""
    second = second_up("k3s-token")
    for node in NODES:
        assert second.up.ops(f"k3s-{node}-k3s") == ["update"], node
        assert second.after.guest(node).k3s[1] == "dummy-k3s-TOKEN-rotated-0a1", node
        assert "dummy-k3s-TOKEN" not in second.after.guest(node).k3s[0], "the token never enters the script"


# ---------------------------------------------------------------- mirror


def test_turning_the_mirror_off_removes_registries_yaml_from_every_node():
    second = second_up("mirror-off")
    for node in NODES:
        (delete,) = second.up.of(f"registries-{node}")
        assert delete.op == "delete" and not delete.skipped and delete.script == second.old.named(f"registries-{node}").inputs["delete"]
        assert second.after.guest(node).registries is None, node
    assert "mirror" not in {g.name for g in second.after.guests.values()}


def test_adding_a_mirror_upstream_rebuilds_the_mirror_with_it():
    second = second_up("mirror-upstreams")
    assert "mirror-vm-vm" in second.up.replaced()
    assert "gcr.io" in second.after.guest("mirror").serves
    assert {"nodes-cp1-vm", "nodes-worker1-vm", "nodes-worker2-vm"}.isdisjoint(second.up.replaced())


# ---------------------------------------------------------------- VM identity


def test_a_vm_id_change_rebuilds_that_agent_with_its_steps_and_leaves_the_server_alone():
    second = second_up("vm-id")
    worker1 = vm_urn(second, "worker1")
    assert second.up.of("nodes-worker1-vm")[-1].delete_first and "nodes-worker1-vm" in second.up.replaced()
    assert on(second.new, worker1) <= second.up.replaced()
    changed = {s.name for s in minimal(second.up, second.new)}
    for name in ("cp1", "worker2"):
        # readiness is the cluster's, run on the server: it follows every agent
        assert not on(second.new, vm_urn(second, name)) - {"k3s-nodes-ready"} & changed, name
    assert second.after.guest("worker1").vm_id == 2725 and second.after.guest("worker1").k3s


@pytest.mark.parametrize("change", ["image-new-name", "vm-id"])
def test_replace_with_alone_rebuilds_the_steps_on_a_cli_before_3_260(change):
    second = second_up(change)
    older = plan(second.old, second.new, "up", deleted_with_replaces=False)
    assert older.replaced() == second.up.replaced()
    assert first_up(second.old).run(older).errors == []


# ---------------------------------------------------------------- destroy


def unreachable_destroy(recording: Recording) -> tuple[Plan, list[str], list[str]]:
    world = first_up(recording)
    world.reachable = False
    steps = plan(recording, None, "destroy")
    world.run(steps)
    assert not world.guests and not world.files
    return steps, world.ran, world.errors


def test_destroy_with_the_cluster_unreachable_dials_no_vm_and_removes_the_gateway_rules():
    recording = second_up("mtu").old
    _, ran, errors = unreachable_destroy(recording)
    assert errors == []
    # the Proxmox host is no VM: its continuous probe is taken off it (tests/lifecycle/test_monitoring_lifecycle.py)
    assert sorted(ran) == ["delete gateway-rules on 10.27.27.1", "delete monitoring-proxmox on pve.lan"]


def test_without_deleted_with_destroy_dials_the_unreachable_nodes():
    recording = rewired(second_up("mtu").old, lambda n: True, deleted_with="")
    _, _, errors = unreachable_destroy(recording)
    assert {e.split(":")[0] for e in errors} == {"delete registries-cp1", "delete registries-worker1", "delete registries-worker2",
                                                 "delete monitoring-cp1", "delete monitoring-worker1", "delete monitoring-worker2",
                                                 "delete monitoring-mirror"}



def test_a_server_address_change_keeps_the_kubernetes_objects():
    second = second_up("server-address")
    assert second.after.errors == []
    assert not {s.name for s in second.up.steps if s.name.startswith("secrets-")} & second.up.replaced()


def test_the_first_up_pays_for_the_serial_chain_and_docs_say_how_much():
    """Creation is serial too: each node's VM waits for the previous node back. docs/lifecycle.md quotes these figures."""
    from tests.lifecycle.duration import critical_path_s

    recording = second_up("mtu").old
    chained = critical_path_s(plan(Recording(), recording, "up"), recording)
    parallel = critical_path_s(plan(Recording(), unchained(recording), "up"), unchained(recording))
    assert (parallel, chained) == (FIRST_UP_S["parallel"], FIRST_UP_S["chained"])
    doc = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    assert f"about {chained // 60} minutes instead of {parallel // 60}" in doc


FIRST_UP_S = {"parallel": 522, "chained": 1080}  # nominal seconds (tests/lifecycle/duration.py)


# ---------------------------------------------------------------- fresh evidence after a failed gate


def test_after_a_failed_gate_the_next_up_probes_again_with_on_change():
    second = second_up("after-failed-gate")
    probes = {s.name for s in second.up.steps if s.name.startswith("validation-probe-")}
    assert probes == {"validation-probe-proxmox", "validation-probe-cp1", "validation-probe-worker1"}
    assert probes <= second.up.replaced() and probes <= second.preview.replaced(), "fresh runs, shown in the preview"
    for gate in ("validation-network-gate", "validation-cluster-gate"):
        assert second.up.ops(gate) == ["update"]
        assert second.up.index(gate, "update") > max(second.up.index(p, "create") for p in probes) or gate.endswith("cluster-gate")


def test_without_the_failure_nonce_the_next_up_would_judge_nothing_new():
    """Before issue 22: the run id covered config only, so an unchanged config after a failure kept the old runs."""
    from tests.lifecycle.scenarios import in_report_folder

    old_raw, new_raw = configs(BY_KEY["after-failed-gate"])
    with in_report_folder(True):
        old, new = run_program(old_raw), run_program(new_raw)
    old_way = run_plans(old, new)
    assert not [s for s in old_way.up.steps if s.name.startswith("validation-")], "the same output, never probed again"


# ---------------------------------------------------------------- node password across a token rotation


def token_then_rebuild(derive_from_token: bool = False) -> tuple[SecondUp, Recording]:
    """After the token rotation, worker1 is rebuilt (a new vmId): a new VM, no password file."""
    from components.render.shell import as_root
    from tests.lifecycle.world import script_of

    second = second_up("k3s-token")
    _, raw = configs(BY_KEY["k3s-token"])
    raw["nodes"][1]["vmId"] = 2725
    rebuilt = run_program(raw, secrets={**DUMMY_SECRETS, "k3sToken": "dummy-k3s-TOKEN-rotated-0a1"})
    if derive_from_token:
        def old(r):
            body = script_of(r.inputs["create"]).replace("""%s %s' worker1 "$seed" """, """%s %s' worker1 "$K3S_TOKEN" """)
            return {**r.inputs, "create": as_root(body.replace("ssh_host_ed25519_key", "no_host_key"))}
        rebuilt = rewired(rebuilt, lambda n: n == "k3s-worker1-k3s", inputs=old)
    return second, rebuilt


def test_an_agent_rebuilt_after_a_token_rotation_is_accepted_back():
    second, rebuilt = token_then_rebuild()
    world = copy.deepcopy(second.after).run(plan(second.new, rebuilt, "up")).check(rebuilt)
    assert world.errors == []
    assert world.guest("worker1").node_password == second.after.guest("worker1").node_password


def test_with_a_password_from_the_token_the_rebuilt_agent_would_be_refused():
    second, rebuilt = token_then_rebuild(derive_from_token=True)
    world = copy.deepcopy(second.after).run(plan(second.new, rebuilt, "up"))
    assert any("the server refuses worker1: its node password" in e for e in world.errors), world.errors


# ---------------------------------------------------------------- SSH keys: rotation and revocation


def test_a_rotated_key_pair_reaches_every_node_before_any_step_dials_it_with_the_new_key():
    from tests.lifecycle.world import HOMELAB_PUBLIC_KEY, ROTATED_PUBLIC_KEY

    second = second_up("ssh-key")
    assert second.after.errors == []
    for node in NODES:
        guest = second.after.guest(node)
        assert ROTATED_PUBLIC_KEY in guest.authorized and HOMELAB_PUBLIC_KEY not in guest.authorized, f"{node}: the old key is revoked"
        keys = second.up.index(f"nodes-{node}-ssh-keys", "update")
        dials = [i for i, s in enumerate(second.up.steps) if s.res.type == COMMAND and s.op != "delete"
                 and unwrap(s.res.inputs["connection"])["host"] == str(second.after.guest(node).address)]
        assert dials and all(keys < i for i in dials), node
    assert second.after.drained == [], "a new SSH key restarts nothing and drains nothing"
    assert HOMELAB_PUBLIC_KEY not in second.after.guest("mirror").authorized, "the mirror is rebuilt with the new user-data"


def without(recording: Recording, suffix: str) -> Recording:
    gone = {r.urn for r in recording.resources if r.name.endswith(suffix)}
    kept = [dataclasses.replace(r, dependencies=[d for d in r.dependencies if d not in gone]) for r in recording.resources if r.urn not in gone]
    return Recording(kept, dict(recording.outputs))


def test_without_the_keys_step_a_rotation_locks_every_step_out_of_the_running_nodes():
    second = second_up("ssh-key")
    old_way = run_plans(without(second.old, "-ssh-keys"), without(second.new, "-ssh-keys"))
    refused = {e.split(":")[0] for e in old_way.after.errors if "refuses the key" in e}
    assert {"update nodes-cp1-cloud-init (connection.privateKey)", "update k3s-worker2-k3s (connection.privateKey)"} <= refused, old_way.after.errors


def test_without_the_restart_key_stamp_a_key_rotation_would_drain_every_node():
    from components.render.shell import as_root
    from tests.lifecycle.world import script_of

    def unstamped(r):
        body = script_of(r.inputs["update"])
        return {**r.inputs, "update": as_root(body.replace('if [ "$(cat /var/lib/netstab/restart-key', 'if [ "$(cat /nonexistent'), "root")}

    second = second_up("ssh-key")
    old_way = run_plans(*(rewired(r, lambda n: n.endswith("-drain"), inputs=unstamped) for r in (second.old, second.new)))
    assert old_way.after.drained == ["cp1", "worker1", "worker2"]


# ---------------------------------------------------------------- a node removed


def test_a_removed_agent_is_drained_and_its_node_object_deleted_before_its_vm_goes():
    second = second_up("remove-node")
    assert second.after.errors == []
    member, vm = second.up.index("k3s-worker2-member", "delete"), second.up.index("nodes-worker2-vm", "delete")
    assert member < vm and not second.up.of("k3s-worker2-member")[0].skipped
    assert "# netstab remove node worker2" in second.up.of("k3s-worker2-member")[0].script
    assert ("cluster 1", "worker2") not in second.after.node_objects


def test_without_the_member_step_the_removed_node_stays_notready_forever():
    second = second_up("remove-node")
    old_way = run_plans(without(second.old, "-member"), without(second.new, "-member"))
    assert "worker2's Node object stays NotReady forever (its VM is gone)" in old_way.after.errors


def test_destroy_skips_the_member_steps_with_the_server_vm():
    recording = second_up("mtu").old
    _, ran, errors = unreachable_destroy(recording)
    assert errors == [] and not [r for r in ran if "-member" in r]


# ---------------------------------------------------------------- a disk grown


def test_a_grown_disk_reaches_the_filesystem_in_the_same_up_without_a_reboot():
    second = second_up("disk")
    assert second.after.errors == [] and second.after.restarts == []
    assert second.up.ops("nodes-worker1-disk") == ["update"]
    assert second.up.index("nodes-worker1-disk", "update") > second.up.index("nodes-worker1-vm", "update")
    assert (second.after.guest("worker1").disk_gb, second.after.guest("worker1").fs_gb) == (80, 80)


def test_without_the_disk_step_the_filesystem_waits_for_the_next_boot():
    second = second_up("disk")
    old_way = run_plans(without(second.old, "-disk"), without(second.new, "-disk"))
    assert "worker1's root filesystem is 60 GB on its 80 GB disk until its next boot" in old_way.after.errors
