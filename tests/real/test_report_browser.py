"""report.html as a person sees it: opened in headless Chromium (Debian's `chromium`), it shows the
four charts with their titles at a real size, the screenshot is not blank, the console stays quiet,
and hostile names in the evidence stay text. The page is written by the same code the lab and the
gate use (`probes.report.Report.files`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.charts import charts
from probes.report import HTML, Report, render
from probes.verdict import diagnose
from tests.real.browser import browser, chromium, colours, open_page, screenshot

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "probes" / "fixtures" / "blackhole.json").read_text())
TITLES = ["mss-sweep: handshakes by MSS",
          "Latency per phase (p50 of successful attempts), per host x target, before and after the fix",
          "Pulls by image x node",
          "TLS handshake and Doppler failures over time, per host (attempts in the order they started)"]
HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;\x1b'

MEASURE = """Array.from(document.querySelectorAll('figure.chart')).map(f => {
  const s = f.querySelector('svg'), r = s.getBoundingClientRect();
  return {id: f.id, caption: f.querySelector('figcaption').textContent, width: r.width, height: r.height,
          shapes: s.querySelectorAll('rect').length};
})"""


@pytest.fixture(autouse=True)
def _needs_chromium():
    if chromium() is None:
        pytest.fail("chromium is missing: run `make deps` as root")


def lab_report(folder: Path, evidence: dict, after: dict | None = None, clamp: int | None = None) -> Path:
    before = diagnose(evidence, ["pve"])
    drawn = charts(evidence, after, clamp)
    markdown = render("netstab lab: blackhole", before, result="PASS", after=diagnose(after, ["pve"]) if after else None, charts=drawn)
    for name, text in Report.of(markdown, "netstab lab: blackhole", "PASS", drawn).files().items():
        (folder / name).write_text(text)
    return folder / HTML


def test_the_lab_report_shows_four_charts_at_a_real_size_with_no_console_error_and_a_screenshot_that_is_not_blank(tmp_path):
    page_file = lab_report(tmp_path, FIXTURE["evidence"], FIXTURE["after"], clamp=1240)
    shot = tmp_path / "report.png"
    with browser() as page:
        open_page(page, page_file.as_uri())
        boxes = page.evaluate(MEASURE)
        screenshot(page, shot)
        errors = page.console_errors()
    assert [box["caption"] for box in boxes] == TITLES
    assert [box["id"] for box in boxes] == ["mss-sweep", "phases", "pulls", "failures"]
    for box in boxes:
        assert box["width"] > 300 and box["height"] > 50 and box["shapes"] > 0, box
    assert errors == []
    assert shot.stat().st_size > 10_000
    assert len(colours(shot.read_bytes())) > 10, "the screenshot is blank (one colour, or nearly)"


def test_hostile_host_target_and_image_names_stay_text_in_the_browser(tmp_path):
    evidence = json.loads(json.dumps(FIXTURE["evidence"]).replace("ghcr.io", "ghcr.io" + json.dumps(HOSTILE)[1:-1]))
    evidence = {**{k: v for k, v in evidence.items() if k != "worker1"}, f"worker1{HOSTILE}": evidence["worker1"]}
    page_file = lab_report(tmp_path, evidence)
    with browser() as page:
        open_page(page, page_file.as_uri())
        found = page.evaluate("({elements: document.querySelectorAll('script, img, iframe, object, embed').length, "
                              "figures: document.querySelectorAll('figure.chart svg').length, text: document.body.innerText})")
        dialogs = [e for e in page.events if e.get("method") == "Page.javascriptDialogOpening"]
        errors = page.console_errors()
    assert found["elements"] == 0 and found["figures"] == 4
    assert '"><script>alert(1)</script><img src=x onerror=alert(2)>&amp;' in found["text"]
    assert dialogs == [] and errors == []


def test_the_console_check_sees_a_load_the_page_would_try(tmp_path):
    """Counterfactual: the same page with one external image. Its content policy refuses the load
    (nothing leaves the machine) and the refusal is a console error the checks above would see."""
    page_file = lab_report(tmp_path, FIXTURE["evidence"])
    page_file.write_text(page_file.read_text().replace("<body>", '<body><img src="https://192.0.2.1/pixel.png" alt="">', 1))
    with browser() as page:
        open_page(page, page_file.as_uri())
        errors = page.console_errors()
    assert any("192.0.2.1" in error or "Content Security Policy" in error for error in errors), errors
