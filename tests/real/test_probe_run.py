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


RECORDING_AGENT = """import json, sys
print(json.dumps({"schema": "netstab.probe/v1", "argv": sys.argv[1:], "records": []}))
"""


def _pulls(script: str) -> list[list[str]]:
    done = subprocess.run(["sh", "-c", script], input=RECORDING_AGENT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    return [d["argv"] for d in run["documents"] if d["argv"][0] == "pull"], run["notes"]


def test_the_mirror_is_pulled_through_for_the_images_it_serves(homelab):
    pulls, notes = _pulls(probe_script("cp1", ValidationConfig.model_validate({}), homelab.mirror))
    through_mirror = [argv for argv in pulls if "--mirror" in argv]
    assert sorted(argv[argv.index("--mirror") + 1] for argv in through_mirror) == sorted(
        homelab.mirror.endpoint(u) for u in homelab.mirror.upstreams if u.registry in ("docker.io", "ghcr.io", "quay.io"))
    # oci.external-secrets.io is pulled through ghcr.io's instance: the homelab stack lists it as an alias
    assert sorted(i for argv in through_mirror for i in argv[argv.index("--mirror") + 2:] if not i.startswith("-")) == sorted(
        ValidationConfig.model_validate({}).images)
    assert notes == []


def test_a_gate_whose_images_the_mirror_does_not_serve_says_it_proves_nothing_about_the_mirror(homelab):
    validation = ValidationConfig.model_validate({"images": ["registry.example.org/app:1.0"]})
    pulls, notes = _pulls(probe_script("cp1", validation, homelab.mirror))
    assert [argv for argv in pulls if "--mirror" in argv] == []
    assert notes == ["pull-mirror: not run: no test image (validation.images) is from a registry the mirror serves "
                     "(mirror.upstreams), so this gate does not prove the mirror"]
