"""The markdown report of a diagnosis, as the lab and the post-up gate write it beside the evidence.

Pure: diagnoses in, text out. Sections: the result, the diagnosis (the judge's text, grouped
failures included), what fixes it, each mss-sweep beside tracepath, the fix as applied and its
verify output (when given), and the probes per host and target, before and after the fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from probes.summary import Row
from probes.verdict import Diagnosis


@dataclass(frozen=True)
class AppliedFix:
    script: str
    verify: str  # the verify script's output
    verified: bool  # verify exited 0


def render(title: str, before: Diagnosis, *, intro: str = "", result: str | None = None, fix: AppliedFix | None = None,
           after: Diagnosis | None = None, timings: Mapping[str, float] | None = None, files: str | None = None) -> str:
    out = [f"# {title}", ""] + ([intro, ""] if intro else [])
    out += [f"**{result or before.verdict.upper()}**", "", "## Diagnosis", "", "```text", before.text(), "```", ""]
    out += ["## What fixes it", "", before.fix, ""]
    for sweep in before.sweeps:
        out += [f"## mss-sweep from {sweep.host} to {sweep.target}, beside tracepath", "",
                f"- verdict: {sweep.verdict}; working MSS: {sweep.working_mss}; path MTU: {sweep.path_mtu}; "
                f"recommended clamp: {sweep.recommended_clamp}" + (f"; direction: {sweep.direction}" if sweep.direction else ""),
                f"- {sweep.explanation}" + (f" ({sweep.note})" if sweep.note else ""), "",
                "tracepath learns the path MTU from the ICMP a black hole drops:", "", "```text",
                sweep.tracepath or "(no tracepath output: not installed, or not asked for)", "```", ""]
    if fix:
        out += ["## The fix, applied", "", "```sh", fix.script.strip(), "```", "",
                f"verify ({'passed' if fix.verified else 'FAILED'}):", "", "```text", fix.verify.strip() or "(no output)", "```", ""]
    if after:
        out += ["## After the fix", "", "```text", after.text(), "```", ""]
    out += ["## Probes per host and target" + (", before and after the fix" if after else ""), ""]
    out += probe_table(before.table, after.table if after else None) + [""]
    if timings:
        out += ["## Timings", ""] + [f"- {name}: {seconds:.1f} s" for name, seconds in timings.items()] + [""]
    if files:
        out += ["## Evidence", "", files, ""]
    return "\n".join(out)


def probe_table(before: tuple[Row, ...], after: tuple[Row, ...] | None = None) -> list[str]:
    """host x target: ok/attempts, failure classes, p50/p95 of TLS and total; after the fix beside."""
    head = ["| host | probe | target | before |" + (" after |" if after is not None else ""),
            "| --- | --- | --- | --- |" + (" --- |" if after is not None else "")]
    later = {(r.host, r.probe, r.target): r for r in after or ()}
    lines = []
    for row in before:
        line = f"| {row.host} | {row.probe} | {row.target} | {_cell(row)} |"
        if after is not None:
            line += f" {_cell(later.get((row.host, row.probe, row.target)))} |"
        lines.append(line)
    return head + lines


def _cell(row: Row | None) -> str:
    if row is None:
        return "-"
    parts = [f"{row.ok}/{row.attempts} ok"]
    parts += [f"{phase} p50/p95 {stats['p50']:.0f}/{stats['p95']:.0f} ms" for phase, stats in row.phases_ms.items() if phase in ("tls", "total")]
    parts += [f"{cls} x{n}" for cls, n in row.errors.items()]
    return "; ".join(parts)
