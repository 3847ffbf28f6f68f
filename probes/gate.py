"""The post-up gate's judgement of its probe runs: placeholder until the judge lands."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RUN_SCHEMA = "netstab.gate-run/v1"  # what a vantage point's probe run prints: its documents and notes


@dataclass
class GateJudgement:
    verdict: str
    kind: str
    summary: str
    text: str
    markdown: str
    table: list[dict[str, Any]] = field(default_factory=list)
    recommended_clamp: int | None = None
    mss_fix_applies: bool = False

    def outputs(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "kind": self.kind, "summary": self.summary, "text": self.text, "table": self.table,
                "recommended_clamp": self.recommended_clamp, "mss_fix_applies": self.mss_fix_applies}


def judge_runs(evidence: Mapping[str, Sequence[Mapping[str, Any]]], spec: Mapping[str, Any], notes: Sequence[str]) -> GateJudgement:
    raise NotImplementedError("the judge is being rebuilt (issue 11)")
