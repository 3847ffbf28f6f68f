"""The markdown report the lab and the gate write: every section from the diagnosis, nothing invented."""

from __future__ import annotations

import json
from pathlib import Path

from probes.report import AppliedFix, render
from probes.verdict import diagnose

FIXTURE = json.loads((Path(__file__).resolve().parent / "fixtures" / "blackhole.json").read_text())


def test_a_fixed_black_hole_reports_the_diagnosis_the_sweep_beside_tracepath_the_fix_and_the_table_before_and_after():
    before = diagnose(FIXTURE["evidence"], FIXTURE["reference"])
    after = diagnose(FIXTURE["after"], FIXTURE["reference"])
    fix = AppliedFix("#!/bin/sh\nnft -f rules\n", "netstab: verify: ok\n", True)
    text = render("netstab lab: blackhole", before, intro="A narrow link.", result="PASS", fix=fix, after=after,
                  timings={"first probe to diagnosis": 4.2}, files="before-<host>.json")
    assert text.startswith("# netstab lab: blackhole\n\nA narrow link.\n\n**PASS**\n")
    assert before.text() in text and after.text() in text
    assert f"## What fixes it\n\n{before.fix}\n" in text
    assert "## mss-sweep from cp1 to ghcr.io:443, beside tracepath" in text and before.sweeps[0].tracepath in text
    assert "- verdict: black-hole; working MSS: 1240; path MTU: 1280; recommended clamp: 1240; direction: both" in text
    assert "```sh\n#!/bin/sh\nnft -f rules\n```" in text and "verify (passed):" in text and "netstab: verify: ok" in text
    assert "| host | probe | target | before | after |" in text
    row = next(line for line in text.splitlines() if line.startswith("| cp1 | http | ghcr.io/v2/ |"))
    assert row.startswith("| cp1 | http | ghcr.io/v2/ | 0/3 ok; tls_handshake_timeout x3 | 3/3 ok; tls p50/p95 ")
    assert "- first probe to diagnosis: 4.2 s" in text and "## Evidence\n\nbefore-<host>.json" in text


def test_without_a_fix_the_report_has_one_column_its_verdict_and_no_fix_section():
    before = diagnose(FIXTURE["evidence"], FIXTURE["reference"])
    text = render("gate", before)
    assert "**FAIL**" in text and "## The fix, applied" not in text and "## After the fix" not in text
    assert "| host | probe | target | before |\n| --- | --- | --- | --- |\n" in text


def test_a_failed_verify_says_so():
    before = diagnose(FIXTURE["evidence"], FIXTURE["reference"])
    text = render("gate", before, fix=AppliedFix("script", "netstab: verify: missing rule", False))
    assert "verify (FAILED):" in text
