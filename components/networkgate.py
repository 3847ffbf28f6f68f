"""NetworkGate: the post-up network gate as a Pulumi dynamic resource.

Its inputs are the probe runs' outputs (one `netstab.gate-run/v1` object per vantage point, from
the probe-run commands that re-run with every gate run); it judges them with the one judge
(`probes.verdict`), writes the same report the lab writes (`probes.report`: REPORT.md, report.html
and the charts) and the evidence into `validation-report/` beside the program, and returns the verdict and the summary
table. With `mode: enforce` a failing verdict fails `pulumi up` with the grouped diagnosis as the
whole message; with `warn` the program logs it as a warning. The provider holds no secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult

from components.gate import GateProvider, digest, record_failure
from components.kubeapi import GateError
from probes.evidence import EvidenceError
from probes.gate import RUN_SCHEMA, judge_runs
from probes.report import HTML, MARKDOWN

WHO = "netstab network gate"


def parse_runs(runs: Mapping[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """vantage point -> its documents, and the notes of what did not run. A run that printed no
    result is a GateError naming the vantage point (the probe step itself could not work there)."""
    evidence: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = []
    for point, text in sorted(runs.items()):
        try:
            run = json.loads(text)
        except (TypeError, ValueError):
            raise GateError(f"{WHO}: the probe run on {point} printed no result ({str(text)[:120]!r}); "
                            "see that step's output in this update") from None
        if not isinstance(run, dict) or run.get("schema") != RUN_SCHEMA or not isinstance(run.get("documents"), list):
            raise GateError(f"{WHO}: the probe run on {point} printed something other than a {RUN_SCHEMA} result")
        evidence[point] = list(run["documents"])
        notes += [f"{point}: {note}" for note in run.get("notes") or []]
    return evidence, notes


def write_report(folder: Path, files: Mapping[str, str], evidence: Mapping[str, list[dict[str, Any]]]) -> Path:
    """validation-report/: REPORT.md, report.html and the charts' SVG files (`files`, from
    probes.report), and <vantage point>.json (the agent's evidence, redacted at the source)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.json"):
        stale.unlink()
    for point, documents in evidence.items():
        (folder / f"{point}.json").write_text(json.dumps(documents, indent=2))
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder / MARKDOWN


class NetworkGateProvider(GateProvider):
    id_prefix = "network-gate"
    reads = ("runs",)

    def fingerprint(self, props: dict[str, Any]) -> str:
        return digest(props.get("runs"), props.get("spec"), props.get("run_id"))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        spec = news.get("spec") or {}
        failures = []
        if spec.get("mode") not in ("enforce", "warn"):
            failures.append(CheckFailure("spec", f"mode {spec.get('mode')!r} is not enforce or warn"))
        if not spec.get("report_dir"):
            failures.append(CheckFailure("spec", "report_dir is missing"))
        return CheckResult(news, failures)

    def judge(self, props: dict[str, Any]) -> dict[str, Any]:
        try:
            outs = self._judge(props)
        except GateError:
            record_failure(props["spec"]["report_dir"])
            raise
        if outs["verdict"] == "fail":
            record_failure(props["spec"]["report_dir"])
        return outs

    def _judge(self, props: dict[str, Any]) -> dict[str, Any]:
        spec = props["spec"]
        evidence, notes = parse_runs(props.get("runs") or {})
        try:
            judged = judge_runs(evidence, spec, notes)
        except EvidenceError as exc:  # a document no agent of this version writes: say where, never a traceback
            raise GateError(f"{WHO}: the evidence is unreadable: {exc}") from None
        report = write_report(Path(spec["report_dir"]), judged.files, evidence)
        if judged.verdict == "fail" and spec["mode"] == "enforce":
            raise GateError(f"{judged.text}\n(report and evidence: {report}; with charts: {report.with_name(HTML)})")
        return {**judged.outputs(), "report": str(report), "notes": notes}


class NetworkGate(pulumi.dynamic.Resource):
    verdict: pulumi.Output[str]
    kind: pulumi.Output[str]
    summary: pulumi.Output[str]
    text: pulumi.Output[str]
    table: pulumi.Output[list[dict[str, Any]]]
    report: pulumi.Output[str]

    def __init__(self, name: str, runs: Mapping[str, pulumi.Input[str]], spec: dict[str, Any], run_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            NetworkGateProvider(), name,
            {"runs": dict(runs), "spec": spec, "run_id": run_id, "verdict": None, "kind": None, "summary": None, "text": None,
             "table": None, "recommended_clamp": None, "mss_fix_applies": None, "report": None, "notes": None, "fingerprint": None},
            opts,
        )
