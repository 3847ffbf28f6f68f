"""The judge on evidence recorded from the lab, and on that evidence with a piece taken away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.render.validation import MAX_SWEEPS
from probes.stalls import stalled_targets
from probes.verdict import diagnose

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = {  # scenario -> kind, MSS fix applies, clamp, direction
    "blackhole": ("pmtu-black-hole", True, 1240, "both"),
    "blob-host": ("pmtu-black-hole", True, 1240, "both"),
    "toward-server": ("pmtu-black-hole", True, 1240, "toward-server"),
    "silent-server": ("server-stall", False, None, None),
    "loss": ("packet-loss", False, None, None),
    "loss-fooled-sweep": ("packet-loss", False, None, None),
    "rate-limited": ("rate-limited", False, None, None),
    "bad-cert": ("tls-certificate", False, None, None),
}


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / f"{name}.json").read_text()))


def without_sweeps(evidence: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {host: [d for d in docs if d["command"] != "mss-sweep"] for host, docs in evidence.items()}


def test_every_fixture_has_an_expectation():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_lab_evidence_gets_its_scenarios_kind_and_fails_the_default_criteria(name):
    data = load(name)
    d = diagnose(data["evidence"], data["reference"])
    assert (d.kind, d.mss_fix_applies, d.recommended_clamp, d.direction) == EXPECTED[name]
    assert d.verdict == "fail"


@pytest.mark.parametrize("name", ["blackhole", "blob-host"])
def test_the_evidence_after_the_fix_is_healthy_and_passes(name):
    data = load(name)
    d = diagnose(data["after"], data["reference"])
    assert (d.kind, d.verdict) == ("healthy", "pass")


def test_without_its_sweep_the_black_hole_still_rests_on_the_reference_host_but_has_no_clamp():
    data = load("blackhole")
    d = diagnose(without_sweeps(data["evidence"]), data["reference"])
    assert (d.kind, d.mss_fix_applies, d.recommended_clamp) == ("pmtu-black-hole", True, None)


def test_without_its_sweep_and_its_reference_host_a_black_hole_is_not_claimed():
    data = load("blackhole")
    evidence = {host: docs for host, docs in without_sweeps(data["evidence"]).items() if host != "pve"}
    d = diagnose(evidence)
    assert d.kind == "unknown" and not d.mss_fix_applies


def test_the_reference_host_judged_as_a_vm_node_does_not_make_the_black_hole_disappear():
    data = load("blackhole")
    assert diagnose(data["evidence"]).kind == "pmtu-black-hole"  # the sweep alone proves it


def test_a_silent_server_without_its_sweep_is_not_a_black_hole():
    data = load("silent-server")
    d = diagnose(without_sweeps(data["evidence"]), data["reference"])
    assert d.kind == "unknown" and not d.mss_fix_applies


def test_the_toward_server_hole_shows_plain_hellos_passing_and_large_ones_stalling():
    data = load("toward-server")
    rows = {(r.host, r.target): r for r in diagnose(data["evidence"], data["reference"]).table}
    assert rows[("cp1", "api.doppler.com/v3/projects")].ok == 3
    assert rows[("cp1", "api.doppler.com/v3/projects [big hello]")].errors == {"tls_handshake_timeout": 3}


def test_a_sweep_fooled_by_loss_is_set_aside_by_its_own_failures_below_the_size_it_found():
    data = load("loss-fooled-sweep")
    (sweep,) = [d["mss_sweep"] for d in data["evidence"]["cp1"] if d["command"] == "mss-sweep"]
    assert sweep["verdict"] == "black-hole"
    reasons = [s.reason for s in diagnose(data["evidence"], data["reference"]).set_aside if s.kind == "pmtu-black-hole"]
    found = f"handshakes fail at or below MSS {sweep['working_mss']}, the size it found working: loss, not a size limit"
    assert 1000 < sweep["working_mss"] < 1360 and reasons and found in reasons[0]


def test_loss_is_seen_by_the_reference_host_too():
    data = load("loss")
    assert diagnose(data["evidence"], data["reference"]).comparison.points_to == "upstream"


BLOB_HOST = "pkg-containers.githubusercontent.com"


def test_at_a_redirected_blob_host_only_the_pulls_stall_and_the_sweep_the_gate_picks_is_of_that_host():
    """The registry API answers on a clean path; its blob downloads are redirected beyond the hole."""
    data = load("blob-host")
    cp1 = data["evidence"]["cp1"]
    assert all(r["ok"] for d in cp1 if d["command"] == "http" for r in d["records"])
    (failed,) = [r for d in cp1 if d["command"] == "pull" for r in d["records"]]
    assert (failed["target"], failed["error_class"]) == ("ghcr.io/netstab/lab-image:1", "tls_handshake_timeout") and BLOB_HOST in failed["error"]
    probes_only = [d for d in cp1 if d["command"] != "mss-sweep"]
    assert stalled_targets(probes_only, MAX_SWEEPS) == [f"{BLOB_HOST}:443"]
    (swept,) = [d["mss_sweep"]["target"] for d in cp1 if d["command"] == "mss-sweep"]
    assert swept == f"{BLOB_HOST}:443"
    d = diagnose(data["evidence"], data["reference"])
    assert d.clamp_command == "pulumi config set --path netstab:gateway.mss 1240"
    assert any(f"mss-sweep from cp1 to {BLOB_HOST}:443" in line for line in d.findings[0].evidence)


def test_without_the_blob_hosts_sweep_there_is_no_clamp_and_without_the_reference_host_no_diagnosis():
    """What the gate said when it swept only stalled endpoints: no clamp, or (no reference host) unknown."""
    data = load("blob-host")
    d = diagnose(without_sweeps(data["evidence"]), data["reference"])
    assert (d.kind, d.mss_fix_applies, d.recommended_clamp) == ("pmtu-black-hole", True, None)
    alone = {host: docs for host, docs in without_sweeps(data["evidence"]).items() if host != "pve"}
    assert diagnose(alone).kind == "unknown"
    with_sweeps_alone = {host: docs for host, docs in data["evidence"].items() if host != "pve"}
    assert (diagnose(with_sweeps_alone).kind, diagnose(with_sweeps_alone).recommended_clamp) == ("pmtu-black-hole", 1240)
