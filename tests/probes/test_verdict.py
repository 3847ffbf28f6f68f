"""Evidence -> diagnosis, on evidence shaped like the agent's."""

from __future__ import annotations

from probes.verdict import diagnose


def doc(*records):
    return {"records": [{"target": t, "ok": cls is None, "error_class": cls} for t, cls in records]}


BH = "tls_handshake_timeout"


def test_consistent_handshake_stalls_with_a_sweep_are_a_black_hole_with_a_clamp():
    docs = {"cp1": doc(("a", BH), ("a", BH), ("b", BH)), "pve": doc(("a", None), ("b", None))}
    sweep = {"black_hole": True, "recommended_clamp": 1240, "path_mtu": 1280}
    d = diagnose(docs, sweep=sweep, reference_host="pve")
    assert d.kind == "pmtu-black-hole" and d.mss_fix_applies and d.recommended_clamp == 1240
    assert "Proxmox host's egress passes" in d.summary
    assert d.failures[BH]["a"] == ["cp1", "cp1"]


def test_intermittent_failures_are_packet_loss_not_a_black_hole():
    docs = {"cp1": doc(("a", None), ("a", BH), ("a", "connect_timeout"), ("b", None))}
    d = diagnose(docs, sweep={"black_hole": False})
    assert d.kind == "packet-loss" and not d.mss_fix_applies


def test_dns_errors_are_dns():
    d = diagnose({"cp1": doc(("a", "dns_error"), ("b", "dns_error")), "pve": doc(("a", None))}, reference_host="pve")
    assert d.kind == "dns" and not d.mss_fix_applies and "cp1" in d.summary


def test_refusals_everywhere_including_the_host_are_upstream_down():
    d = diagnose({"cp1": doc(("a", "connect_refused")), "pve": doc(("a", "connect_refused"))}, reference_host="pve")
    assert d.kind == "upstream-down" and not d.mss_fix_applies


def test_refusals_only_from_the_vms_are_not_called_upstream_down():
    d = diagnose({"cp1": doc(("a", "connect_refused")), "pve": doc(("a", None))}, reference_host="pve")
    assert d.kind != "upstream-down"


def test_all_good_is_healthy():
    assert diagnose({"cp1": doc(("a", None))}).kind == "healthy"


def test_lines_group_by_class_and_target_and_say_whether_the_fix_applies():
    d = diagnose({"cp1": doc(("a", "dns_error")), "worker1": doc(("a", "dns_error"))})
    lines = d.lines()
    assert lines[1] == "the MSS fix is not the answer here"
    assert any("dns_error" in line and "cp1, worker1" in line for line in lines)
