"""Every success criterion at its boundary, from both sides: exactly at the bound passes, one step
past it fails. Flipping a `<` to `<=` (or `>=` to `>`) in probes/criteria.py fails one of these."""

from __future__ import annotations

import pytest

from probes.criteria import Check, Criteria, CriteriaError
from probes.verdict import diagnose
from tests.probes.docs import doc, http, pull, rec

DOPPLER = "https://api.doppler.com/v3/projects"
# the kinds these mixes of successes and failures are judged as: what is checked here is each threshold
LOOSE = ("packet-loss", "unknown")


def _check(evidence: dict, name: str, **criteria: object) -> Check:
    d = diagnose(evidence, criteria=Criteria(tolerate=LOOSE, **criteria))  # type: ignore[arg-type]
    return next(c for c in d.checks if c.name == name)


# ---------------------------------------------------------------- pulls: 95% per node


@pytest.mark.parametrize(("ok", "failed", "passes"), [(19, 1, True), (18, 1, False), (20, 0, True), (38, 2, True), (37, 2, False)],
                         ids=["95%", "94.7%", "100%", "95%-of-40", "94.9%"])
def test_a_node_passes_the_pulls_at_95_percent_and_fails_just_below(ok, failed, passes):
    outcomes = [None] * ok + ["read_timeout"] * failed
    check = _check({"cp1": [http(None), pull(*outcomes)]}, "pulls per node")
    assert check.passed is passes, check.detail
    assert check.detail == f"cp1 {ok}/{ok + failed} (need 95% each)"


def test_the_pull_share_is_per_node_a_node_at_the_bound_beside_one_below():
    at, below = [None] * 19 + ["read_timeout"], [None] * 18 + ["read_timeout"]
    assert _check({"cp1": [http(None), pull(*at)], "worker1": [http(None), pull(None)]}, "pulls per node").passed
    assert not _check({"cp1": [http(None), pull(*at)], "worker1": [http(None), pull(*below)]}, "pulls per node").passed


@pytest.mark.parametrize(("share", "passes"), [(0.5, True), (0.51, False)])
def test_a_configured_pull_share_is_the_bound_too(share, passes):
    assert _check({"cp1": [http(None), pull(None, "read_timeout")]}, "pulls per node", min_pull_success=share).passed is passes


# ---------------------------------------------------------------- Doppler: 95% and runs of at most 3


def _doppler(outcomes: list[str | None]) -> dict:
    return {"cp1": [doc("http", *[rec(DOPPLER, cls) for cls in outcomes]), pull(None)]}


def _spread(failures: int, total: int = 100) -> list[str | None]:
    """`failures` single failures spread out (no two adjacent) among `total` requests."""
    step = total // failures
    return ["read_timeout" if i % step == 0 and i // step < failures else None for i in range(total)]


@pytest.mark.parametrize(("failures", "passes"), [(5, True), (6, False)], ids=["95%", "94%"])
def test_doppler_passes_at_95_percent_of_requests_and_fails_just_below(failures, passes):
    outcomes = _spread(failures)
    assert outcomes.count("read_timeout") == failures
    check = _check(_doppler(outcomes), "api.doppler.com requests")
    assert check.passed is passes, check.detail
    assert check.detail.startswith(f"cp1 {100 - failures}/100, longest failure run 1 ")


@pytest.mark.parametrize(("run", "passes"), [(3, True), (4, False)])
def test_a_doppler_failure_run_of_3_passes_and_4_fails_with_the_share_met(run, passes):
    outcomes: list[str | None] = [None] * 50 + ["read_timeout"] * run + [None] * (100 - 50 - run)
    check = _check(_doppler(outcomes), "api.doppler.com requests")
    assert check.passed is passes, check.detail
    assert check.detail == f"cp1 {100 - run}/100, longest failure run {run} (need 95% and runs <= 3)"


def test_the_longest_run_is_of_consecutive_failures_in_time_order():
    """Three failures, then a success, then three: runs of 3, never 6."""
    outcomes: list[str | None] = [None] * 40 + ["read_timeout"] * 3 + [None] + ["read_timeout"] * 3 + [None] * 53
    check = _check(_doppler(outcomes), "api.doppler.com requests", min_doppler_success=0.9)
    assert check.passed and "longest failure run 3 " in check.detail


# ---------------------------------------------------------------- handshake timeouts: at most N


@pytest.mark.parametrize(("allowed", "stalls", "passes"), [(0, 0, True), (0, 1, False), (1, 1, True), (1, 2, False)])
def test_handshake_timeouts_pass_at_the_allowed_count_and_fail_one_above(allowed, stalls, passes):
    outcomes = ["tls_handshake_timeout"] * stalls + [None] * (9 - stalls)
    check = _check({"cp1": [http(*outcomes), pull(None)]}, "TLS handshake timeouts from the VM nodes", max_handshake_timeouts=allowed)
    assert check.passed is passes, check.detail
    assert check.detail.startswith(f"{stalls} of 9 attempts (allowed {allowed})")


# ---------------------------------------------------------------- TLS p95: equal to the bound passes


def _tls(values: list[float]) -> dict:
    return {"cp1": [doc("http", *[rec("https://ghcr.io/v2/", tls_ms=v) for v in values]), pull(None)]}


# 20 handshakes: the 95th percentile (nearest rank, index round(0.95 * 19) = 18) is 300 ms, the slowest 1000 ms
P95_300 = [100.0] * 18 + [300.0, 1000.0]


@pytest.mark.parametrize(("bound", "passes"), [(300, True), (299.9, False), (300.1, True)])
def test_a_tls_p95_equal_to_the_bound_passes_and_just_above_fails(bound, passes):
    check = _check(_tls(P95_300), f"TLS p95 <= {bound:g} ms", max_tls_p95_ms=bound)
    assert check.passed is passes, check.detail
    assert check.detail == ("all 1 host x target pairs" if passes else "cp1 ghcr.io/v2/ 300 ms")


def test_the_p95_is_the_nearest_rank_not_the_slowest():
    """One slow handshake in 20 does not move the p95: 1000 ms is above the bound, 300 ms is not."""
    assert _check(_tls(P95_300), "TLS p95 <= 999 ms", max_tls_p95_ms=999).passed
    assert not _check(_tls([100.0] * 17 + [300.0, 1000.0, 1000.0]), "TLS p95 <= 999 ms", max_tls_p95_ms=999).passed


# ---------------------------------------------------------------- what the criteria accept


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("min_pull_success", 0, True), ("min_pull_success", 1, True), ("min_pull_success", 1.0001, False), ("min_pull_success", -0.0001, False),
    ("min_doppler_success", 0, True), ("min_doppler_success", 1, True), ("min_doppler_success", 1.0001, False),
    ("max_doppler_failure_run", 0, True), ("max_doppler_failure_run", -1, False),
    ("max_handshake_timeouts", 0, True), ("max_handshake_timeouts", -1, False),
    ("max_tls_p95_ms", 0.001, True), ("max_tls_p95_ms", 0, False),
])
def test_each_criterion_accepts_its_range_up_to_the_edges(key, value, accepted):
    if accepted:
        assert getattr(Criteria(**{key: value}), key) == value
    else:
        with pytest.raises(CriteriaError, match=f"^{key}: "):
            Criteria(**{key: value})
