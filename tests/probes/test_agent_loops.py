"""The agent's loops on a fake clock and fake handshakes/sockets, so a broken bound fails here in
milliseconds instead of hanging the real ring: the mss-sweep's search (when it stops narrowing) and
the per-attempt deadline (a peer that drip-feeds bytes cannot hold an attempt past it).

The fakes replace module globals of probes/agent.py (`time`, `handshake_ok`, `route_mtu`,
`resolve`, `connect`); the agent itself is unchanged."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "probes"))
import agent  # noqa: E402


class FakeClock:
    """`time` as the agent uses it: monotonic() and sleep() on a clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def time(self) -> float:
        return self.monotonic()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(agent, "time", fake)
    return fake


# ---------------------------------------------------------------- the sweep's search


def sweep_args(**overrides: Any) -> argparse.Namespace:
    values = {"timeout": 5.0, "ca_file": None, "source": None, "budget": 90.0, "max_mss": None, "parallel": 4, "repeat": 2}
    values.update(overrides)
    return argparse.Namespace(**values)


def run_sweep(monkeypatch, clock: FakeClock, outcome: Any, trial_s: float = 0.1, **args: Any) -> tuple[dict, list[int | None]]:
    """A sweep of a path whose handshake at an MSS ends as `outcome(mss)` says (None: it gets
    through; else the failure class); each handshake takes `trial_s` on the fake clock."""
    tried: list[int | None] = []

    def handshake_ok(host: str, port: int, opts: Any) -> tuple[bool, Any]:
        clock.advance(trial_s)
        tried.append(opts.mss)
        if len(tried) > 2000:
            raise AssertionError("the sweep kept going: its search is unbounded")
        cls = outcome(opts.mss)
        return (True, None) if cls is None else (False, agent.ProbeFailure(cls, f"{cls} at MSS {opts.mss}"))

    monkeypatch.setattr(agent, "handshake_ok", handshake_ok)
    monkeypatch.setattr(agent, "route_mtu", lambda *_: 1400)
    result = agent.Sweep("blobs.example.net", 443, "203.0.113.30", sweep_args(**args), lambda _line: None).run()
    return result, tried


def black_hole(path_mss: int):
    """The default MSS (1360 here) and anything above `path_mss` stall; the rest gets through."""
    return lambda mss: "tls_handshake_timeout" if mss is None or mss > path_mss else None


def rounds(tried: list[int | None], parallel: int = 4) -> int:
    """Search rounds after the first: the trials between the first round and the confirmation."""
    first = 2 * agent.DEFAULT_TRIES + 2 + parallel
    return (len(tried) - first - 2) // parallel + (1 if (len(tried) - first - 2) % parallel else 0)


def test_the_search_narrows_until_the_working_and_the_stalling_mss_are_neighbours(monkeypatch, clock):
    result, tried = run_sweep(monkeypatch, clock, black_hole(1240))
    assert (result["verdict"], result["working_mss"], result["recommended_clamp"], result["path_mtu"]) == ("black-hole", 1240, 1240, 1280)
    assert 1240 in tried and 1241 in tried and "incomplete" not in result
    # each round of 4 cuts the interval to a fifth at least: 824 values take at most 5 rounds
    assert rounds(tried) <= 5, tried
    assert tried[-2:] == [1240, 1240], "the working MSS is confirmed --repeat times, after the search"


# Paths where the search passes through an interval two wide (543, 1006, 1109 with 4 per round): a
# search that stopped narrowing one step early would call one MSS too small there; and every 13th.
PATH_MSS = sorted({537, 543, 1006, 1109, 1240, 1359, *range(550, 1360, 13)})


def test_the_search_finds_the_exact_working_mss_of_any_path(monkeypatch, clock):
    found = {}
    for path_mss in PATH_MSS:
        result, _ = run_sweep(monkeypatch, clock, black_hole(path_mss))
        found[path_mss] = result["working_mss"]
    assert found == {p: p for p in PATH_MSS}


def test_no_search_when_the_first_round_already_has_neighbours_or_nothing_passed(monkeypatch, clock):
    """A clean path: the full MSS passes in the first round, nothing is left to narrow."""
    result, tried = run_sweep(monkeypatch, clock, lambda mss: None)
    assert result["verdict"] == "clean" and result["working_mss"] == 1360
    assert len(tried) == 2 * agent.DEFAULT_TRIES + 2 + 4 + 2  # the first round, then the confirmation only
    unreachable, tried = run_sweep(monkeypatch, clock, lambda mss: "connect_timeout")
    assert unreachable["verdict"] == "unreachable" and len(tried) == 2 * agent.DEFAULT_TRIES + 2 + 4


def test_a_round_that_settles_nothing_stops_the_search(monkeypatch, clock):
    """Between the pass at 536 and the stall at the full size, every MSS is refused: no pass, no
    stall, no new bound. The search must stop there, not retry the same values forever."""
    outcome = lambda mss: None if mss == 536 else "tls_handshake_timeout" if mss is None or mss >= 1360 else "connect_refused"  # noqa: E731
    result, tried = run_sweep(monkeypatch, clock, outcome)
    assert result["incomplete"] == "a round settled nothing (no pass, no stall); the working MSS is at least 536"
    assert rounds(tried) == 1


def test_the_budget_stops_new_rounds_and_says_how_far_it_got(monkeypatch, clock):
    """Each handshake takes 10 s on the clock; with a 25 s budget the first round (14 handshakes)
    already spent it: no second round starts."""
    result, tried = run_sweep(monkeypatch, clock, black_hole(1240), trial_s=10.0, budget=25.0)
    best = result["working_mss"]
    assert result["incomplete"] == f"time budget of 25s ran out; the working MSS is at least {best}"
    assert rounds(tried) == 0 and best < 1240


@pytest.mark.parametrize(("budget", "trial_s", "most_rounds"), [(90.0, 0.1, 5), (1.5, 0.1, 1)])
def test_a_budget_between_rounds_allows_only_the_rounds_that_start_before_it(monkeypatch, clock, budget, trial_s, most_rounds):
    """The first round (14 handshakes x 0.1 s) ends at 1.4 s: a 1.5 s budget lets one more round start, no third."""
    result, tried = run_sweep(monkeypatch, clock, black_hole(1240), trial_s=trial_s, budget=budget)
    assert rounds(tried) <= most_rounds
    assert ("incomplete" in result) is (most_rounds == 1)


# ---------------------------------------------------------------- the per-attempt deadline


class DripSocket:
    """A connected socket whose peer sends `response` at once, then `then` every `gap_s` (fake
    clock), forever; it raises socket.timeout when the timeout the agent set is shorter than the
    wait for the next piece."""

    def __init__(self, clock: FakeClock, response: bytes, gap_s: float, then: bytes = b"x"):
        self.clock, self.response, self.gap_s, self.then = clock, response, gap_s, then
        self.timeout: float | None = None
        self.recvs = 0
        self.closed = False

    def settimeout(self, value: float | None) -> None:
        self.timeout = value

    def sendall(self, data: bytes) -> None:
        pass

    def recv(self, size: int) -> bytes:
        self.recvs += 1
        if self.recvs > 10000:
            raise AssertionError("the attempt kept reading: its deadline does not bound it")
        if self.timeout is not None and self.timeout < self.gap_s:
            self.clock.advance(self.timeout)
            raise TimeoutError("timed out")
        self.clock.advance(self.gap_s)
        piece, self.response = (self.response, b"") if self.response else (self.then, b"")
        return piece

    def close(self) -> None:
        self.closed = True

    def getsockopt(self, *args: Any) -> bytes:
        raise OSError("no TCP_INFO on a fake socket")


def drip(monkeypatch, clock: FakeClock, response: bytes, gap_s: float, then: bytes = b"x") -> DripSocket:
    sock = DripSocket(clock, response, gap_s, then)
    monkeypatch.setattr(agent, "resolve", lambda host, port, opts, phases, deadline: (socket.AF_INET, "203.0.113.9"))

    def connect(family: int, ip: str, port: int, opts: Any, phases: dict, deadline: Any) -> DripSocket:
        phases["connect"] = 1.0
        return sock

    monkeypatch.setattr(agent, "connect", connect)
    return sock


@pytest.mark.parametrize("stage", ["status_line", "headers", "body"])
def test_a_peer_that_drips_bytes_cannot_hold_an_attempt_past_its_deadline(monkeypatch, clock, stage):
    """One byte every 0.4 s, forever: every recv alone is within the 5 s timeout, the attempt is not."""
    # the status line itself never ends; the headers never end; the body never completes
    head = {"status_line": b"HTTP/1.1 200", "headers": b"HTTP/1.1 200 OK\r\nX-A: ", "body": b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"}[stage]
    sock = drip(monkeypatch, clock, head, 0.4)
    started = clock.monotonic()
    with pytest.raises(agent.ProbeFailure) as failed:
        agent.exchange("http://drip.example/v2/", agent.Options(timeout=5.0))
    assert failed.value.cls == "read_timeout" and "within the 5.0s deadline" in str(failed.value)
    assert 5.0 <= clock.monotonic() - started <= 5.0 + 0.4
    assert sock.closed


def test_each_read_gets_only_what_is_left_of_the_attempt(monkeypatch, clock):
    sock = drip(monkeypatch, clock, b"HTTP/1.1 200 OK\r\n", 0.4, then=b"")
    timeouts: list[float] = []
    original = sock.settimeout
    sock.settimeout = lambda value: (timeouts.append(value), original(value))[1]  # type: ignore[method-assign]
    with pytest.raises(agent.ProbeFailure):
        agent.exchange("http://drip.example/v2/", agent.Options(timeout=5.0))
    assert timeouts[0] == pytest.approx(5.0) and all(b < a for a, b in zip(timeouts[1:], timeouts[2:], strict=False))


def test_a_blob_gets_more_time_for_its_declared_size_and_no_more(monkeypatch, clock):
    """A declared 1 MiB blob gets 8 s more (BLOB_RATE 128 KiB/s); dripped, it still ends at 5 + 8 s.
    (The extension starts with the body; the 0.4 s its head took is within the 5 s.)"""
    size = 1024 * 1024
    drip(monkeypatch, clock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size, 0.4)
    started = clock.monotonic()
    with pytest.raises(agent.ProbeFailure) as failed:
        agent.exchange("http://drip.example/v2/x/blobs/sha256:" + "a" * 64, agent.Options(timeout=5.0), sink=lambda _: None, declared=size)
    extra = size / float(agent.BLOB_RATE)
    assert failed.value.cls == "read_timeout" and 5.0 + extra <= clock.monotonic() - started <= 5.0 + extra + 0.4


def test_a_huge_declared_blob_cannot_stretch_an_attempt_past_the_cap(monkeypatch, clock):
    """A registry that declares a petabyte gets BLOB_STRETCH x the timeout more, not 250 years."""
    size = 10 ** 15
    drip(monkeypatch, clock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size, 1.0, then=b"x" * 65536)
    started = clock.monotonic()
    with pytest.raises(agent.ProbeFailure) as failed:
        agent.exchange("http://drip.example/v2/x/blobs/sha256:" + "a" * 64, agent.Options(timeout=5.0), sink=lambda _: None, declared=size)
    cap = 5.0 * (1 + agent.BLOB_STRETCH)
    assert failed.value.cls == "read_timeout" and cap <= clock.monotonic() - started <= cap + 1.0
