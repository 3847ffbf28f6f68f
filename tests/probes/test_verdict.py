"""The judge's rules, case by case: the evidence each needs, and the evidence that rules it out."""

from __future__ import annotations

import json

import pytest

from probes.verdict import KINDS, RULES, EvidenceError, diagnose
from tests.probes.docs import IMAGE, doc, facts, http, pull, rec, sweep

BH = "tls_handshake_timeout"
REF = ["pve"]


def full(*outcomes: str | None, big: tuple[str | None, ...] | None = None, pulls: tuple[str | None, ...] = (None,)) -> list[dict]:
    """One host's Phase 1: http with plain and large hellos, and a pull."""
    return [http(*outcomes), http(*(big if big is not None else outcomes), big=True), pull(*pulls)]


def test_the_rules_run_in_the_documented_order_and_name_only_known_kinds():
    assert [r.__name__ for _, r in RULES] == ["_dns", "_upstream_down", "_stall", "_black_hole", "_certificate", "_rate_limited",
                                           "_server_error", "_loss"]
    assert [kind for kind, _ in RULES] == [k for k in KINDS if k not in ("healthy", "unknown")]


def test_all_good_is_healthy_and_passes():
    d = diagnose({"cp1": full(None), "worker1": full(None), "pve": full(None)}, REF)
    assert (d.kind, d.verdict, d.mss_fix_applies, d.recommended_clamp) == ("healthy", "pass", False, None)
    assert d.comparison.text.endswith("all pass")


def test_a_host_that_recorded_nothing_is_not_counted_as_passing():
    d = diagnose({"cp1": full(None), "worker1": [doc("http")], "pve": full(None)}, REF)
    assert d.comparison.text.endswith("all pass; worker1 recorded no attempts")
    silent_ref = diagnose({"cp1": full(BH), "pve": [doc("http")]}, REF)
    assert silent_ref.comparison.text == "the reference host (pve) recorded no attempts: nothing to compare the VM nodes with"
    assert silent_ref.comparison.points_to is None


# ---------------------------------------------------------------- black hole


def test_stalls_on_the_vms_with_a_sweep_that_found_one_are_a_black_hole_with_its_clamp_and_command():
    ev = {"cp1": [*full(BH, pulls=(BH,)), sweep("black-hole", clamp=1240)], "worker1": full(BH, pulls=(BH,)), "pve": full(None)}
    d = diagnose(ev, REF)
    assert (d.kind, d.verdict, d.mss_fix_applies, d.recommended_clamp, d.direction) == ("pmtu-black-hole", "fail", True, 1240, "both")
    assert d.clamp_command == "pulumi config set --path netstab:gateway.mss 1240"
    assert d.clamp_command in d.fix and "while the reference host pve passes" in d.summary
    assert d.comparison.points_to == "vm-egress"


def test_a_reference_host_that_passes_where_the_vms_stall_is_enough_for_a_black_hole_but_not_for_a_clamp():
    d = diagnose({"cp1": full(BH), "worker1": full(BH), "pve": full(None)}, REF)
    assert (d.kind, d.mss_fix_applies, d.recommended_clamp, d.clamp_command) == ("pmtu-black-hole", True, None, None)
    assert "run mss-sweep to size the clamp" in d.summary and "<recommended clamp>" in d.fix


def test_large_hellos_that_stall_while_plain_ones_pass_are_a_black_hole_toward_the_server():
    ev = {"cp1": [*full(None, big=(BH,)), sweep("black-hole", clamp=1240, direction="toward-server")], "pve": full(None)}
    d = diagnose(ev, REF)
    assert (d.kind, d.direction, d.recommended_clamp) == ("pmtu-black-hole", "toward-server", 1240)
    assert "large ClientHellos toward the server; plain ones pass" in d.summary


def test_toward_the_server_is_told_from_the_probes_alone_when_no_sweep_says_it():
    d = diagnose({"cp1": full(None, big=(BH,)), "pve": full(None)}, REF)
    assert (d.kind, d.direction) == ("pmtu-black-hole", "toward-server")


def test_without_a_sweep_or_a_passing_reference_host_a_stall_is_not_called_a_black_hole():
    d = diagnose({"cp1": full(BH), "worker1": full(BH)}, [])
    assert d.kind == "unknown" and not d.mss_fix_applies
    assert any(s.kind == "pmtu-black-hole" and "no reference host passes" in s.reason for s in d.set_aside)


def test_a_sweep_that_contradicts_the_reference_host_wins():
    ev = {"cp1": [*full(BH), sweep("clean", note="1 of 3 default-MSS handshakes failed and did not reproduce")], "pve": full(None)}
    d = diagnose(ev, REF)
    assert d.kind != "pmtu-black-hole" and not d.mss_fix_applies
    assert any("says clean" in s.reason and "did not reproduce" in s.reason for s in d.set_aside)


def test_a_stall_upstream_of_both_the_host_and_the_vms_is_still_a_black_hole_when_the_sweep_finds_it():
    d = diagnose({"cp1": [*full(BH), sweep("black-hole", clamp=1360)], "pve": full(BH)}, REF)
    assert d.kind == "pmtu-black-hole" and d.recommended_clamp == 1360
    assert "stalls too: the hole is upstream of the gateway" in d.summary and d.comparison.points_to == "upstream"


def test_a_sweep_alone_that_found_a_black_hole_is_one():
    d = diagnose({"cp1": [sweep("black-hole", clamp=1200)]})
    assert (d.kind, d.recommended_clamp) == ("pmtu-black-hole", 1200)


# ---------------------------------------------------------------- what a black hole is not


def test_silent_everywhere_with_an_unreachable_sweep_is_a_server_stall_not_a_black_hole():
    """The issue's case: a TLS server that accepts TCP and never answers, seen from every host,
    the Proxmox host included; the sweep says unreachable (TLS silent even at MSS 536)."""
    ev = {"cp1": [*full(BH, pulls=(BH,)), sweep("unreachable", unreachable_class=BH)], "worker1": full(BH, pulls=(BH,)), "pve": full(BH, pulls=(BH,))}
    d = diagnose(ev, REF)
    assert (d.kind, d.mss_fix_applies, d.recommended_clamp) == ("server-stall", False, None)
    assert "the reference host pve included" in d.summary and "even at MSS 536" in d.summary
    assert "api.doppler.com, ghcr.io, quay.io accept TCP but never answer TLS" in d.summary
    assert [s.kind for s in d.set_aside][:1] == ["pmtu-black-hole"]
    assert d.verdict == "fail"


def test_stalls_even_at_mss_536_from_the_vms_only_are_not_the_server():
    ev = {"cp1": [*full(BH, pulls=(BH,)), sweep("unreachable", unreachable_class=BH)], "pve": full(None)}
    d = diagnose(ev, REF)
    assert d.kind == "unknown" and not d.mss_fix_applies
    reasons = " ".join(s.reason for s in d.set_aside)
    assert "ghcr.io completes TLS with pve" in reasons and "TLS fails from cp1 only: the VM subnet's egress" in reasons


def test_a_single_noisy_default_handshake_is_not_a_black_hole():
    ev = {"cp1": [http(*([None] * 8 + [BH]), repeat=3), sweep("clean", note="1 of 3 default-MSS handshakes failed and did not reproduce")],
          "pve": [http(None)]}
    d = diagnose(ev, REF)
    assert d.kind == "packet-loss" and not d.mss_fix_applies


def test_a_black_hole_sweep_contradicted_by_handshakes_that_completed_to_its_address_is_not_believed():
    """As under heavy loss: the sweep's default tries stalled by chance, yet the same host's probes
    to the same address completed handshakes at the default MSS."""
    ev = {"cp1": [http(BH, None, urls=("https://ghcr.io/v2/",)), sweep("black-hole", clamp=900)], "pve": [http(None)]}
    d = diagnose(ev, REF)
    assert (d.kind, d.mss_fix_applies) == ("packet-loss", False)
    (reason,) = [s.reason for s in d.set_aside if s.kind == "pmtu-black-hole"]
    assert reason == ("cp1 completed 1 handshake with 203.0.113.10 (ghcr.io) at the default MSS, which the sweep to ghcr.io:443 says stall: "
                      "loss or noise, not a size limit")


def test_a_black_hole_sweep_whose_own_handshakes_failed_below_the_size_it_found_is_not_believed():
    noisy = sweep("black-hole", clamp=1300)
    noisy["mss_sweep"]["trials"] = [{"mss": mss, "big_hello": True, "ok": ok, "error_class": None if ok else BH, "through": ok}
                                    for mss, ok in ((700, False), (900, True), (1000, False), (1300, True), (1330, False))]
    d = diagnose({"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), noisy], "pve": [http(None)]}, REF)
    assert d.kind != "pmtu-black-hole"
    assert "saw 2 handshakes fail at or below MSS 1300, the size it found working: loss, not a size limit" in d.set_aside[0].reason
    noisy["mss_sweep"]["trials"][0].update(ok=True, through=True)
    assert diagnose({"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), noisy], "pve": [http(None)]}, REF).kind == "pmtu-black-hole"


def test_handshakes_to_other_addresses_do_not_contradict_the_sweep():
    """A registry behind several addresses: the hole may be on one path only."""
    ev = {"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), http(None, urls=("https://quay.io/v2/",)), sweep("black-hole", clamp=1240)]}
    assert diagnose(ev).kind == "pmtu-black-hole"


def test_a_clean_sweep_to_a_server_nothing_stalled_on_does_not_cancel_a_black_hole_found_elsewhere():
    stalls_on_ghcr = {"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), http(None, urls=("https://quay.io/v2/",)),
                              sweep("black-hole", clamp=1240), sweep("clean", host="quay.io")], "pve": [http(None, urls=("https://ghcr.io/v2/",))]}
    d = diagnose(stalls_on_ghcr, REF)
    assert (d.kind, d.recommended_clamp) == ("pmtu-black-hole", 1240)
    reference_only = {"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), http(None, urls=("https://quay.io/v2/",)),
                              sweep("clean", host="quay.io")], "pve": [http(None, urls=("https://ghcr.io/v2/",))]}
    assert diagnose(reference_only, REF).kind == "pmtu-black-hole"


def test_a_clean_sweep_to_the_stalled_server_still_cancels_it():
    ev = {"cp1": [http(BH, urls=("https://ghcr.io/v2/",)), sweep("black-hole", clamp=1240, host="quay.io"), sweep("clean")],
          "pve": [http(None, urls=("https://ghcr.io/v2/",))]}
    d = diagnose(ev, REF)
    assert d.kind != "pmtu-black-hole" and any("mss-sweep from cp1 to ghcr.io:443 says clean" in s.reason for s in d.set_aside)


def test_plain_hellos_completing_do_not_contradict_a_hole_toward_the_server():
    ev = {"cp1": [http(None, urls=("https://ghcr.io/v2/",)), http(BH, urls=("https://ghcr.io/v2/",), big=True),
                  sweep("black-hole", clamp=1240, direction="toward-server")]}
    assert diagnose(ev).kind == "pmtu-black-hole"


def test_one_stalled_attempt_with_nothing_else_does_not_reproduce():
    d = diagnose({"cp1": [doc("http", rec("https://ghcr.io/v2/", BH), rec("https://quay.io/v2/"))], "pve": [http(None)]}, REF)
    assert d.kind == "unknown"
    assert any("did not reproduce" in s.reason for s in d.set_aside)


def test_stalls_that_come_and_go_are_loss_even_when_the_reference_host_passes():
    d = diagnose({"cp1": [http(BH, None)], "pve": [http(None)]}, REF)
    assert d.kind == "packet-loss"
    assert any(s.kind == "pmtu-black-hole" and "come and go" in s.reason for s in d.set_aside)


# ---------------------------------------------------------------- loss


def test_intermittent_failures_with_successes_in_between_are_packet_loss():
    d = diagnose({"cp1": [http(None, BH, "connect_timeout", None, "read_timeout")], "pve": [http(None, "read_timeout")]}, REF)
    assert (d.kind, d.mss_fix_applies) == ("packet-loss", False)
    assert "with successes to the same targets in between" in d.summary and d.comparison.points_to == "upstream"


def test_mixed_classes_with_no_success_are_not_packet_loss():
    d = diagnose({"cp1": [http(BH, "connect_timeout", "read_timeout", urls=("https://ghcr.io/v2/",))]})
    assert d.kind == "unknown"
    assert any(s.kind == "packet-loss" and "nothing succeeded" in s.reason for s in d.set_aside)


def test_a_wall_on_one_target_beside_healthy_ones_is_not_loss():
    records = [rec("https://ghcr.io/v2/", "read_timeout") for _ in range(3)] + [rec("https://quay.io/v2/") for _ in range(3)]
    assert diagnose({"cp1": [doc("http", *records)]}).kind == "unknown"


# ---------------------------------------------------------------- dns, upstream


def test_names_that_do_not_resolve_on_the_vms_are_dns_with_their_resolver():
    d = diagnose({"cp1": full("dns_error", pulls=("dns_error",)), "pve": full(None)}, REF)
    assert (d.kind, d.mss_fix_applies) == ("dns", False)
    assert "the resolver cp1 uses, since pve resolves them" in d.summary
    assert "cp1: MTU 1400, default route via 10.27.27.1 dev eth0, resolver 10.27.27.1" in d.findings[0].evidence


def test_names_that_resolve_nowhere_point_at_the_upstream_dns():
    d = diagnose({"cp1": [http("dns_error")], "pve": [http("dns_error")]}, REF)
    assert d.kind == "dns" and "every host that tried: the upstream DNS" in d.summary


def test_refusals_everywhere_including_the_reference_host_are_upstream_down():
    d = diagnose({"cp1": full("connect_refused"), "pve": full("connect_refused")}, REF)
    assert (d.kind, d.mss_fix_applies) == ("upstream-down", False)
    assert "the reference host pve included" in d.summary


def test_refusals_from_the_vms_only_are_not_upstream_down_and_point_at_the_vm_egress():
    d = diagnose({"cp1": [http("connect_refused")], "pve": [http(None)]}, REF)
    assert d.kind == "unknown"
    assert any(s.kind == "upstream-down" and "TCP fails from cp1 only: the VM subnet's egress" in s.reason for s in d.set_aside)


def test_refusals_without_a_reference_host_are_upstream_down_with_that_caveat():
    d = diagnose({"cp1": [http("connect_timeout")]})
    assert d.kind == "upstream-down" and "no reference host tried" in d.summary


def test_a_sweep_refused_even_at_mss_536_is_upstream_down():
    d = diagnose({"cp1": [sweep("unreachable", unreachable_class="connect_refused")]})
    assert d.kind == "upstream-down" and "ghcr.io" in d.summary


def test_refusals_that_come_and_go_are_not_upstream_down():
    d = diagnose({"cp1": [http("connect_timeout", None)]})
    assert d.kind == "packet-loss"


# ---------------------------------------------------------------- answers from the server


def test_certificate_errors_everywhere_are_the_servers_certificate():
    d = diagnose({"cp1": [http("tls_certificate")], "pve": [http("tls_certificate")]}, REF)
    assert (d.kind, d.mss_fix_applies) == ("tls-certificate", False)
    assert "every host that tried rejects it" in d.summary


def test_certificate_errors_on_the_vms_only_point_at_an_intercepting_proxy():
    d = diagnose({"cp1": [http("tls_certificate")], "pve": [http(None)]}, REF)
    assert d.kind == "tls-certificate" and "a TLS-intercepting proxy on their path" in d.summary


def test_a_sweep_that_met_a_certificate_error_reports_it():
    d = diagnose({"cp1": [sweep("clean", certificate_error="certificate verify failed: self-signed certificate")]})
    assert d.kind == "tls-certificate"


def test_429_is_rate_limited_and_the_fix_names_the_mirror_and_credentials():
    records = [rec("https://registry-1.docker.io/v2/", "http_status", status=429)]
    pulls = [rec("docker.io/library/busybox:1", "http_status", kind="pull", error="HTTP 429 for manifest at registry-1.docker.io")]
    d = diagnose({"cp1": [doc("http", *records), doc("pull", *pulls)]})
    assert (d.kind, d.mss_fix_applies) == ("rate-limited", False)
    assert "mirror" in d.fix and "credentials" in d.fix
    assert d.findings[0].evidence == ("HTTP 429 x2 on cp1",)


def test_5xx_is_a_server_error():
    d = diagnose({"cp1": [doc("http", rec("https://api.doppler.com/v3/projects", "http_status", status=503))]})
    assert (d.kind, d.mss_fix_applies) == ("server-error", False)
    assert d.summary == "api.doppler.com answers HTTP 503 on cp1"


def test_other_statuses_are_not_server_errors():
    assert diagnose({"cp1": [doc("http", rec("https://ghcr.io/v2/", "http_status", status=404))]}).kind == "unknown"


# ---------------------------------------------------------------- several problems


def test_the_first_rule_names_the_kind_and_the_others_are_reported_beside_it():
    records = [rec("https://registry-1.docker.io/v2/", "http_status", status=429)]
    ev = {"cp1": [*full(BH), doc("http", *records), sweep("black-hole", clamp=1240)], "pve": full(None)}
    d = diagnose(ev, REF)
    assert [f.kind for f in d.findings] == ["pmtu-black-hole", "rate-limited"]
    assert "also found:" in d.text() and "rate-limited: " in d.text()


def test_no_evidence_is_unknown():
    d = diagnose({"cp1": [doc("http")]})
    assert d.kind == "unknown" and d.summary == "no probe records in the evidence"


@pytest.mark.parametrize("ev", [
    {"cp1": full(BH), "pve": full(None)},
    {"cp1": full("dns_error")},
    {"cp1": full("connect_refused")},
    {"cp1": [http("tls_certificate")]},
    {"cp1": [http(BH, None)]},
    {"cp1": [http(BH, "read_timeout")]},
], ids=["black-hole", "dns", "upstream-down", "certificate", "loss", "unknown"])
def test_with_the_default_criteria_every_diagnosed_problem_fails(ev):
    d = diagnose(ev, [h for h in ev if h == "pve"])
    assert d.kind != "healthy" and d.verdict == "fail"


# ---------------------------------------------------------------- the grouped result


def test_failures_are_grouped_by_class_target_and_host_and_pulls_by_image_and_node_with_facts():
    d = diagnose({"cp1": full(BH, pulls=(BH, None)), "worker1": full("dns_error", pulls=("dns_error",))})
    group = next(g for g in d.failures if g.error_class == BH and g.target == "ghcr.io/v2/" and g.host == "cp1")
    assert (group.probe, group.failed, group.attempts) == ("http", 3, 3)
    pulls = {(p.image, p.node): p for p in d.pull_failures}
    assert pulls[(IMAGE, "cp1")].failed == 1 and pulls[(IMAGE, "cp1")].attempts == 2
    assert pulls[(IMAGE, "worker1")].classes == {"dns_error": 1}
    assert pulls[(IMAGE, "worker1")].node_facts == "MTU 1400, default route via 10.27.27.1 dev eth0, resolver 10.27.27.1"


def test_the_table_has_ok_attempts_and_p50_p95_per_phase_for_each_host_and_target():
    d = diagnose({"cp1": [doc("http", *[rec("https://ghcr.io/v2/", tls_ms=ms) for ms in (10, 20, 30, 40)], rec("https://ghcr.io/v2/", BH))]})
    (row,) = d.table
    assert (row.host, row.probe, row.target, row.ok, row.attempts, row.errors) == ("cp1", "http", "ghcr.io/v2/", 4, 5, {BH: 1})
    assert row.phases_ms["tls"] == {"p50": 30, "p95": 40}


def test_the_result_is_one_json_object_with_the_promised_keys():
    ev = {"cp1": [*full(BH), sweep("black-hole", clamp=1240)], "pve": full(None)}
    data = json.loads(json.dumps(diagnose(ev, REF).to_dict()))
    for key in ("kind", "verdict", "summary", "fix", "mss_fix_applies", "recommended_clamp", "clamp_command", "failures",
                "pull_failures", "comparison", "table", "checks", "findings", "set_aside", "sweeps"):
        assert key in data, key
    assert data["recommended_clamp"] == 1240 and data["failures"][0]["error_class"] == BH


def test_the_text_says_the_verdict_the_kind_the_fix_and_whether_the_mss_fix_applies_without_traceback_noise():
    ev = {"cp1": [*full(BH), sweep("black-hole", clamp=1240)], "pve": full(None)}
    lines = diagnose(ev, REF).text().splitlines()
    assert lines[0].startswith("FAIL: pmtu-black-hole - TLS handshakes stall on cp1")
    assert lines[1] == "MSS fix: applies; clamp 1240"
    assert lines[2] == "fix: clamp the VM subnet's TCP MSS at the gateway to 1240: pulumi config set --path netstab:gateway.mss 1240, then pulumi up"
    assert not [line for line in lines if "Traceback" in line or "File \"" in line]
    assert diagnose({"cp1": [http("dns_error")]}).text().splitlines()[1] == "MSS fix: does not apply"


def test_a_facts_document_gives_the_node_facts_shown_beside_its_pull_failures():
    facts_doc = {"schema": "netstab.probe/v1", "command": "facts", "host": facts(mtu=1450, via="10.27.27.254", resolver="1.1.1.1")}
    (failure,) = diagnose({"cp1": [facts_doc, pull("connect_timeout")]}).pull_failures
    assert failure.node_facts == "MTU 1450, default route via 10.27.27.254 dev eth0, resolver 1.1.1.1"


@pytest.mark.parametrize(("evidence", "message"), [
    ({"cp1": "x"}, "cp1: expected a document or a list of documents, got str"),
    ({"cp1": [[]]}, "cp1, document 1: not a JSON object"),
    ({"cp1": [{**http(None), "schema": "netstab.probe/v0"}]}, "cp1, document 1: not a netstab.probe/v1 document (schema 'netstab.probe/v0')"),
    ({"cp1": [http(None), {**http(None), "command": "ping"}]}, "cp1, document 2: unknown command 'ping' (expected one of http, pull, mss-sweep, facts)"),
    ({"cp1": [{**http(None), "records": [{"target": "x", "ok": False}]}]}, "cp1, document 1: a failed record has no error_class"),
    ({"cp1": [{**http(None), "records": [{**rec("https://ghcr.io/v2/"), "phases_ms": [1]}]}]},
     "cp1, document 1: phases_ms of https://ghcr.io/v2/ is not an object"),
    ({"cp1": [{**sweep("clean"), "mss_sweep": {"target": "ghcr.io:443"}}]}, "cp1, document 1: mss_sweep has no verdict"),
], ids=["not-documents", "not-object", "schema", "command", "no-class", "phases", "sweep-verdict"])
def test_evidence_the_judge_cannot_read_is_refused_with_where_and_why(evidence, message):
    with pytest.raises(EvidenceError) as err:
        diagnose(evidence)
    assert str(err.value) == message


def test_a_reference_host_without_evidence_is_noted_and_the_verdict_is_at_best_a_warning():
    d = diagnose({"cp1": [http(None), pull(None)]}, reference=["pve"])
    assert d.notes == ("reference host pve gave no evidence",) and d.verdict == "warn"
