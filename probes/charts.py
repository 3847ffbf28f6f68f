"""The report's four charts, from `netstab.probe/v1` evidence to SVG text. Pure: no I/O.

- the mss-sweep as a pass/fail strip by MSS, with the cliff and the clamp marked (every trial);
- per-phase latency (dns, connect, tls, ttfb: p50 of the successful attempts) as stacked bars per
  host x target, before and after the fix side by side when there is an after;
- pulls by image x node as a grid (ok, or the failure classes);
- TLS handshake and Doppler failures over time (each host's attempts in the order they started),
  so a burst shows as a run.

Every chart is drawn even without data for it (it then says why it is empty), so a report always
has the same four. Shapes carry `data-*` attributes with the numbers they show (tests read them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from probes import svg
from probes.evidence import Attempt, Evidence, collect
from probes.plan import DOPPLER_HOST
from probes.summary import Row, table

WIDTH = 820
OK, STALL, FAILED, NEUTRAL, INK, RULE = "#2e7d32", "#c62828", "#ef6c00", "#bdbdbd", "#212121", "#757575"
PHASES = {"dns": "#4e79a7", "connect": "#f28e2b", "tls": "#59a14f", "ttfb": "#b07aa1"}  # stacked left to right
HANDSHAKE_FAILURES = frozenset({"tls_handshake_timeout", "tls_error", "tls_certificate"})
MIN_MSS = 536  # the agent's smallest trial (probes/agent.py MIN_MSS)
BAR_H = 11


@dataclass(frozen=True)
class Chart:
    slug: str  # file name stem: chart-<slug>.svg
    title: str
    svg: str

    @property
    def file(self) -> str:
        return f"chart-{self.slug}.svg"


def charts(before: Evidence, after: Evidence | None = None, clamp: int | None = None) -> tuple[Chart, ...]:
    """The four charts of a report. `after`: the evidence after the fix (the lab); `clamp`: the
    clamp applied, when it is not the sweep's own recommendation (the gateway's measurement)."""
    ev = collect(before)
    later = collect(after) if after is not None else None
    return (mss_strip(_sweeps(before), clamp), phase_bars(table(ev), table(later) if later else None),
            pull_grid(ev.attempts, ev.hosts), failure_timeline(ev.attempts, ev.hosts))


def _empty(slug: str, title: str, why: str) -> Chart:
    return Chart(slug, title, svg.document(WIDTH, 60, title, [svg.text(16, 34, why, fill=RULE)], data_chart=slug, data_empty="true"))


# ---------------------------------------------------------------- 1. the mss-sweep strip


def _sweeps(evidence: Evidence) -> list[tuple[str, Mapping[str, Any]]]:
    """(host, mss_sweep) of every sweep document, in evidence order."""
    out = []
    for host, docs in evidence.items():
        for doc in [docs] if isinstance(docs, Mapping) else docs:
            if isinstance(doc.get("mss_sweep"), Mapping):
                out.append((host, doc["mss_sweep"]))
    return out


def cliff(sweep: Mapping[str, Any]) -> tuple[int, int] | None:
    """(the largest MSS that got through, the smallest larger one whose handshake stalled), as the
    sweep's trials show them; None without a pass or without a stall above it."""
    trials = [t for t in sweep.get("trials") or [] if isinstance(t.get("mss"), int)]
    passed = [t["mss"] for t in trials if t.get("through", t.get("ok"))]
    if not passed:
        return None
    best = max(passed)
    stalled = [t["mss"] for t in trials if t["mss"] > best and t.get("error_class") == "tls_handshake_timeout"]
    return (best, min(stalled)) if stalled else None


def mss_strip(sweeps: Sequence[tuple[str, Mapping[str, Any]]], clamp: int | None = None) -> Chart:
    title = "mss-sweep: handshakes by MSS"
    if not sweeps:
        return _empty("mss-sweep", title, "No mss-sweep in this evidence: no TLS handshake stalled, so nothing was sized.")
    panel = 132
    body = [_legend(16, 22, [("got through", OK), ("stalled", STALL), ("failed otherwise", FAILED)])]
    for n, (host, sweep) in enumerate(sweeps):
        body += _strip(host, sweep, clamp, 40 + n * panel)
    return Chart("mss-sweep", title, svg.document(WIDTH, 40 + len(sweeps) * panel, title, body, data_chart="mss-sweep"))


def _trial_colour(trial: Mapping[str, Any]) -> str:
    if trial.get("through", trial.get("ok")):
        return OK
    return STALL if trial.get("error_class") == "tls_handshake_timeout" else FAILED


def _strip(host: str, sweep: Mapping[str, Any], clamp: int | None, top: float) -> list[str]:
    trials = [t for t in sweep.get("trials") or [] if isinstance(t, Mapping)]
    sized = [t for t in trials if isinstance(t.get("mss"), int)]
    route_mtu, overhead = sweep.get("route_mtu"), sweep.get("ip_overhead")
    top_mss = route_mtu - overhead if isinstance(route_mtu, int) and isinstance(overhead, int) else 0
    lo = min([MIN_MSS, *(t["mss"] for t in sized)])
    hi = max([lo + 1, top_mss, *(t["mss"] for t in sized)])
    left, right = 120.0, WIDTH - 150.0

    def x(mss: float) -> float:
        return left + (mss - lo) / (hi - lo) * (right - left)

    head = f"{host} \u2192 {sweep.get('target', '?')}: {sweep.get('verdict', '?')}"
    out = [svg.text(16, top + 14, svg.shorten(head, 110), font_weight="bold", fill=INK)]
    rows = (("large hello", True), ("small hello", False))
    for r, (label, big) in enumerate(rows):
        y = top + 26 + r * 22
        out.append(svg.text(16, y + 12, label, fill=INK))
        out.append(svg.rect(left, y, right - left, 16, "#f5f5f5"))
        for t in (t for t in sized if bool(t.get("big_hello")) is big):
            tip = f"MSS {t['mss']} {label}: {'got through' if t.get('through', t.get('ok')) else t.get('error_class')}"
            out.append(svg.rect(x(t["mss"]) - 1.5, y, 3, 16, _trial_colour(t), tip, data_mss=t["mss"], data_big_hello=str(big).lower(),
                                data_through=str(bool(t.get("through", t.get("ok")))).lower()))
        defaults = [t for t in trials if t.get("mss") is None and bool(t.get("big_hello")) is big]
        for i, t in enumerate(defaults):
            out.append(svg.rect(right + 14 + i * 9, y, 7, 16, _trial_colour(t), f"default MSS {label}: "
                                f"{'got through' if t.get('through', t.get('ok')) else t.get('error_class')}", data_default="true"))
    axis = top + 74
    out.append(svg.line(left, axis, right, axis, RULE))
    step = next((s for s in (25, 50, 100, 200, 500, 1000, 2500, 5000) if (hi - lo) / s <= 12), 10000)
    for tick in range(-(-lo // step) * step, hi + 1, step):
        out += [svg.line(x(tick), axis, x(tick), axis + 4, RULE), svg.text(x(tick), axis + 16, tick, text_anchor="middle", fill=RULE, font_size=10)]
    out.append(svg.text(right + 14, axis + 16, "default MSS", fill=RULE, font_size=10))
    out += _marks(sweep, clamp, x, top)
    return out


def _marks(sweep: Mapping[str, Any], clamp: int | None, x: Callable[[float], float], top: float) -> list[str]:
    """The cliff (a band from the last pass to the first stall above it) and the clamp (a line)."""
    out = []
    edge = cliff(sweep)
    low, high = top + 22, top + 74
    if edge:
        out.append(svg.rect(x(edge[0]), low, max(x(edge[1]) - x(edge[0]), 2.0), high - low, STALL, f"cliff: MSS {edge[0]} gets through, "
                            f"{edge[1]} stalls", opacity=0.25, data_cliff_pass=edge[0], data_cliff_stall=edge[1]))
    chosen = clamp if clamp is not None else sweep.get("recommended_clamp")
    if isinstance(chosen, int):
        out += [svg.line(x(chosen), low - 4, x(chosen), high + 6, INK, stroke_width=2, stroke_dasharray="4 2", data_clamp=chosen),
                svg.text(x(chosen) - 4, low - 6, f"clamp {chosen}", text_anchor="end", fill=INK, font_size=10)]
    words = [f"cliff {edge[0]}|{edge[1]}" if edge else "no cliff", f"clamp {chosen}" if isinstance(chosen, int) else "no clamp"]
    words.append(svg.shorten(sweep.get("explanation", ""), 96))
    out.append(svg.text(16, top + 104, " \u00b7 ".join(words), fill=INK, font_size=11, data_marks="true"))
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> str:
    out = []
    for label, colour in items:
        out += [svg.rect(x, y - 9, 10, 10, colour), svg.text(x + 14, y, label, fill=INK)]
        x += 24 + 7 * len(label)
    return svg.el("g", out, class_="legend")


# ---------------------------------------------------------------- 2. per-phase latency


def phase_bars(before: Sequence[Row], after: Sequence[Row] | None = None) -> Chart:
    title = "Latency per phase (p50 of successful attempts), per host x target" + (", before and after the fix" if after is not None else "")
    rows = _grouped([r for r in before if r.probe == "http"])
    later = {(r.host, r.target): r for r in after or () if r.probe == "http"}
    if not rows:
        return _empty("phases", title, "No https probes in this evidence.")
    first = "before the fix" if after is not None else "this run"
    columns = [(first, {(r.host, r.target): r for r in rows})] + ([("after the fix", later)] if after is not None else [])
    widest = max([_stack_ms(r) for _, cells in columns for r in cells.values()] + [1.0])
    label_w, gap = 300.0, 24.0
    col_w = (WIDTH - label_w - 16 - gap * (len(columns) - 1)) / len(columns)
    height, top = 16, 56
    body = [_legend(16, 18, [(phase, colour) for phase, colour in PHASES.items()])]
    for c, (name, _) in enumerate(columns):
        left = label_w + c * (col_w + gap)
        body += [svg.text(left, 44, f"{name} (scale 0 to {widest:.0f} ms)" if c == 0 else name, fill=INK, font_weight="bold")]
    for n, row in enumerate(rows):
        y = top + n * height
        body.append(svg.text(16, y + 11, svg.shorten(f"{row.host} \u00b7 {row.target}", 44), fill=INK, font_size=11,
                             data_row=f"{row.host} {row.target}"))
        for c, (name, cells) in enumerate(columns):
            left = label_w + c * (col_w + gap)
            body += _bar(cells.get((row.host, row.target)), left, y, col_w, widest, name)
    return Chart("phases", title, svg.document(WIDTH, top + len(rows) * height + 12, title, body, data_chart="phases"))


def _grouped(rows: Sequence[Row]) -> list[Row]:
    """By host, then by target, each target's large-hello row right after its plain one (in the
    order they first appear: the gate's runs save the large hellos first)."""
    big = " [big hello]"
    hosts = list(dict.fromkeys(r.host for r in rows))
    targets = list(dict.fromkeys(r.target.removesuffix(big) for r in rows))
    return sorted(rows, key=lambda r: (hosts.index(r.host), targets.index(r.target.removesuffix(big)), r.target.endswith(big)))


def _stack_ms(row: Row) -> float:
    return sum(row.phases_ms.get(phase, {}).get("p50", 0.0) for phase in PHASES)


def _bar(row: Row | None, left: float, y: float, width: float, widest: float, column: str) -> list[str]:
    if row is None:
        return [svg.text(left, y + 11, "not probed", fill=RULE, font_size=11)]
    if not row.ok:
        failures = ", ".join(f"{cls} x{n}" for cls, n in row.errors.items())
        return [svg.text(left, y + 11, svg.shorten(f"0/{row.attempts} ok: {failures}", 60), fill=STALL, font_size=11, data_failed="true",
                         data_column=column)]
    out, x = [], left
    for phase, colour in PHASES.items():
        ms = row.phases_ms.get(phase, {}).get("p50")
        if ms is None:
            continue
        w = ms / widest * (width - 4)
        out.append(svg.rect(x, y + 2, w, BAR_H, colour, f"{row.host} {row.target} {column}: {phase} p50 {ms:.1f} ms",
                            data_phase=phase, data_ms=round(ms, 2), data_column=column))
        x += w
    if row.ok < row.attempts:
        out.append(svg.text(x + 4, y + 11, f"{row.ok}/{row.attempts} ok", fill=FAILED, font_size=10))
    return out


# ---------------------------------------------------------------- 3. pulls by image x node


def pull_grid(attempts: Sequence[Attempt], hosts: Sequence[str]) -> Chart:
    title = "Pulls by image x node"
    pulls = [a for a in attempts if a.probe == "pull"]
    if not pulls:
        return _empty("pulls", title, "No image pulls in this evidence.")
    images = sorted({a.target for a in pulls})
    nodes = [h for h in hosts if any(a.host == h for a in pulls)]
    label_w, cell_w, cell_h, top = 300.0, min(170.0, (WIDTH - 316) / len(nodes)), 44, 40
    body = [svg.text(label_w + i * cell_w + cell_w / 2, top - 10, svg.shorten(node, 22), text_anchor="middle", font_weight="bold", fill=INK)
            for i, node in enumerate(nodes)]
    for r, image in enumerate(images):
        y = top + r * cell_h
        body.append(svg.text(16, y + cell_h / 2 + 4, svg.shorten(image, 44), fill=INK, font_size=11))
        for i, node in enumerate(nodes):
            body += _pull_cell([a for a in pulls if a.host == node and a.target == image], image, node, label_w + i * cell_w, y, cell_w, cell_h)
    return Chart("pulls", title, svg.document(WIDTH, top + len(images) * cell_h + 10, title, body, data_chart="pulls"))


def _pull_cell(atts: Sequence[Attempt], image: str, node: str, x: float, y: float, w: float, h: float) -> list[str]:
    if not atts:
        return [svg.rect(x + 2, y + 2, w - 4, h - 4, "#fafafa", f"{image} on {node}: not pulled"),
                svg.text(x + w / 2, y + h / 2 + 4, "not pulled", text_anchor="middle", fill=RULE, font_size=11)]
    classes: dict[str, int] = {}
    for a in atts:
        if not a.ok:
            classes[str(a.error_class)] = classes.get(str(a.error_class), 0) + 1
    ok = len(atts) - sum(classes.values())
    state = "failed" if classes else "ok"
    words = f"{ok}/{len(atts)} ok" + (": " + ", ".join(f"{c} x{n}" for c, n in sorted(classes.items())) if classes else "")
    out = [svg.rect(x + 2, y + 2, w - 4, h - 4, STALL if classes else OK, f"{image} on {node}: {words}", opacity=0.85, data_image=image,
                    data_node=node, data_state=state, data_classes=",".join(sorted(classes)))]
    out.append(svg.text(x + w / 2, y + 18, f"{ok}/{len(atts)} ok", text_anchor="middle", fill="#ffffff", font_weight="bold"))
    if classes:
        out.append(svg.text(x + w / 2, y + 34, svg.shorten(", ".join(sorted(classes)), 26), text_anchor="middle", fill="#ffffff", font_size=10))
    return out


# ---------------------------------------------------------------- 4. failures over time


def _order(attempts: Sequence[Attempt]) -> list[Attempt]:
    """A host's attempts in the order they started (their timestamps; record order breaks ties and
    stands in for an unreadable stamp)."""
    stamped = [(_when(a.timestamp), n, a) for n, a in enumerate(attempts)]
    if any(when is None for when, _, _ in stamped):
        return list(attempts)
    return [a for _, _, a in sorted(stamped, key=lambda item: (item[0], item[1]))]


def _when(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """(first, last) index of every run of consecutive True values, in order."""
    out: list[tuple[int, int]] = []
    start = None
    for i, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            out.append((start, i - 1))
            start = None
    return out


def failure_timeline(attempts: Sequence[Attempt], hosts: Sequence[str]) -> Chart:
    title = "TLS handshake and Doppler failures over time, per host (attempts in the order they started)"
    probed = [h for h in hosts if any(a.host == h for a in attempts)]
    if not probed:
        return _empty("failures", title, "No https or pull attempts in this evidence.")
    lane, top, left, right = 20, 48, 180.0, WIDTH - 24.0
    body = [_legend(16, 20, [("completed", OK), ("handshake failed", STALL), ("Doppler request failed", FAILED),
                             ("failed before TLS", NEUTRAL)])]
    y = top
    for host in probed:
        ordered = _order([a for a in attempts if a.host == host])
        body.append(svg.text(16, y + 12, svg.shorten(host, 22), font_weight="bold", fill=INK))
        body += _lanes(host, ordered, left, right, y, lane)
        y += 2 * lane + 28
    return Chart("failures", title, svg.document(WIDTH, y, title, body, data_chart="failures"))


def _lanes(host: str, ordered: Sequence[Attempt], left: float, right: float, y: float, lane: int) -> list[str]:
    step = (right - left) / max(len(ordered), 1)
    handshake = [a.error_class in HANDSHAKE_FAILURES for a in ordered]
    doppler = [a.server == DOPPLER_HOST and not a.ok for a in ordered]
    out = [svg.text(left - 8, y + 12, "handshakes", text_anchor="end", fill=INK, font_size=11),
           svg.text(left - 8, y + lane + 12, DOPPLER_HOST, text_anchor="end", fill=INK, font_size=11)]
    for i, a in enumerate(ordered):
        x = left + i * step
        colour = STALL if handshake[i] else OK if a.reached_tls else NEUTRAL
        out.append(svg.rect(x, y + 2, max(step - 0.5, 1.0), lane - 4, colour, f"{host} #{i}: {a.label}: {'ok' if a.ok else a.error_class}",
                            data_lane="handshake", data_index=i, data_failed=str(handshake[i]).lower()))
        if a.server == DOPPLER_HOST:
            out.append(svg.rect(x, y + lane + 2, max(step - 0.5, 1.0), lane - 4, FAILED if doppler[i] else OK,
                                f"{host} #{i}: {a.label}: {'ok' if a.ok else a.error_class}", data_lane="doppler", data_index=i,
                                data_failed=str(doppler[i]).lower()))
    words = [f"#0 \u2026 #{len(ordered) - 1}" + _span(ordered)]
    # a run of handshake failures counts every attempt; a run of Doppler failures counts the Doppler
    # requests only, as the criterion does (probes/criteria.py, max_doppler_failure_run)
    calls = [i for i, a in enumerate(ordered) if a.server == DOPPLER_HOST]
    lanes = ((list(range(len(ordered))), handshake, "handshake", "handshake failures", y),
             (calls, [doppler[i] for i in calls], "doppler", "Doppler requests failed", y + lane))
    for positions, flags, name, what, top in lanes:
        burst = longest_run(flags)
        if burst:
            first, last = positions[burst[0]], positions[burst[1]]
            out.append(svg.line(left + first * step, top, left + (last + 1) * step, top, INK, stroke_width=2, data_burst=name,
                                data_first=first, data_last=last))
            words.append(f"{what} in a row: #{first} to #{last} ({burst[1] - burst[0] + 1})")
    out.append(svg.text(left, y + 2 * lane + 12, "; ".join(words), fill=RULE, font_size=10))
    return out


def _span(ordered: Sequence[Attempt]) -> str:
    first, last = (_when(ordered[0].timestamp), _when(ordered[-1].timestamp)) if ordered else (None, None)
    return f", over {(last - first).total_seconds():.1f} s" if first and last else ""


def longest_run(flags: Sequence[bool]) -> tuple[int, int] | None:
    """The burst: the longest run of failures, two or more in a row (the first, when runs tie)."""
    longest = max(runs(flags), key=lambda r: (r[1] - r[0], -r[0]), default=None)
    return longest if longest and longest[1] > longest[0] else None
