"""The lab report: markdown with a before/after table per host and target, beside the JSON evidence."""

from __future__ import annotations

from typing import Any

from probes.verdict import Diagnosis


def _cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "-"
    errors = ", ".join(f"{c} x{n}" for c, n in sorted(summary["errors"].items()))
    total = summary["phases_ms"].get("total", {}).get("p50")
    timing = f", p50 {total:.0f} ms" if total is not None else ""
    return f"{summary['ok']}/{summary['attempts']} ok{timing}" + (f" ({errors})" if errors else "")


def table(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]] | None) -> list[str]:
    lines = ["| host | target | before | after |", "| --- | --- | --- | --- |"] if after else ["| host | target | result |", "| --- | --- | --- |"]
    for host, doc in before.items():
        after_by_target = {s["target"]: s for s in (after or {}).get(host, {}).get("summary", [])}
        for summary in doc["summary"]:
            row = f"| {host} | {summary['target']} | {_cell(summary)} |"
            lines.append(row + (f" {_cell(after_by_target.get(summary['target']))} |" if after else ""))
    return lines


def render(scenario: str, description: str, diagnosis: Diagnosis, expected: str, before: dict[str, dict[str, Any]],
           after: dict[str, dict[str, Any]] | None, sweep: dict[str, Any] | None, fix: dict[str, str] | None,
           passed: bool, timings: dict[str, float]) -> str:
    out = [f"# netstab lab: {scenario}", "", description, "",
           f"**Result: {'PASS' if passed else 'FAIL'}** (expected diagnosis `{expected}`, got `{diagnosis.kind}`)", "", "## Diagnosis", "", "```"]
    out += diagnosis.lines() + ["```", ""]
    if sweep:
        out += ["## mss-sweep from cp1", "",
                f"- default MSS works: {sweep['default_mss_works']}; working MSS: {sweep['working_mss']}; path MTU: {sweep['path_mtu']}; "
                f"verdict: {sweep['verdict']}; recommended clamp: {sweep['recommended_clamp']}",
                f"- {sweep['explanation']}", "", "tracepath, for comparison (it relies on the ICMP the black hole drops):", "", "```",
                (sweep.get("tracepath") or "(tracepath not available)"), "```", ""]
    if fix:
        out += ["## The fix, applied in the gateway namespace", "", "```sh", fix["script"].strip(), "```", "", "verify:", "", "```", fix["verify"].strip(), "```", ""]
    out += ["## Probes" + (" before and after the fix" if after else ""), ""] + table(before, after) + [""]
    out += ["## Timings", ""] + [f"- {name}: {seconds:.1f} s" for name, seconds in timings.items()] + [""]
    out += ["## Evidence", "", "`netstab.probe/v1` JSON documents beside this file: `before-<host>.json`"
            + (", `after-<host>.json`" if after else "") + (", `mss-sweep.json`" if sweep else "") + ".", ""]
    return "\n".join(out)
