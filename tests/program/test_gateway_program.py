"""GatewayFirewall under mocks: apply on create and on change, remove on delete; replaced (delete-first) only for another gateway."""

from __future__ import annotations

import pytest

from components.sdkvalues import unwrap
from tests.program.harness import DUMMY_SECRETS, run_program


def test_the_gateway_command_applies_and_removes_our_rules(homelab_raw):
    recording = run_program(homelab_raw)
    rules = recording.named("gateway-rules")
    assert "nft -f" in rules.inputs["create"] and "maxseg size set 1360" in rules.inputs["create"]
    assert "update" not in rules.inputs, "a change re-runs create (apply converges), never the old delete"
    assert "delete table inet netstab_test" in rules.inputs["delete"]
    assert "maxseg" not in rules.inputs["delete"], "delete must only remove"
    connection = unwrap(rules.inputs["connection"])
    assert connection["host"] == "10.27.27.1" and connection["user"] == "root"
    assert not rules.inputs["create"].startswith("sudo"), "root on a Proxmox host has no sudo"


def test_verify_runs_after_apply_and_is_exported(homelab_raw):
    recording = run_program(homelab_raw)
    assert recording.depends_on(recording.named("gateway-verify"), recording.named("gateway-rules"))
    assert "gatewayVerified" in recording.outputs


def test_the_cluster_waits_for_the_gateway_fix(homelab_raw):
    recording = run_program(homelab_raw)
    assert recording.depends_on(recording.named("k3s-cp1-k3s"), recording.named("gateway-rules"))


def test_new_rules_update_in_place_and_re_verify_while_another_gateway_replaces(homelab_raw):
    base = run_program(homelab_raw)
    homelab_raw["gateway"]["pathMtu"] = 1280
    changed = run_program(homelab_raw)
    homelab_raw["gateway"]["host"] = "10.27.27.2"
    moved = run_program(homelab_raw)
    rules = [r.named("gateway-rules") for r in (base, changed, moved)]
    assert rules[0].inputs["triggers"] == rules[1].inputs["triggers"], "new rules on the same gateway must not replace"
    assert "maxseg size set 1240" in rules[1].inputs["create"]
    assert rules[1].inputs["triggers"] != rules[2].inputs["triggers"], "another gateway replaces"
    assert base.named("gateway-verify").inputs["triggers"] != changed.named("gateway-verify").inputs["triggers"]


def test_no_secret_in_gateway_commands(homelab_raw):
    recording = run_program(homelab_raw)
    for name in ("gateway-rules", "gateway-verify"):
        text = recording.named(name).plain_text()
        for secret in DUMMY_SECRETS.values():
            assert secret not in text


def test_an_unmanaged_gateway_is_skipped_with_a_warning(homelab_raw):
    homelab_raw["gateway"] = {"manage": False, "kind": "opnsense", "mss": 1360}
    recording = run_program(homelab_raw)
    assert not [r for r in recording.resources if r.name.startswith("gateway")]
    warning, _ = recording.outputs["gatewayWarning"]
    assert "MANUAL.md" in warning


def test_a_non_linux_gateway_cannot_be_managed(homelab_raw):
    import pytest

    homelab_raw["gateway"]["kind"] = "mikrotik"
    with pytest.raises(SystemExit, match="gateway.manage: true needs gateway.kind linux"):
        run_program(homelab_raw)


BLACK_HOLE = '{"schema": "netstab.gateway-measure/v1", "sweeps": [{"target": "ghcr.io:443", "verdict": "black-hole", "path_mtu": 1280}]}'


def test_auto_measures_from_the_gateway_first_and_clamps_for_what_it_measured(homelab_raw):
    recording = run_program(homelab_raw, stdout={"-measure": BLACK_HOLE})
    measure, rules = recording.named("gateway-measure"), recording.named("gateway-rules")
    assert "mss-sweep ghcr.io:443 --source 10.27.27.1" in measure.inputs["create"]
    assert "netstab probe agent" in measure.inputs["stdin"]
    assert recording.depends_on(rules, measure)
    assert "maxseg size set 1240" in rules.inputs["create"]
    assert recording.outputs["gatewayPathMtu"][0] == 1280
    assert recording.named("validation-network-gate").inputs["spec"]["gateway_mss"] == 1240


@pytest.mark.parametrize("source,value,expected", [("mss", 1300, 1300), ("pathMtu", 1400, 1360), ("pmtu", True, None)])
def test_the_gate_compares_the_nodes_with_the_mss_the_gateway_clamps_to(homelab_raw, source, value, expected):
    """Whatever the MSS comes from, the gate gets the IPv4 MSS in the rules (pmtu mode: none to compare)."""
    homelab_raw["gateway"].pop("pathMtu", None)
    homelab_raw["gateway"][source] = value
    recording = run_program(homelab_raw)
    assert recording.named("validation-network-gate").inputs["spec"]["gateway_mss"] == expected
    if expected is not None:
        assert f"maxseg size set {expected}" in recording.named("gateway-rules").inputs["create"]


def test_the_measurement_repeats_only_when_asked(homelab_raw):
    first = run_program(homelab_raw).named("gateway-measure")
    assert first.inputs["triggers"] == ["remeasure 0"]
    assert 'if [ -s "$store" ]; then cat "$store"; exit 0; fi' in first.inputs["update"], "an update prints the kept measurement"
    assert "if [ -s" not in first.inputs["create"], "a create (a new step, or gateway.remeasure) measures"
    assert not first.ignore_changes, "the current script runs when it runs"
    homelab_raw["gateway"]["remeasure"] = 1
    assert run_program(homelab_raw).named("gateway-measure").inputs["triggers"] == ["remeasure 1"]


def test_a_gateway_user_other_than_root_runs_every_gateway_step_with_sudo(homelab_raw):
    """The measurement keeps its value under /var/lib/netstab, so it needs root as much as the rules do."""
    homelab_raw["gateway"]["user"] = "ops"
    recording = run_program(homelab_raw, stdout={"-measure": BLACK_HOLE})
    for step in ("gateway-measure", "gateway-rules", "gateway-verify"):
        inputs = recording.named(step).inputs
        for phase in ("create", "update", "delete"):
            if inputs.get(phase):
                assert inputs[phase].startswith("sudo -n sh -c "), (step, phase)
