"""`make lab SCENARIO=intermittent` end to end (about five minutes: the continuous probe's cycle on a
35 s schedule while the black hole, then Doppler loss, switch on and off)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.real.conftest import require_root

REPO = Path(__file__).resolve().parents[2]


def test_history_names_the_intermittent_black_hole_the_alert_fires_and_the_gate_alone_passes(tmp_path):
    require_root()
    done = subprocess.run([sys.executable, "-m", "lab", "intermittent", "--report", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "lab: intermittent: PASS - pmtu-black-hole intermittent" in done.stdout
    report = (tmp_path / "REPORT.md").read_text()
    assert "**Result: PASS**" in report
    assert "on the exported series (`promtool test rules alert-test.yaml`): PASS" in report
    assert "The post-up gate alone, once, in an off window: PASS" in report
    history = json.loads((tmp_path / "history.json").read_text())
    hole = next(p for p in history["problems"] if p["kind"] == "pmtu-black-hole")
    assert hole["pattern"] == "intermittent" and sorted(hole["hosts"]) == ["cp1", "worker1"]
    # the stores the report points at judge the same with the command an operator would run
    stores = sorted((tmp_path / "stores").iterdir())
    again = subprocess.run([sys.executable, "-m", "probes", "history", "--since", "1h", "--json", "--reference", "proxmox",
                            *[f"{s.name}={s}" for s in stores]], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode in (0, 1), again.stderr
    assert [p["kind"] for p in json.loads(again.stdout)["problems"]] == [p["kind"] for p in history["problems"]]
