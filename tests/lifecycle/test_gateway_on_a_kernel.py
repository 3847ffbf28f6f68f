"""The gateway scripts of the first and second `pulumi up`, in the order the model plans them, run
on a real kernel in a namespace standing for the gateway; then the new rules' verify.

With today's wiring the rules survive a change; with the wiring before 014bd80 (triggers on the
rules' hash, create-before-delete) the old remove runs last and takes them away, while the verify
that ran during the up was green.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.netns import Topology
from tests.lifecycle.engine import plan
from tests.lifecycle.scenarios import SecondUp, run_plans, second_up
from tests.lifecycle.test_second_up import old_gateway_wiring
from tests.lifecycle.world import script_of
from tests.program.harness import Recording
from tests.real.conftest import require_root

GATEWAY = ("gateway-rules", "gateway-verify")


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[tuple[Topology, Path]]:
    require_root()
    with Topology("nstlc-") as topo:
        topo.add_host("gw")
        yield topo, tmp_path  # NETSTAB_ROOT: the boot files go under tmp, the namespace shares /etc


def gateway_steps(second: SecondUp) -> list[tuple[str, str]]:
    """("<op> <resource>", script) for every gateway script the first up and then the second up run, in order."""
    ups = (plan(Recording(), second.old, "up"), second.up)
    return [(f"{s.op} {s.name}", script_of(s.script)) for p in ups for s in p.steps if s.name in GATEWAY and s.script is not None]


FIRST_UP = ["create gateway-rules", "create gateway-verify"]
PLANNED = {
    "gateway-rules": [*FIRST_UP, "update gateway-rules", "create gateway-verify"],
    "gateway-flavor": [*FIRST_UP, "delete gateway-rules", "create gateway-rules", "create gateway-verify"],
}


def run_on(gw: tuple[Topology, Path], script: str) -> int:
    topo, root = gw
    return topo.run("gw", "env", f"NETSTAB_ROOT={root}", "sh", "-c", script, check=False).returncode


def final_verify(second: SecondUp) -> str:
    return script_of(second.new.named("gateway-verify").inputs["create"])


@pytest.mark.parametrize("change", ["gateway-rules", "gateway-flavor"])
def test_a_rule_or_flavor_change_leaves_the_new_rules_applied(gw, change):
    second = second_up(change)
    steps = gateway_steps(second)
    assert [step for step, _ in steps] == PLANNED[change]
    for step, script in steps:
        assert run_on(gw, script) == 0, step
    assert run_on(gw, final_verify(second)) == 0, "the new rules are not in place after the up"


def test_the_old_wiring_runs_a_green_verify_and_then_removes_the_rules(gw):
    second = second_up("gateway-rules")
    old_way = run_plans(old_gateway_wiring(second.old), old_gateway_wiring(second.new))
    steps = gateway_steps(old_way)
    assert [step for step, _ in steps] == [*FIRST_UP, "create gateway-rules", "create gateway-verify", "delete gateway-rules"]
    for step, script in steps:
        assert run_on(gw, script) == 0, f"{step} failed: the up would have stopped there"
    assert run_on(gw, final_verify(second)) == 1, "the old remove left the new rules in place"
