"""The post-up gate's judgement of its probe runs: the one judge (`probes.verdict.diagnose`) on the
runs' documents, with the gate's criteria, plus what only the gate knows: what did not run within
the budget, and whether the clamp the gateway applies still matches what the nodes measure.
Pure: the NetworkGate provider and the lab's gate step call it alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.charts import charts
from probes.criteria import Criteria
from probes.evidence import CLAMP_COMMAND
from probes.report import Report, render
from probes.verdict import Diagnosis, diagnose

RUN_SCHEMA = "netstab.gate-run/v1"  # what a vantage point's probe run prints: its documents and notes


@dataclass(frozen=True)
class GateJudgement:
    diagnosis: Diagnosis
    verdict: str
    text: str
    markdown: str
    files: Mapping[str, str]  # what the report folder holds besides the evidence: REPORT.md, report.html, the charts

    def outputs(self) -> dict[str, Any]:
        d = self.diagnosis
        return {"verdict": self.verdict, "kind": d.kind, "summary": d.summary, "text": self.text, "mss_fix_applies": d.mss_fix_applies,
                "recommended_clamp": d.recommended_clamp, "table": d.to_dict()["table"]}


# How this stack's gateway takes a clamp, by where its MSS comes from (`mss_source` in the gate's spec).
CLAMP_TEMPLATES = {
    "mss": CLAMP_COMMAND,
    "path_mtu": "pulumi config set --path netstab:gateway.pathMtu {path_mtu}",
    "auto": "re-measure it: pulumi config set --path netstab:gateway.remeasure {epoch}",
    "pmtu": f"set it instead of pmtu mode: pulumi config rm --path netstab:gateway.pmtu && {CLAMP_COMMAND}",
    "manual": "enter MSS {mss} on the gateway (gateway/MANUAL.md)",
}


def clamp_template(spec: Mapping[str, Any]) -> str:
    template = CLAMP_TEMPLATES.get(str(spec.get("mss_source")), CLAMP_TEMPLATES["mss"])
    return template.replace("{epoch}", str(int(spec.get("remeasure") or 0) + 1))


def drift(d: Diagnosis, spec: Mapping[str, Any]) -> str | None:
    """When the nodes measure another clamp than the gateway applies: the path changed since it was set."""
    mss, measured = spec.get("gateway_mss"), d.recommended_clamp
    applied = int(mss) if mss is not None else None  # the engine's Struct hands numbers over as floats
    if applied is None or measured is None or applied == measured:
        return None
    return f"the gateway clamps to MSS {applied}, the nodes now measure {measured}: the path changed since the clamp was set"


def judge_runs(evidence: Mapping[str, Sequence[Mapping[str, Any]]], spec: Mapping[str, Any], notes: Sequence[str]) -> GateJudgement:
    """`evidence`: vantage point -> its documents; `spec`: criteria, reference hosts, the applied clamp."""
    d = diagnose(evidence, reference=tuple(spec.get("reference") or ()), criteria=Criteria.from_dict(spec.get("criteria") or {}),
                 notes=notes, clamp_template=clamp_template(spec))
    verdict = d.verdict
    extra = [line for line in (drift(d, spec),) if line]
    stack = spec.get("stack", "?")
    text = "\n".join([f"netstab network gate (stack {stack}): {d.text()}", *extra])
    intro = "\n\n".join([f"Probes from {', '.join(sorted(evidence))} after `pulumi up`, judged against the stack's criteria "
                          "(`validation.criteria`).", *extra])
    title, drawn = f"netstab network gate: stack {stack}", charts(evidence)
    markdown = render(title, d, intro=intro, result=verdict.upper(), charts=drawn,
                      files="`<vantage point>.json` beside this file: each vantage point's `netstab.probe/v1` documents.")
    return GateJudgement(d, verdict, text, markdown, Report.of(markdown, title, verdict.upper(), drawn).files())
