"""The gate's judgement of its probe runs (pure): the one judge, the fix said the way the stack
takes it, the drift between the applied clamp and the measured one; docs/gate.md's example is its output."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.config import CriteriaConfig
from probes.gate import judge_runs

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = json.loads((ROOT / "tests" / "probes" / "fixtures" / "blackhole.json").read_text())


def evidence(which: str = "evidence") -> dict:
    return {("proxmox" if host == "pve" else host): docs for host, docs in FIXTURE[which].items()}


def spec(**changes) -> dict:
    base = {"mode": "enforce", "criteria": CriteriaConfig().judge_criteria(), "reference": ["proxmox"], "gateway_mss": 1360,
            "mss_source": "auto", "remeasure": 0, "stack": "homelab"}
    return {**base, **changes}


@pytest.mark.parametrize("source,remeasure,command", [
    ("auto", 2, "re-measure it: pulumi config set --path netstab:gateway.remeasure 3"),
    ("path_mtu", 0, "pulumi config set --path netstab:gateway.pathMtu 1280"),
    ("mss", 0, "pulumi config set --path netstab:gateway.mss 1240"),
    ("manual", 0, "enter MSS 1240 on the gateway (gateway/MANUAL.md)"),
])
def test_the_fix_is_said_the_way_this_stack_takes_a_clamp(source, remeasure, command):
    judged = judge_runs(evidence(), spec(mss_source=source, remeasure=remeasure), [])
    assert judged.verdict == "fail"
    assert f"fix: clamp the VM subnet's TCP MSS at the gateway to 1240: {command}, then pulumi up" in judged.text
    assert judged.diagnosis.clamp_command == command


def test_the_drift_from_the_applied_clamp_is_named_only_when_there_is_one():
    drifted = judge_runs(evidence(), spec(gateway_mss=1360), []).text
    assert drifted.endswith("the gateway clamps to MSS 1360, the nodes now measure 1240: the path changed since the clamp was set")
    assert "the path changed" not in judge_runs(evidence(), spec(gateway_mss=1240), []).text


def test_what_did_not_run_makes_a_healthy_path_a_warning_and_is_named():
    judged = judge_runs(evidence("after"), spec(), ["cp1: mss-sweep: not run, the 120s budget was spent"])
    assert (judged.verdict, judged.diagnosis.kind) == ("warn", "healthy")
    assert "cp1: mss-sweep: not run, the 120s budget was spent" in judged.text
    assert judge_runs(evidence("after"), spec(), []).verdict == "pass"


def test_the_markdown_report_is_the_labs_with_the_gates_title():
    judged = judge_runs(evidence(), spec(), [])
    assert judged.markdown.startswith("# netstab network gate: stack homelab\n")
    assert "**FAIL**" in judged.markdown and "## mss-sweep from cp1 to ghcr.io:443, beside tracepath" in judged.markdown


def test_docs_gate_shows_what_the_gate_says_about_the_labs_black_hole():
    example = re.search(r"## An example: a failing gate\n.*?```text\n(.*?)\n```", (ROOT / "docs" / "gate.md").read_text(), re.S)
    assert example and example.group(1) == judge_runs(evidence(), spec(), []).text
