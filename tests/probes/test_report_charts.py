"""The report's charts and report.html, read back as XML: what each chart marks, from evidence built
here, and that no name from the evidence can break the SVG or the page."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from probes import charts as charts_module
from probes import svg
from probes.charts import charts, cliff, longest_run, runs
from probes.gate import judge_runs
from probes.report import HTML, MARKDOWN, Report, render
from probes.verdict import diagnose

NS = {"s": "http://www.w3.org/2000/svg"}
FIXTURE = json.loads((Path(__file__).resolve().parent / "fixtures" / "blackhole.json").read_text())
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;\x1b\ud800'


def doc(command: str, records: list[dict], **extra) -> dict:
    return {"schema": "netstab.probe/v1", "command": command, "records": records, **extra}


def http(target: str, n: int, ok: bool = True, error_class: str | None = None, second: float | None = None, big: bool = False) -> dict:
    stamp = f"2026-12-06T05:00:{second if second is not None else n:09.6f}Z"
    phases = {"dns": 1.0, "connect": 2.0, "tls": 5.0, "ttfb": 4.0, "total": 12.5} if ok else {"dns": 1.0, "connect": 2.0}
    return {"kind": "http", "target": target, "attempt": n, "timestamp": stamp, "ok": ok, "error_class": error_class,
            "remote_ip": "203.0.113.10", "phases_ms": phases, "big_hello": big}


def pull(image: str, ok: bool = True, error_class: str | None = None) -> dict:
    return {"kind": "pull", "target": image, "attempt": 1, "timestamp": "2026-12-06T05:01:00Z", "ok": ok, "error_class": error_class,
            "phases_ms": {"total": 80.0}}


def sweep(trials: list[tuple[int | None, bool, bool, str | None]], clamp: int | None = 1240, working: int | None = 1240) -> dict:
    """trials: (mss, big hello, through, error_class)."""
    return doc("mss-sweep", [], mss_sweep={
        "target": "ghcr.io:443", "remote_ip": "203.0.113.10", "route_mtu": 1400, "ip_overhead": 40, "verdict": "black-hole",
        "black_hole": clamp is not None, "working_mss": working, "path_mtu": working + 40 if working else None, "recommended_clamp": clamp,
        "explanation": "a PMTU black hole", "trials": [{"mss": m, "big_hello": b, "ok": t, "through": t, "error_class": c} for m, b, t, c in trials]})


BLACK_HOLE_TRIALS = [(None, False, False, "tls_handshake_timeout"), (None, True, False, "tls_handshake_timeout"),
                     (536, False, True, None), (536, True, True, None), (900, True, True, None), (1240, True, True, None),
                     (1241, True, False, "tls_handshake_timeout"), (1300, True, False, "tls_handshake_timeout")]


def chart(evidence: dict, slug: str, **kwargs) -> ET.Element:
    found = {c.slug: c for c in charts(evidence, **kwargs)}
    return ET.fromstring(found[slug].svg)  # it parses as XML, or this fails


def shapes(root: ET.Element, **attrs: str) -> list[ET.Element]:
    return [e for e in root.iter() if all(e.get(k.replace("_", "-")) == v for k, v in attrs.items())]


# ---------------------------------------------------------------- the mss-sweep strip


def test_the_strip_marks_the_cliff_between_the_last_pass_and_the_first_stall_and_the_clamp_at_its_mss():
    root = chart({"cp1": [sweep(BLACK_HOLE_TRIALS)]}, "mss-sweep")
    band = shapes(root, data_cliff_pass="1240")
    assert len(band) == 1 and band[0].get("data-cliff-stall") == "1241"
    trial_x = {int(e.get("data-mss")): float(e.get("x")) + 1.5 for e in root.iter() if e.get("data-mss")}
    assert float(band[0].get("x")) == pytest.approx(trial_x[1240]) and trial_x[1240] < trial_x[1241] < trial_x[1300]
    clamp = shapes(root, data_clamp="1240")
    assert len(clamp) == 1 and float(clamp[0].get("x1")) == pytest.approx(trial_x[1240])
    colours = {int(e.get("data-mss")): e.get("fill") for e in root.iter() if e.get("data-mss") and e.get("data-big-hello") == "true"}
    assert colours[900] == colours[1240] == charts_module.OK and colours[1241] == colours[1300] == charts_module.STALL
    assert len(shapes(root, data_default="true")) == 2, "the default-MSS trials are drawn too"
    assert "cliff 1240|1241" in ET.tostring(root, encoding="unicode") and "clamp 1240" in ET.tostring(root, encoding="unicode")


def test_the_clamp_applied_wins_over_the_sweeps_recommendation():
    root = chart({"cp1": [sweep(BLACK_HOLE_TRIALS)]}, "mss-sweep", clamp=1200)
    assert [e.get("data-clamp") for e in shapes(root, data_clamp="1200")] == ["1200"] and not shapes(root, data_clamp="1240")


@pytest.mark.parametrize(("trials", "expected"), [
    (BLACK_HOLE_TRIALS, (1240, 1241)),
    # a refused connection above the last pass is not a size limit: no cliff
    ([(536, True, True, None), (1240, True, True, None), (1300, True, False, "connect_refused")], None),
    # a stall below the last pass is noise: the cliff is above the pass
    ([(700, True, False, "tls_handshake_timeout"), (1240, True, True, None), (1250, True, False, "tls_handshake_timeout")], (1240, 1250)),
    ([(536, True, False, "tls_handshake_timeout")], None),
])
def test_the_cliff_is_the_last_pass_and_the_next_stall(trials, expected):
    assert cliff(sweep(trials)["mss_sweep"]) == expected


def test_a_clean_sweep_has_no_cliff_and_no_clamp():
    root = chart({"cp1": [sweep([(536, True, True, None), (1360, True, True, None)], clamp=None, working=1360)]}, "mss-sweep")
    assert not shapes(root, data_clamp="1360") and not [e for e in root.iter() if e.get("data-cliff-pass")]
    assert "no cliff" in ET.tostring(root, encoding="unicode")


# ---------------------------------------------------------------- latency per phase


def test_phases_stack_left_to_right_in_proportion_and_a_failed_cell_says_its_class():
    before = {"cp1": [doc("http", [http("https://ghcr.io/v2/", n, False, "tls_handshake_timeout") for n in (1, 2)]
                          + [http("https://quay.io/v2/", 3)])]}
    after = {"cp1": [doc("http", [http("https://ghcr.io/v2/", 1), http("https://quay.io/v2/", 2)])]}
    root = chart(before, "phases", after=after)
    failed = shapes(root, data_failed="true")
    assert [e.text for e in failed] == ["0/2 ok: tls_handshake_timeout x2"] and failed[0].get("data-column") == "before the fix"
    after_bar = [e for e in shapes(root, data_column="after the fix") if e.get("data-phase")]
    assert [e.get("data-phase") for e in after_bar] == ["dns", "connect", "tls", "ttfb", "dns", "connect", "tls", "ttfb"]
    first = after_bar[:4]
    for left, right in zip(first, first[1:], strict=False):
        assert float(right.get("x")) == pytest.approx(float(left.get("x")) + float(left.get("width")), abs=0.02)
    widths = {e.get("data-phase"): float(e.get("width")) for e in first}
    assert widths["tls"] / widths["dns"] == pytest.approx(5.0, rel=1e-2) and widths["ttfb"] / widths["connect"] == pytest.approx(2.0, rel=1e-2)


def test_rows_go_by_host_then_target_with_the_large_hello_beside_the_plain_one():
    big = [http("https://quay.io/v2/", 1, big=True), http("https://ghcr.io/v2/", 2, big=True)]
    plain = [http("https://quay.io/v2/", 3), http("https://ghcr.io/v2/", 4)]
    root = chart({"pve": [doc("http", plain)], "cp1": [doc("http", big), doc("http", plain)]}, "phases")
    assert [e.get("data-row") for e in root.iter() if e.get("data-row")] == [
        "pve quay.io/v2/", "pve ghcr.io/v2/", "cp1 quay.io/v2/", "cp1 quay.io/v2/ [big hello]", "cp1 ghcr.io/v2/", "cp1 ghcr.io/v2/ [big hello]"]


def test_without_an_after_there_is_one_column():
    root = chart({"cp1": [doc("http", [http("https://quay.io/v2/", 1)])]}, "phases")
    assert not shapes(root, data_column="after the fix") and not shapes(root, data_column="before the fix")
    assert shapes(root, data_column="this run")


# ---------------------------------------------------------------- pulls


def test_the_pull_grid_has_a_cell_per_image_and_node_and_a_failed_pull_shows_its_class():
    evidence = {"cp1": [doc("pull", [pull("ghcr.io/a:1", False, "tls_handshake_timeout"), pull("quay.io/b:2")])],
                "pve": [doc("pull", [pull("ghcr.io/a:1"), pull("quay.io/b:2", False, "registry_error")])]}
    root = chart(evidence, "pulls")
    cells = {(e.get("data-image"), e.get("data-node")): (e.get("data-state"), e.get("data-classes")) for e in root.iter() if e.get("data-state")}
    assert cells == {("ghcr.io/a:1", "cp1"): ("failed", "tls_handshake_timeout"), ("quay.io/b:2", "cp1"): ("ok", ""),
                     ("ghcr.io/a:1", "pve"): ("ok", ""), ("quay.io/b:2", "pve"): ("failed", "registry_error")}
    words = [e.text for e in root.iter() if e.tag.endswith("text")]
    assert "tls_handshake_timeout" in words and "registry_error" in words and words.count("0/1 ok") == 2


# ---------------------------------------------------------------- failures over time


def test_a_burst_shows_at_the_attempt_indices_where_it_happened_in_time_order():
    # records out of time order (as concurrent attempts finish): the chart orders them by when they started
    recs = [http("https://ghcr.io/v2/", n, ok=not 3 <= n <= 6, error_class=None if not 3 <= n <= 6 else "tls_handshake_timeout")
            for n in range(10)]
    # Doppler requests at 10, 12, 14, 16, 18 with a quay.io attempt between each: 12, 14 and 16 fail, three Doppler requests in a row
    doppler = [http("https://api.doppler.com/v3/projects", n, ok=n not in (12, 14, 16), error_class="http_status" if n in (12, 14, 16) else None)
               if n % 2 == 0 else http("https://quay.io/v2/", n) for n in range(10, 19)]
    root = chart({"cp1": [doc("http", list(reversed(recs)) + doppler)]}, "failures")
    hs = {int(e.get("data-index")): e.get("data-failed") == "true" for e in shapes(root, data_lane="handshake")}
    assert [i for i, failed in sorted(hs.items()) if failed] == [3, 4, 5, 6]
    dp = {int(e.get("data-index")): e.get("data-failed") == "true" for e in shapes(root, data_lane="doppler")}
    assert sorted(dp) == [10, 12, 14, 16, 18] and [i for i, failed in sorted(dp.items()) if failed] == [12, 14, 16]
    burst = {e.get("data-burst"): (int(e.get("data-first")), int(e.get("data-last"))) for e in root.iter() if e.get("data-burst")}
    assert burst == {"handshake": (3, 6), "doppler": (12, 16)}
    words = ET.tostring(root, encoding="unicode")
    assert "handshake failures in a row: #3 to #6 (4)" in words and "Doppler requests failed in a row: #12 to #16 (3)" in words


def test_one_failure_is_not_a_burst_and_runs_are_found_exactly():
    assert runs([False, True, True, False, True]) == [(1, 2), (4, 4)]
    assert longest_run([True, False, True]) is None
    assert longest_run([True, True, False, True, True, True]) == (3, 5)
    assert longest_run([True, True, False, True, True]) == (0, 1)


# ---------------------------------------------------------------- no data, and every chart present


def test_evidence_without_sweeps_or_pulls_still_gives_four_charts_that_say_why_they_are_empty():
    drawn = charts({"cp1": [doc("http", [http("https://quay.io/v2/", 1)])]})
    assert [c.slug for c in drawn] == ["mss-sweep", "phases", "pulls", "failures"]
    empty = {c.slug for c in drawn if ET.fromstring(c.svg).get("data-empty") == "true"}
    assert empty == {"mss-sweep", "pulls"}


# ---------------------------------------------------------------- names from the evidence stay text


def hostile_evidence() -> dict:
    target = "https://ghcr.io/v2/" + HOSTILE
    return {f"cp1{HOSTILE}": [doc("http", [http(target, n, n != 2, None if n != 2 else "tls_handshake_timeout") for n in range(4)]),
                              doc("pull", [pull(f"ghcr.io/x{HOSTILE}:1", False, "registry_error")]),
                              sweep(BLACK_HOLE_TRIALS)]}


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.text += data


def test_hostile_names_cannot_break_the_svg_or_the_page():
    evidence = hostile_evidence()
    drawn = charts(evidence)
    for c in drawn:
        root = ET.fromstring(c.svg)  # well-formed: nothing ended an attribute or opened a tag
        assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "img", "foreignObject")], c.slug
    assert any('"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;\ufffd\ufffd' in (e.text or "") + (e.get("data-row") or "")
               for c in drawn for e in ET.fromstring(c.svg).iter())
    d = diagnose(evidence)
    markdown = render("gate", d, charts=drawn)
    html = Report.of(markdown, f"title {HOSTILE}", f"FAIL {HOSTILE}", drawn).html
    parsed = Tags()
    parsed.feed(html)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert parsed.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "figure", "figcaption", "pre", "svg", "g",
                           "rect", "line", "text"}
    assert '<script>alert(1)</script>' in parsed.text


def test_without_escaping_the_same_names_would_break_the_svg(monkeypatch):
    """Counterfactual: the writer with escaping taken out produces SVG that does not parse."""
    monkeypatch.setattr(svg, "text_of", lambda value: str(value))
    with pytest.raises(ET.ParseError):
        for c in charts(hostile_evidence()):
            ET.fromstring(c.svg)


# ---------------------------------------------------------------- the report's files


def test_the_report_writes_the_page_and_each_chart_and_report_md_links_them():
    before, after = diagnose(FIXTURE["evidence"], FIXTURE["reference"]), diagnose(FIXTURE["after"], FIXTURE["reference"])
    drawn = charts(FIXTURE["evidence"], FIXTURE["after"], 1240)
    assert drawn == charts(json.loads(json.dumps(FIXTURE["evidence"])), FIXTURE["after"], 1240), "the same evidence, the same bytes"
    markdown = render("netstab lab: blackhole", before, result="PASS", after=after, charts=drawn)
    files = Report.of(markdown, "netstab lab: blackhole", "PASS", drawn).files()
    assert sorted(files) == sorted([MARKDOWN, HTML, "chart-mss-sweep.svg", "chart-phases.svg", "chart-pulls.svg", "chart-failures.svg"])
    for c in drawn:
        assert f"![{c.title}]({c.file})" in files[MARKDOWN]
        assert files[c.file] == c.svg and c.svg in files[HTML]
    assert f"[{HTML}]({HTML})" in files[MARKDOWN]
    page = files[HTML]
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert " src=" not in page and " href=" not in page and "<script" not in page, "self-contained: nothing to fetch, nothing to run"


def test_the_gate_writes_the_same_files():
    evidence = {("proxmox" if h == "pve" else h): docs for h, docs in FIXTURE["evidence"].items()}
    judged = judge_runs(evidence, {"reference": ["proxmox"], "stack": "homelab"}, [])
    assert set(judged.files) == {MARKDOWN, HTML, "chart-mss-sweep.svg", "chart-phases.svg", "chart-pulls.svg", "chart-failures.svg"}
    assert judged.files[MARKDOWN] == judged.markdown and "![Pulls by image x node](chart-pulls.svg)" in judged.markdown
    root = ET.fromstring(judged.files["chart-mss-sweep.svg"])
    assert shapes(root, data_clamp="1240") and shapes(root, data_cliff_pass="1240")


def test_a_wide_mss_range_keeps_the_axis_readable():
    """A sweep over loopback (MTU 65536) spans 536..65496: a dozen ticks at most, not hundreds."""
    wide = sweep([(536, True, True, None), (65000, True, True, None)], clamp=None, working=65000)
    wide["mss_sweep"]["route_mtu"] = 65536
    root = chart({"cp1": [wide]}, "mss-sweep")
    ticks = [e for e in root.iter() if e.tag.endswith("text") and e.get("font-size") == "10" and (e.text or "").isdigit()]
    assert 5 <= len(ticks) <= 13
