"""The post-up gate's judgement of its probe runs: the one judge (`probes.verdict.diagnose`) on the
runs' documents, with the gate's criteria, plus what only the gate knows: what did not run within
the budget, and whether the clamp the gateway applies still matches what the nodes measure.
Pure: the NetworkGate provider and the lab's gate step call it alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.criteria import Criteria
from probes.report import render
from probes.verdict import Diagnosis, diagnose

IPV4_OVERHEAD = 40  # IPv4 + TCP headers: the clamp for a path MTU
RUN_SCHEMA = "netstab.gate-run/v1"  # what a vantage point's probe run prints: its documents and notes
REMEASURE = "pulumi config set netstab:gateway.remeasure {epoch}"


@dataclass(frozen=True)
class GateJudgement:
    diagnosis: Diagnosis
    verdict: str
    text: str
    markdown: str

    def outputs(self) -> dict[str, Any]:
        d = self.diagnosis
        return {"verdict": self.verdict, "kind": d.kind, "summary": d.summary, "text": self.text, "mss_fix_applies": d.mss_fix_applies,
                "recommended_clamp": d.recommended_clamp, "table": d.to_dict()["table"]}


SET_COMMAND = {  # how this stack's gateway takes a clamp, by where its MSS comes from (gateway.*)
    "mss": "pulumi config set --path netstab:gateway.mss {mss}",
    "path_mtu": "pulumi config set --path netstab:gateway.pathMtu {path_mtu}",
}


def clamp_advice(d: Diagnosis, spec: Mapping[str, Any]) -> str | None:
    """The clamp the nodes measure, said for this stack: how its gateway takes it, and whether the
    clamp it applies already differs (the path changed since it was set or measured)."""
    measured = d.recommended_clamp
    if measured is None:
        return None
    path_mtu = spec.get("gateway_path_mtu")
    applied = int(path_mtu) - IPV4_OVERHEAD if path_mtu else None
    source = spec.get("mss_source")
    if source == "auto":
        how = "re-measure: " + REMEASURE.format(epoch=int(spec.get("remeasure") or 0) + 1)
    elif source in SET_COMMAND:
        how = SET_COMMAND[source].format(mss=measured, path_mtu=measured + IPV4_OVERHEAD)
    else:
        how = "enter it on the gateway (gateway/MANUAL.md), or let netstab manage a Linux gateway"
    if applied is not None and applied != measured:
        return f"for this stack: the gateway clamps to MSS {applied} but the nodes now measure {measured}: the path changed; {how}, then pulumi up"
    return f"for this stack: clamp to {measured}: {how}, then pulumi up"


def judge_runs(evidence: Mapping[str, Sequence[Mapping[str, Any]]], spec: Mapping[str, Any], notes: Sequence[str]) -> GateJudgement:
    """`evidence`: vantage point -> its documents; `spec`: criteria, reference hosts, the applied clamp."""
    d = diagnose(evidence, reference=tuple(spec.get("reference") or ()), criteria=Criteria.from_dict(spec.get("criteria") or {}),
                 notes=notes)
    verdict = d.verdict
    extra = [line for line in (clamp_advice(d, spec),) if line]
    stack = spec.get("stack", "?")
    text = "\n".join([f"netstab network gate (stack {stack}): {d.text()}", *extra])
    intro = "\n\n".join([f"Probes from {', '.join(sorted(evidence))} after `pulumi up`, judged against the stack's criteria "
                          "(`validation.criteria`).", *extra])
    markdown = render(f"netstab network gate: stack {stack}", d, intro=intro, result=verdict.upper(),
                      files="`<vantage point>.json` beside this file: each vantage point's `netstab.probe/v1` documents.")
    return GateJudgement(d, verdict, text, markdown)
