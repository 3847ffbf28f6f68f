"""The post-up gate under mocks: probe runs from three vantage points feed NetworkGate, after
the gateway fix, registries.yaml and K3s Ready; nothing but exports waits on the gates."""

from __future__ import annotations

import pytest

from tests.conftest import COMMAND
from tests.program.harness import DUMMY_SECRETS, run_program
from tests.program.test_gateway_program import BLACK_HOLE

POINTS = ("proxmox", "cp1", "worker1")


def test_probe_runs_from_the_proxmox_host_the_server_and_an_agent_feed_the_network_gate(homelab_raw):
    recording = run_program(homelab_raw)
    gate = recording.named("validation-network-gate")
    probes = [r for r in recording.of_type(COMMAND) if r.name.startswith("validation-probe-")]
    assert sorted(p.name for p in probes) == sorted(f"validation-probe-{p}" for p in POINTS)
    assert sorted(gate.inputs["runs"]) == sorted(POINTS)
    for probe in probes:
        assert recording.depends_on(gate, probe), f"{gate.urn} must judge {probe.urn}'s output"
    host = recording.named("validation-probe-proxmox").inputs["connection"]["value"]["host"]
    assert host == "pve.lan", "the Proxmox host is probed over SSH at the endpoint's address"


def test_probes_run_after_the_gateway_fix_registries_and_k3s_ready(homelab_raw):
    recording = run_program(homelab_raw)
    for point in POINTS:
        probe = recording.named(f"validation-probe-{point}")
        for before in ("gateway-verify", "registries-cp1", "registries-worker2", "k3s-nodes-ready"):
            assert recording.depends_on(probe, recording.named(before)), f"{probe.urn} must wait for {before}"


def test_nothing_but_exports_waits_on_the_gates(homelab_raw):
    recording = run_program(homelab_raw)
    gates = {recording.named(n).urn for n in ("validation-network-gate", "validation-cluster-gate")}
    for resource in recording.resources:
        assert not gates & set(resource.dependencies), f"{resource.urn} waits on a gate"
    assert "networkVerdict" in recording.outputs and "clusterVerdict" in recording.outputs


def test_probe_runs_carry_the_agent_on_stdin_and_no_secret(homelab_raw):
    recording = run_program(homelab_raw)
    for point in POINTS:
        probe = recording.named(f"validation-probe-{point}")
        assert "netstab probe agent" in probe.inputs["stdin"]
        assert probe.inputs["logging"] == "stderr", "the evidence on stdout is data for the gate; what goes wrong is logged"
        for key, secret in DUMMY_SECRETS.items():
            assert secret not in probe.plain_text(), f"{probe.urn} carries {key}"
    pulls = recording.named("validation-probe-cp1").inputs["create"]
    assert "--mirror http://10.27.27.5:5002" in pulls, "nodes pull through the mirror too"
    assert "--mirror" not in recording.named("validation-probe-proxmox").inputs["create"], "the mirror admits only the VM subnet"


def test_every_gate_run_re_runs_the_probes_unless_on_change(homelab_raw):
    first, second = run_program(homelab_raw), run_program(homelab_raw)
    assert first.named("validation-probe-cp1").inputs["triggers"] != second.named("validation-probe-cp1").inputs["triggers"]
    assert first.named("validation-probe-cp1").inputs["triggers"] == [first.named("validation-network-gate").inputs["run_id"]]
    homelab_raw["validation"] = {"run": "on-change"}
    quiet = [run_program(homelab_raw).named("validation-probe-cp1").inputs["triggers"] for _ in range(2)]
    assert quiet[0] == quiet[1]


def _on_change_trigger(raw) -> list:
    return run_program(raw).named("validation-probe-cp1").inputs["triggers"]


@pytest.mark.parametrize("section,key,value", [("validation", "criteria", {"maxTlsP95Ms": 800}), ("network", "mtu", 1450),
                                               ("gateway", "remeasure", 1), ("network", "dns", ["10.27.27.1", "9.9.9.9"])],
                         ids=["a_criterion", "the_mtu", "a_remeasure", "the_resolvers"])
def test_on_change_re_probes_when_anything_the_judgement_rests_on_changes(homelab_raw, section, key, value):
    """Otherwise the gate would judge the new criteria, or the network after a change, on old evidence."""
    homelab_raw["validation"] = {"run": "on-change"}
    before = _on_change_trigger(homelab_raw)
    homelab_raw[section] = {**homelab_raw[section], key: value}
    assert _on_change_trigger(homelab_raw) != before


def test_on_change_re_probes_when_the_measured_clamp_changes(homelab_raw):
    homelab_raw["validation"] = {"run": "on-change"}
    before = _on_change_trigger(homelab_raw)
    after = run_program(homelab_raw, stdout={"-measure": BLACK_HOLE}).named("validation-probe-cp1").inputs["triggers"]
    assert after != before


def test_vantage_points_and_mode_come_from_config(homelab_raw):
    homelab_raw["validation"] = {"vantagePoints": ["worker2"], "mode": "warn", "quick": True}
    recording = run_program(homelab_raw)
    assert [r.name for r in recording.of_type(COMMAND) if r.name.startswith("validation-probe-")] == ["validation-probe-worker2"]
    gate = recording.named("validation-network-gate")
    assert gate.inputs["spec"]["mode"] == "warn"
    assert "--repeat 3 " in recording.named("validation-probe-worker2").inputs["create"]


def test_disabled_validation_declares_no_gate(homelab_raw):
    homelab_raw["validation"] = {"enabled": False}
    recording = run_program(homelab_raw)
    assert not [r for r in recording.resources if r.name.startswith("validation")]
