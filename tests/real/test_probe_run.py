"""A vantage point's rendered probe run, with a stand-in agent: what reaches the gate when the
agent prints no document."""

from __future__ import annotations

import json
import subprocess

from components.config import ValidationConfig
from components.render.validation import probe_script

SILENT_AGENT = """import sys
if sys.argv[1] == "pull":
    print("agent: cannot read the image list: no such file", file=sys.stderr)
    raise SystemExit(2)
if "--big-hello" in sys.argv:
    raise SystemExit(1)
print('{"schema": "netstab.probe/v1", "records": []}')
"""


def test_an_agent_without_a_document_is_noted_with_its_last_word():
    script = probe_script("cp1", ValidationConfig.model_validate({}), None)
    done = subprocess.run(["sh", "-c", script], input=SILENT_AGENT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["vantage_point"] == "cp1" and len(run["documents"]) == 1
    assert run["notes"] == ["http-big-hello: the agent printed no document (stopped by the budget?)",
                            "pull-direct: the agent printed no document: agent: cannot read the image list: no such file"]
