"""ClusterGate reads a restarting API again within a bound; errors that do not heal are not retried."""

from __future__ import annotations

import pytest

from components.clustergate import ClusterState, read_when_up
from components.kubeapi import ApiUnreachable, GateError

STATE = ClusterState(sources={}, helm_releases=None, pods=[], events=[])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def flaky(failures: int, error: type[GateError] = ApiUnreachable):
    calls = []

    def read() -> ClusterState:
        calls.append(1)
        if len(calls) <= failures:
            raise error("netstab cluster gate: cannot reach the Kubernetes API at https://10.27.27.11:6443: Connection refused")
        return STATE
    return read, calls


@pytest.mark.parametrize("failures,wait_s,reads", [(0, 30, 1), (3, 30, 4), (6, 30, 7)])
def test_an_unreachable_api_is_read_again_until_it_answers_within_the_bound(failures, wait_s, reads):
    clock = Clock()
    read, calls = flaky(failures)
    assert read_when_up(read, wait_s, clock, clock.sleep) is STATE and len(calls) == reads


def test_past_the_bound_the_error_says_how_long_it_retried():
    clock = Clock()
    read, calls = flaky(100)
    with pytest.raises(ApiUnreachable, match=r"Connection refused \(retried for 30s\)"):
        read_when_up(read, 30, clock, clock.sleep)
    assert 30 <= clock.now <= 30 and len(calls) == 7  # 0, 5, ..., 30: the bound holds from both sides


def test_an_error_that_does_not_heal_is_not_retried():
    clock = Clock()
    read, calls = flaky(1, GateError)
    with pytest.raises(GateError):
        read_when_up(read, 30, clock, clock.sleep)
    assert len(calls) == 1 and clock.now == 0
