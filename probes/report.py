"""The report of a diagnosis, as the lab and the post-up gate write it beside the evidence:
REPORT.md, report.html (the same text with the four charts inline, self-contained) and each chart
as an SVG file that REPORT.md links (`Report.files`).

Pure: diagnoses and charts in, text out. Sections: the result, the diagnosis (the judge's text,
grouped failures included), what fixes it, the charts, each mss-sweep beside tracepath, the fix as
applied and its verify output (when given), and the probes per host and target, before and after
the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from probes.charts import Chart
from probes.summary import Row
from probes.svg import text_of
from probes.verdict import Diagnosis

MARKDOWN, HTML = "REPORT.md", "report.html"


@dataclass(frozen=True)
class AppliedFix:
    script: str
    verify: str  # the verify script's output
    verified: bool  # verify exited 0


def render(title: str, before: Diagnosis, *, intro: str = "", result: str | None = None, fix: AppliedFix | None = None,
           after: Diagnosis | None = None, timings: Mapping[str, float] | None = None, files: str | None = None,
           charts: Sequence[Chart] = ()) -> str:
    out = [f"# {title}", ""] + ([intro, ""] if intro else [])
    out += [f"**{result or before.verdict.upper()}**", "", "## Diagnosis", "", "```text", before.text(), "```", ""]
    out += ["## What fixes it", "", before.fix, ""]
    if charts:
        out += ["## Charts", "", f"The same charts in one page, with this report: [{HTML}]({HTML}).", ""]
        out += [line for chart in charts for line in (f"![{chart.title}]({chart.file})", "")]
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


@dataclass(frozen=True)
class Report:
    """What a report folder holds besides the evidence."""

    markdown: str
    html: str
    charts: tuple[Chart, ...]

    @classmethod
    def of(cls, markdown: str, title: str, result: str, charts: Sequence[Chart]) -> Report:
        return cls(markdown, page(title, result, charts, markdown), tuple(charts))

    def files(self) -> dict[str, str]:
        """File name -> text: REPORT.md, report.html and chart-<name>.svg for each chart."""
        return {MARKDOWN: self.markdown, HTML: self.html, **{chart.file: chart.svg for chart in self.charts}}


# No script and nothing fetched: the policy makes a browser refuse any load the page would try.
_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """body { font-family: DejaVu Sans, Verdana, Arial, sans-serif; margin: 24px auto; max-width: 860px; color: #212121; }
.result { font-size: 18px; font-weight: bold; padding: 8px 12px; border-left: 6px solid #757575; background: #f5f5f5; }
.result.pass { border-color: #2e7d32; } .result.fail { border-color: #c62828; } .result.warn { border-color: #ef6c00; }
figure.chart { margin: 24px 0; } figure.chart figcaption { font-weight: bold; margin-bottom: 6px; }
figure.chart svg { display: block; max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
pre { white-space: pre-wrap; font-size: 12px; background: #fafafa; padding: 12px; border: 1px solid #e0e0e0; }"""


def page(title: str, result: str, charts: Sequence[Chart], markdown: str) -> str:
    """report.html: the result, the charts inline, then the report's text. Self-contained: styles
    inline, SVG inline, no script, nothing to fetch; every piece of text escaped."""
    tone = next((word for word in ("pass", "fail", "warn") if result.lower().startswith(word)), "")
    figures = [f'<figure class="chart" id="{chart.slug}"><figcaption>{text_of(chart.title)}</figcaption>{chart.svg}</figure>'
               for chart in charts]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">', f"<title>{text_of(title)}</title>",
        f"<style>\n{_STYLE}\n</style>", "</head>", "<body>", f"<h1>{text_of(title)}</h1>",
        f'<p class="result {tone}">{text_of(result)}</p>', *figures,
        f"<h2>The report ({MARKDOWN})</h2>", f"<pre>{text_of(markdown)}</pre>", "</body>", "</html>", ""])
