"""The intermittent lab scenario's judging parts, without namespaces: the alert test it builds from
exported metrics fires under promtool, and its history checks pass the truth and fail a wrong one."""

from __future__ import annotations

import re

import yaml

from lab import intermittent
from probes import agent
from probes.history import judge_history, run_of
from tests import promtool
from tests.monitoring.test_history import T0, at, cycle

STEP = intermittent.INTERVAL_S


def snapshots_of(hole_cycles: tuple[int, ...]) -> list[dict[str, str]]:
    """The metrics files a host's cycles leave, tick by tick, as the cycle runner writes them."""
    out = []
    states = {h: agent.new_state() for h in ("cp1", "worker1", "pve")}
    for n in range(7):
        texts = {}
        for host, state in states.items():
            docs = cycle(host, n * STEP / 60, hole=host != "pve" and n in hole_cycles)
            plan = agent.plan_of(docs)
            agent.account(state, docs, plan)
            role = "reference" if host == "pve" else "node"
            texts[host] = agent.exposition([agent.HostView(host, role, state, plan, T0 + n * STEP, 5.0, STEP)])
        out.append(texts)
    return out


def test_the_alert_test_built_from_exported_series_fires_for_the_vm_nodes(tmp_path):
    test = intermittent.alert_test(snapshots_of((1, 2)), intermittent.Path(intermittent.__file__).resolve().parents[1] / "monitoring" / "rules.yaml")
    assert [c["eval_time"] for c in test["tests"][0]["alert_rule_test"]] == [f"{STEP}s", f"{4 * STEP}s"]
    path = tmp_path / "alert-test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    done = promtool.run("test", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_test_fails_when_the_series_show_no_black_hole_for_a_node(tmp_path):
    """Counterfactual: worker1's series without its sweeps: the expected alert for it is missing, promtool fails."""
    snapshots = snapshots_of((1, 2))
    for texts in snapshots:
        texts["worker1"] = re.sub(r'(verdict="black-hole"\}) \d+', r"\1 0", texts["worker1"])
    test = intermittent.alert_test(snapshots, intermittent.Path(intermittent.__file__).resolve().parents[1] / "monitoring" / "rules.yaml")
    path = tmp_path / "alert-test.yaml"
    path.write_text(yaml.safe_dump(test, sort_keys=False, width=1000))
    done = promtool.run("test", "rules", str(path))
    assert done.returncode == 1 and "worker1" in done.stdout + done.stderr


def test_the_history_check_accepts_the_truth_within_one_interval_and_refuses_a_shifted_one():
    """12 runs 35 s apart; the hole on for runs 2-4, Doppler loss for runs 7-8, each switched just before its first run."""
    def minute(n: int) -> float:
        return n * STEP / 60

    h = judge_history([run_of(h, cycle(h, minute(n), hole=h != "pve" and 2 <= n <= 4, doppler_ok=not 7 <= n <= 8))
                       for h in ("cp1", "worker1", "pve") for n in range(12)], ["pve"])
    truth = [intermittent.Window("black hole", T0 + 2 * STEP - 1, T0 + 5 * STEP - 1),
             intermittent.Window("Doppler loss", T0 + 7 * STEP - 1, T0 + 9 * STEP - 1)]
    assert intermittent.check_history(h, truth) == []
    late = [intermittent.Window("black hole", T0 + 4 * STEP, T0 + 5 * STEP - 1), truth[1]]
    assert any("off the truth" in p for p in intermittent.check_history(h, late))
    assert at(0).startswith("2026-12-06T00:00")
