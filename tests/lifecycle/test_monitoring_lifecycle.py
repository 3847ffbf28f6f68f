"""The continuous probe's timer through second ups and destroy: updated in place on a change (its
store kept), removed from every host when disabled, removed from the Proxmox host on destroy while
no VM is dialed. Counterfactuals rewire the steps the old ways and show the same tests failing."""

from __future__ import annotations

from components.remote import script_hash
from tests.lifecycle.engine import plan
from tests.lifecycle.scenarios import rewired, run_plans, second_up
from tests.lifecycle.world import first_up

HOSTS = ("cp1", "worker1", "worker2", "mirror")
STEPS = {f"monitoring-{h}" for h in (*HOSTS, "proxmox")}


def probes(world) -> dict[str, int | None]:
    """host -> the interval its installed probe runs at (None: no probe there)."""
    out = {h: (g.probe or {}).get("interval_seconds") for h in HOSTS for g in [world.guest(h)]}
    out["proxmox"] = (world.proxmox_probe or {}).get("interval_seconds")
    return out


def test_the_first_up_installs_the_probe_on_every_node_the_mirror_and_the_proxmox_host():
    world = second_up("monitoring-interval").before
    assert probes(world) == dict.fromkeys((*HOSTS, "proxmox"), 300)
    assert world.guest("cp1").probe["role"] == "node" and world.guest("mirror").probe["role"] == "mirror"
    assert world.proxmox_probe["role"] == "reference" and world.proxmox_probe["host"] == "proxmox"
    assert world.guest("cp1").probe["mirrors"], "the nodes check manifests through the mirror, as containerd pulls"
    assert not world.guest("mirror").probe["mirrors"] and not world.proxmox_probe["mirrors"]


def test_an_interval_change_updates_every_probe_in_place_and_keeps_its_store():
    second = second_up("monitoring-interval")
    for step in STEPS:
        assert second.up.ops(step) == ["update"], step
        assert second.preview.ops(step) == ["update"], step
    assert probes(second.after) == dict.fromkeys((*HOSTS, "proxmox"), 600)
    assert all(second.after.guest(h).probe_installs == 2 for h in HOSTS), "installed again over the first: the store stays"
    assert second.after.errors == []


def test_replaced_on_its_settings_the_probe_would_lose_its_store():
    """Counterfactual: a step keyed on its text (triggers) is replaced, delete first, and the remove wipes the history."""
    second = second_up("monitoring-interval")

    def keyed(recording):
        return rewired(recording, lambda n: n in STEPS, inputs=lambda r: {**r.inputs, "triggers": [script_hash(r.inputs["create"])]})

    old_way = run_plans(keyed(second.old), keyed(second.new))
    assert [s.op for s in old_way.up.of("monitoring-cp1")] == ["delete", "create"]
    assert all(old_way.after.guest(h).probe_installs == 1 for h in HOSTS), "the store was wiped between"


def test_turning_monitoring_off_removes_the_probe_from_every_host():
    second = second_up("monitoring-off")
    for step in STEPS:
        (delete,) = second.up.of(step)
        assert delete.op == "delete" and not delete.skipped and delete.script == second.old.named(step).inputs["delete"]
    assert probes(second.after) == dict.fromkeys((*HOSTS, "proxmox"))


def test_without_a_delete_turning_monitoring_off_leaves_the_timers_running():
    """Counterfactual: a step with no delete script (an install-only step) leaves every timer behind."""
    second = second_up("monitoring-off")
    no_delete = run_plans(*(rewired(r, lambda n: n in STEPS, inputs=lambda r: {k: v for k, v in r.inputs.items() if k != "delete"},
                                    delete_before_replace=None) for r in (second.old, second.new)))
    assert probes(no_delete.after) == dict.fromkeys((*HOSTS, "proxmox"), 300)


def test_turning_monitoring_on_installs_it_everywhere():
    second = second_up("monitoring-on")
    assert all(second.up.ops(step) == ["create"] for step in STEPS)
    assert probes(second.after) == dict.fromkeys((*HOSTS, "proxmox"), 300)


def test_destroy_removes_the_proxmox_hosts_probe_and_dials_no_vm():
    recording = second_up("monitoring-interval").old
    world = first_up(recording)
    world.reachable = False
    world.run(plan(recording, None, "destroy"))
    assert world.errors == []
    assert "delete monitoring-proxmox on pve.lan" in world.ran and world.proxmox_probe is None
    assert not [r for r in world.ran if r.startswith("delete monitoring-") and "pve.lan" not in r]


def test_without_deleted_with_destroy_would_dial_the_unreachable_vms_to_remove_their_probes():
    recording = rewired(second_up("monitoring-interval").old, lambda n: n in STEPS, deleted_with="")
    world = first_up(recording)
    world.reachable = False
    world.run(plan(recording, None, "destroy"))
    assert {e.split(":")[0] for e in world.errors} == {f"delete monitoring-{h}" for h in HOSTS}
