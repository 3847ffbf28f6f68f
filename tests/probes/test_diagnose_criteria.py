"""Success criteria: their defaults, their validation, and the verdict they give."""

from __future__ import annotations

import pytest

from probes.criteria import Criteria, CriteriaError
from probes.verdict import diagnose
from tests.probes.docs import doc, http, pull, rec

REF = ["pve"]
DOPPLER = "https://api.doppler.com/v3/projects"


def healthy(host_pulls: tuple[str | None, ...] = (None,)) -> list[dict]:
    return [http(None), pull(*host_pulls)]


def test_the_defaults_are_the_gates():
    assert Criteria().to_dict() == {"max_handshake_timeouts": 0, "min_pull_success": 0.95, "every_image_per_node": True,
                                    "doppler_host": "api.doppler.com", "min_doppler_success": 0.95, "max_doppler_failure_run": 3,
                                    "max_tls_p95_ms": None, "max_doppler_failure_minutes": 10.0, "min_handshake_success_per_day": 0.99,
                                    "tolerate": []}


def test_from_dict_round_trips_and_fills_defaults():
    c = Criteria.from_dict({"min_pull_success": 0.9, "tolerate": ["packet-loss"]})
    assert (c.min_pull_success, c.tolerate, c.max_doppler_failure_run) == (0.9, ("packet-loss",), 3)
    assert Criteria.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(("data", "message"), [
    ({"min_pull_succes": 0.9}, "min_pull_succes: unknown criterion (known: doppler_host, every_image_per_node, max_doppler_failure_minutes, "
                               "max_doppler_failure_run, max_handshake_timeouts, max_tls_p95_ms, min_doppler_success, "
                               "min_handshake_success_per_day, min_pull_success, tolerate)"),
    ({"min_pull_success": 95}, "min_pull_success: 95 is not a fraction between 0 and 1 (0.95 means 95%)"),
    ({"min_doppler_success": "high"}, "min_doppler_success: 'high' is not a fraction between 0 and 1 (0.95 means 95%)"),
    ({"max_handshake_timeouts": -1}, "max_handshake_timeouts: -1 is not a whole number >= 0"),
    ({"max_doppler_failure_run": True}, "max_doppler_failure_run: True is not a whole number >= 0"),
    ({"every_image_per_node": "yes"}, "every_image_per_node: 'yes' is not true or false"),
    ({"doppler_host": ""}, "doppler_host: '' is not a host name"),
    ({"max_tls_p95_ms": 0}, "max_tls_p95_ms: 0 is not a positive number of milliseconds (or null: off)"),
    ({"tolerate": ["healthy", "flaky"]}, "tolerate: healthy, flaky not a problem kind (one of dns, upstream-down, server-stall, "
                                         "pmtu-black-hole, tls-certificate, rate-limited, server-error, packet-loss, unknown)"),
    ({"tolerate": "packet-loss"}, "tolerate: 'packet-loss' is not a list of kinds"),
], ids=["unknown-key", "percent-not-fraction", "not-a-number", "negative", "bool-not-int", "not-bool", "empty-host", "zero-bound",
        "unknown-kind", "not-a-list"])
def test_bad_criteria_say_which_key_and_why(data, message):
    with pytest.raises(CriteriaError) as err:
        Criteria.from_dict(data)
    assert str(err.value) == message


def test_every_problem_is_listed_at_once():
    with pytest.raises(CriteriaError) as err:
        Criteria.from_dict({"min_pull_success": 2, "max_handshake_timeouts": -1})
    assert str(err.value).splitlines() == ["max_handshake_timeouts: -1 is not a whole number >= 0",
                                           "min_pull_success: 2 is not a fraction between 0 and 1 (0.95 means 95%)"]


def test_unknown_keys_are_listed_with_the_value_problems():
    with pytest.raises(CriteriaError) as err:
        Criteria.from_dict({"min_pull_succes": 0.9, "max_handshake_timeouts": -1})
    assert [line.split(":")[0] for line in str(err.value).splitlines()] == ["min_pull_succes", "max_handshake_timeouts"]


def test_the_stack_files_camel_case_criteria_are_read_as_they_are_written():
    """A copy of validation.criteria from the stack file works with --criteria as it stands."""
    c = Criteria.from_dict({"maxTlsP95Ms": 800, "minPullSuccess": 0.9, "everyImagePerNode": False, "maxDopplerFailureRun": 2.0})
    assert (c.max_tls_p95_ms, c.min_pull_success, c.every_image_per_node, c.max_doppler_failure_run) == (800, 0.9, False, 2)


def test_criteria_are_an_object():
    with pytest.raises(CriteriaError, match="criteria: expected an object, got list"):
        Criteria.from_dict([])  # type: ignore[arg-type]


# ---------------------------------------------------------------- verdicts


def test_healthy_with_every_criterion_judged_passes():
    d = diagnose({"cp1": healthy(), "pve": healthy()}, REF)
    assert d.verdict == "pass" and all(c.passed for c in d.checks)


def test_a_criterion_with_nothing_to_judge_makes_a_healthy_path_a_warning():
    d = diagnose({"cp1": [http(None, urls=("https://ghcr.io/v2/",))]})
    assert d.kind == "healthy" and d.verdict == "warn"
    unjudged = {c.name: c.detail for c in d.checks if c.passed is None}
    assert unjudged == {"pulls per node": "no pulls from the VM nodes",
                        "api.doppler.com requests": "no http probes of api.doppler.com from the VM nodes"}


def test_the_reference_host_is_not_judged_by_the_vm_criteria():
    d = diagnose({"cp1": healthy(), "pve": [http("tls_handshake_timeout", None)]}, REF)
    stalls = next(c for c in d.checks if c.name == "TLS handshake timeouts from the VM nodes")
    assert stalls.passed and stalls.detail == "0 of 9 attempts (allowed 0)"


def test_a_tolerated_kind_within_the_thresholds_warns():
    loose = Criteria(tolerate=("packet-loss",), max_handshake_timeouts=5)
    ev = {"cp1": [http(*([None] * 27 + ["read_timeout", None, None]), repeat=10), pull(None)]}  # one ghcr.io failure
    assert diagnose(ev).verdict == "fail"
    d = diagnose(ev, criteria=loose)
    assert (d.kind, d.verdict) == ("packet-loss", "warn")


def test_a_tolerated_kind_beyond_a_threshold_still_fails():
    loose = Criteria(tolerate=("packet-loss",))
    d = diagnose({"cp1": [http("tls_handshake_timeout", None), pull(None)]}, criteria=loose)
    assert d.kind == "packet-loss" and d.verdict == "fail"
    assert [c.name for c in d.checks if c.passed is False] == ["TLS handshake timeouts from the VM nodes", "api.doppler.com requests"]


def test_pulls_below_the_share_fail_per_node():
    loose = Criteria(tolerate=("packet-loss",))
    d = diagnose({"cp1": [http(None), pull(*([None] * 19 + ["read_timeout"]))], "worker1": [http(None), pull(None, "read_timeout")]},
                 criteria=loose)
    check = next(c for c in d.checks if c.name == "pulls per node")
    assert not check.passed and check.detail == "cp1 19/20, worker1 1/2 (need 95% each)"


def test_every_image_must_be_pulled_at_least_once_on_every_node():
    other = "quay.io/prometheus/node-exporter:v1.8.2"
    ev = {"cp1": [http(None), pull(None), doc("pull", rec(other, kind="pull"))],
          "worker1": [http(None), pull(None), doc("pull", rec(other, "http_status", kind="pull", error="HTTP 404 for manifest at quay.io"))]}
    check = next(c for c in diagnose(ev, criteria=Criteria(min_pull_success=0.5, tolerate=("unknown",))).checks
                 if c.name == "every image pulled on every node")
    assert not check.passed and check.detail.endswith(f"never pulled: {other} on worker1")


def test_doppler_fails_on_a_run_of_more_than_three_failures_even_above_the_share():
    calls = [rec(DOPPLER) for _ in range(96)] + [rec(DOPPLER, "read_timeout") for _ in range(4)]
    d = diagnose({"cp1": [doc("http", *calls)]}, criteria=Criteria(tolerate=("unknown", "packet-loss")))
    check = next(c for c in d.checks if c.name == "api.doppler.com requests")
    assert not check.passed and check.detail == "cp1 96/100, longest failure run 4 (need 95% and runs <= 3)"
    calls = [rec(DOPPLER, "read_timeout") if i % 25 == 0 else rec(DOPPLER) for i in range(100)]
    d = diagnose({"cp1": [doc("http", *calls)]}, criteria=Criteria(tolerate=("packet-loss",)))
    assert next(c for c in d.checks if c.name == "api.doppler.com requests").passed


def test_the_tls_p95_bound_is_off_by_default_and_fails_a_slow_healthy_path_when_set():
    ev = {"cp1": [doc("http", *[rec("https://ghcr.io/v2/", tls_ms=ms) for ms in range(10, 410, 20)]), pull(None)]}
    assert "TLS p95" not in " ".join(c.name for c in diagnose(ev).checks)
    d = diagnose(ev, criteria=Criteria(max_tls_p95_ms=300))
    check = d.checks[-1]
    assert (d.kind, d.verdict, check.name, check.passed) == ("healthy", "fail", "TLS p95 <= 300 ms", False)
    assert check.detail == "cp1 ghcr.io/v2/ 370 ms"


def test_the_callers_notes_on_what_it_could_not_probe_make_a_healthy_path_a_warning():
    d = diagnose({"cp1": [http(None), pull(None)]}, notes=["pve: not run, the 120s budget was spent"])
    assert (d.kind, d.verdict, d.notes) == ("healthy", "warn", ("pve: not run, the 120s budget was spent",))
    assert d.text().splitlines()[-2:] == ["notes:", "  pve: not run, the 120s budget was spent"]


def test_the_stack_configs_criteria_are_the_judges_field_for_field():
    from components.config.validation import CriteriaConfig

    assert Criteria.from_dict(CriteriaConfig().judge_criteria()) == Criteria()


def test_interrupted_evidence_is_at_best_a_warning():
    d = diagnose({"cp1": [doc("http", rec(DOPPLER), interrupted=True), pull(None)]})
    assert d.kind == "healthy" and d.verdict == "warn"
    assert d.notes == ("cp1, document 1 (http) was interrupted: partial evidence",)
