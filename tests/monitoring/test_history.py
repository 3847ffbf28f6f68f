"""`python -m probes history`: a window of stored runs judged with the gate's judge, plus what only
time shows: intermittent or steady, bursts, the longest Doppler failure run, the reference host,
and the plan's temporal criteria pinned from both sides."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from probes.__main__ import main
from probes.criteria import Criteria
from probes.history import judge_history, parse_span, run_of
from tests.monitoring.docs import doc, http, pull, sweep

T0 = datetime(2026, 12, 6, 0, 0, tzinfo=UTC).timestamp()
GHCR, DOPPLER = "https://ghcr.io/v2/", "https://api.doppler.com/v3/projects"


def at(minute: float) -> str:
    return datetime.fromtimestamp(T0 + minute * 60, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cycle(host: str, minute: float, *, hole: bool = False, doppler_ok: bool = True) -> list[dict]:
    """One cheap-set run: ghcr.io plain and big hello, Doppler; a black-hole sweep when ghcr.io stalled."""
    t = at(minute)
    recs = [http(GHCR, not hole, "tls_handshake_timeout", at=t), http(GHCR, not hole, "tls_handshake_timeout", big=True, at=t),
            http(GHCR, not hole, "tls_handshake_timeout", at=t),
            http(DOPPLER, doppler_ok, "connect_timeout", at=t, ip="203.0.113.20")]
    docs = [doc("http", recs, started=t, finished=at(minute + 0.5), hostname=host),
            doc("pull", [pull("ghcr.io/fluxcd/helm-controller:v1.5.1", True, manifest=True, at=t)], started=t, finished=at(minute + 0.5))]
    if hole:
        docs.append(sweep("ghcr.io:443", "black-hole", 1240, at=at(minute + 0.4)))
    return docs


def runs(host: str, minutes: range, **kinds) -> list:
    return [run_of(host, cycle(host, m, **{k: f(m) for k, f in kinds.items()})) for m in minutes]


EVERY_5 = range(0, 120, 5)


def test_an_intermittent_black_hole_is_named_with_its_burst_and_the_reference_passes():
    window = runs("cp1", EVERY_5, hole=lambda m: 30 <= m < 60) + runs("pve", EVERY_5)
    h = judge_history(window, ["pve"])
    (problem,) = h.problems
    assert (problem.kind, problem.pattern, problem.hosts, problem.runs, problem.of_runs) == ("pmtu-black-hole", "intermittent", ("cp1",), 6, 24)
    (burst,) = problem.bursts
    assert (burst.start, burst.end) == (T0 + 30 * 60, T0 + 55.5 * 60)
    assert burst.reference_saw == "no"
    assert h.interval_s == 300
    # 4 handshakes a run, 3 of them stalled in 6 of 24 runs: 78 of 96 completed, far below 99% a day
    assert h.verdict == "fail" and h.handshake_success_per_day == {"cp1": {"2026-12-06": 0.8125}}


def test_two_bursts_stay_two_and_a_steady_hole_is_steady():
    window = runs("cp1", EVERY_5, hole=lambda m: 10 <= m < 20 or 80 <= m < 90) + runs("pve", EVERY_5)
    (problem,) = judge_history(window, ["pve"]).problems
    assert [(b.start - T0, b.end - T0) for b in problem.bursts] == [(600, 15.5 * 60), (4800, 85.5 * 60)]
    steady = judge_history(runs("cp1", EVERY_5, hole=lambda m: True), [])
    assert [(p.kind, p.pattern) for p in steady.problems] == [("pmtu-black-hole", "steady")]
    assert next(c for c in steady.checks if c.name == "no steady problem").passed is False


def test_the_reference_host_seeing_the_same_is_said():
    window = runs("cp1", EVERY_5, hole=lambda m: 30 <= m < 40) + runs("pve", EVERY_5, doppler_ok=lambda m: not 30 <= m < 40)
    (burst,) = judge_history(window, ["pve"]).problems[0].bursts
    assert burst.reference_saw == "yes"
    assert judge_history(runs("cp1", EVERY_5, hole=lambda m: 30 <= m < 40), []).problems[0].bursts[0].reference_saw == "no data"


def test_the_gate_alone_would_not_see_it_in_an_off_window():
    """The last run alone is healthy: only the history knows."""
    window = runs("cp1", EVERY_5, hole=lambda m: 30 <= m < 60) + runs("pve", EVERY_5)
    h = judge_history(window, ["pve"])
    assert h.runs[-1].kind == "healthy" and h.problems


@pytest.mark.parametrize("failing,minutes,passed", [
    (range(10, 20, 5), 10.0, True),   # fails at 10 and 15, succeeds at 20: 10 minutes, at the tolerance
    (range(10, 25, 5), 15.0, False),  # one run more: 15 minutes, beyond it
])
def test_the_longest_doppler_failure_run_is_pinned_from_both_sides(failing, minutes, passed):
    h = judge_history(runs("cp1", EVERY_5, doppler_ok=lambda m: m not in failing), [])
    assert h.doppler_longest_failure_minutes == {"cp1": minutes}
    check = next(c for c in h.checks if c.name.startswith("longest Doppler failure run"))
    assert check.passed is passed


def test_a_doppler_outage_still_going_counts_to_its_last_failure():
    h = judge_history(runs("cp1", EVERY_5, doppler_ok=lambda m: m < 100), [])
    assert h.doppler_longest_failure_minutes == {"cp1": 15.0}


@pytest.mark.parametrize("stalls,passed", [(1, True), (2, False)])
def test_the_daily_handshake_share_is_pinned_from_both_sides(stalls, passed):
    """100 handshakes a day: 99 complete passes 99%, 98 fails it."""
    recs = [http(GHCR, i >= stalls, "tls_handshake_timeout", at=at(i)) for i in range(100)]
    h = judge_history([run_of("cp1", [doc("http", recs, started=at(0), finished=at(100))])], [])
    check = next(c for c in h.checks if c.name.startswith("TLS handshakes completed per node and day"))
    assert check.passed is passed
    assert h.handshake_success_per_day["cp1"]["2026-12-06"] == (100 - stalls) / 100


def test_connect_failures_are_not_handshakes():
    recs = [http(GHCR, i >= 5, "connect_timeout", at=at(i)) for i in range(100)]
    h = judge_history([run_of("cp1", [doc("http", recs, started=at(0), finished=at(100))])], [])
    assert h.handshake_success_per_day["cp1"]["2026-12-06"] == 1.0


def test_the_window_excludes_older_runs():
    window = runs("cp1", EVERY_5, hole=lambda m: m < 30)
    late = judge_history(window, [], since=T0 + 60 * 60, until=T0 + 120 * 60)
    assert not late.problems and late.verdict == "pass" and len(late.runs) == 12


def test_healthy_runs_pass_and_a_tolerance_is_taken_from_the_criteria():
    assert judge_history(runs("cp1", EVERY_5) + runs("pve", EVERY_5), ["pve"]).verdict == "pass"
    loose = Criteria(max_doppler_failure_minutes=20)
    h = judge_history(runs("cp1", EVERY_5, doppler_ok=lambda m: m not in range(10, 25, 5)), [], loose)
    assert next(c for c in h.checks if c.name.startswith("longest Doppler")).passed is True


def test_spans():
    assert [parse_span(s) for s in ("90s", "30m", "24h", "7d")] == [90, 1800, 86400, 604800]
    for bad in ("0h", "1y", "h", "-1h"):
        with pytest.raises(ValueError):
            parse_span(bad)


def _store(tmp_path, host, cycles):
    d = tmp_path / host
    d.mkdir()
    for i, docs in enumerate(cycles):
        (d / f"run-{i:04d}.json").write_text(json.dumps(docs))
    return d


def test_the_cli_judges_stores_and_exits_as_diagnose(tmp_path, capsys):
    cp1 = _store(tmp_path, "cp1", [cycle("cp1", m, hole=30 <= m < 60) for m in EVERY_5])
    pve = _store(tmp_path, "pve", [cycle("pve", m) for m in EVERY_5])
    (cp1 / "run-cut.json").write_text('[{"schema": "netstab.pro')  # a run cut short by a full disk: skipped
    args = [f"cp1={cp1}", f"pve={pve}", "--reference", "pve", "--until", "2026-12-06T02:00:00Z", "--since", "3h"]
    assert main(["history", *args]) == 1
    out = capsys.readouterr().out
    assert "pmtu-black-hole: intermittent, 6 of 24 runs on cp1" in out
    assert "burst 2026-12-06T00:30:00Z .. 2026-12-06T00:55:30Z (25.5 min, 6 runs) on cp1; reference host saw the same: no" in out
    assert main(["history", *args, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["problems"][0]["bursts"][0]["start"] == "2026-12-06T00:30:00Z"
    healthy = [f"cp1={_store(tmp_path, 'cp2', [cycle('cp2', m) for m in EVERY_5])}", "--until", "2026-12-06T02:00:00Z"]
    assert main(["history", *healthy]) == 0


@pytest.mark.parametrize("args,message", [
    (["cp1"], "expected HOST=DIR"),
    (["cp1=/nonexistent/store"], "no such store"),
    (["cp1=.", "--since", "1y"], "not a positive span"),
    (["cp1=.", "--until", "yesterday"], "not a UTC time"),
    (["cp1=.", "--reference", "pve"], "--reference pve"),
])
def test_the_cli_refuses_bad_usage(capsys, args, message):
    assert main(["history", *args]) == 2
    assert message in capsys.readouterr().err
