"""monitoring/rules.yaml: generated, accepted by `promtool check rules`, and every alert run through
`promtool test rules` (tests/monitoring/rules_test.yaml): firing, not firing, just before `for:`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from components.__main__ import main as components_main
from components.render import alerts
from probes.criteria import Criteria
from tests import promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "rules.yaml"
OPERATOR = ROOT / "monitoring" / "prometheusrule.yaml"
UNIT = Path(__file__).with_name("rules_test.yaml")


def test_the_checked_in_files_are_the_render(capsys):
    """`make monitoring` regenerates them; this fails until it is run after a change."""
    assert components_main(["alerts"]) == 0
    assert RULES.read_text() == capsys.readouterr().out == alerts.rules_yaml()
    assert components_main(["alerts", "--prometheus-rule"]) == 0
    assert OPERATOR.read_text() == capsys.readouterr().out


def test_the_prometheus_rule_carries_the_same_group():
    rule = yaml.safe_load(OPERATOR.read_text())
    assert (rule["apiVersion"], rule["kind"], rule["metadata"]["name"]) == ("monitoring.coreos.com/v1", "PrometheusRule", "netstab-probes")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_promtool_checks_the_rules_with_lint_fatal():
    done = promtool.run("check", "rules", "--lint-fatal", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_promtool_unit_tests_pass():
    done = promtool.run("test", "rules", str(UNIT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _cases() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for group in yaml.safe_load(UNIT.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            out.setdefault(case["alertname"], []).append(case)
    return out


def _seconds(text: str) -> int:
    return round(alerts.minutes(text) * 60)


@pytest.mark.parametrize("alert", alerts.alerts(), ids=lambda a: a.name)
def test_every_alert_is_tested_firing_not_firing_and_just_before_for(alert):
    cases = _cases()[alert.name]
    firing = [c for c in cases if c["exp_alerts"]]
    assert firing and any(not c["exp_alerts"] for c in cases)
    for case in firing:
        for exp in case["exp_alerts"]:
            assert exp["exp_labels"]["severity"] == alert.severity
            assert set(exp["exp_annotations"]) == {"summary", "description"}
    first = min(_seconds(c["eval_time"]) for c in firing)
    assert any(_seconds(c["eval_time"]) == first - 60 and not c["exp_alerts"] for c in cases), "no case one evaluation before it fires"


@pytest.mark.parametrize("alert", alerts.alerts(), ids=lambda a: a.name)
def test_exp_labels_list_every_label_the_alert_carries(alert):
    """The labels `by`/`on` keep, the series' own for an unaggregated expression, and the rule's."""
    kept = re.findall(r"^\w+ by \(([^)]*)\)", alert.expr)
    for case in _cases()[alert.name]:
        for exp in case["exp_alerts"]:
            labels = set(exp["exp_labels"]) - {"severity"}
            if kept:
                assert labels == {name.strip() for name in kept[0].split(",")}
            else:
                assert {"host", "role"} <= labels


def test_the_annotations_speak_the_durations_the_rules_use():
    for alert in alerts.alerts():
        for words in re.findall(r"for (\d+) minutes? now", alert.description):
            assert int(words) == alerts.minutes(alert.for_), alert.name


def test_thresholds_come_from_the_criteria():
    loose = {a.name: a for a in alerts.alerts(Criteria(max_doppler_failure_minutes=20, min_pull_success=0.9))}
    assert "> 1200" in loose["NetstabDopplerFailing"].expr and "20 minutes" in loose["NetstabDopplerFailing"].summary
    assert loose["NetstabPullsFailing"].expr.endswith("> 0.1")


@pytest.mark.parametrize("criteria,alert", [
    (Criteria(max_doppler_failure_minutes=11), "NetstabDopplerFailing"),  # one minute more tolerance: the 12m case no longer fires
    (Criteria(max_doppler_failure_minutes=9), "NetstabDopplerFailing"),   # one minute less: the 11m case already fires
    (Criteria(min_pull_success=0.93), "NetstabPullsFailing"),             # cp1's 6% then passes
    (Criteria(min_pull_success=0.97), "NetstabPullsFailing"),             # worker1's 4% then fires too
])
def test_the_unit_tests_pin_the_thresholds_from_both_sides(tmp_path, criteria, alert):
    """Counterfactual: the same unit tests against rules with a threshold moved either way fail."""
    (tmp_path / "monitoring").mkdir()
    (tmp_path / "monitoring" / "rules.yaml").write_text(alerts.rules_yaml(criteria))
    (tmp_path / "tests" / "monitoring").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "tests" / "monitoring" / "rules_test.yaml")
    done = promtool.run("test", "rules", str(tmp_path / "tests" / "monitoring" / "rules_test.yaml"))
    assert done.returncode == 1, done.stdout
    assert f"alertname: {alert}" in done.stdout + done.stderr


def test_staleness_never_uses_absent():
    assert "absent(" not in RULES.read_text()
    stale = next(a for a in alerts.alerts() if a.name == "NetstabProbeStale")
    assert "time() - netstab_probe_last_run_timestamp_seconds" in stale.expr
