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


# Every probe stalls at its own hosts; a pull stalls at the blob host the registry redirected it to.
# Each mss-sweep waits (bounded) until every sweep the run may start has started: it says whether
# it saw them all, which only sweeps that run at once can.
STALLING_AGENT = r"""import json, os, sys, time
args = sys.argv[1:]
work = os.path.dirname(os.path.abspath(sys.argv[0]))
def stall(host, kind="http", port=443):
    return {"kind": kind, "target": "https://%s/v2/" % host if kind == "http" else "ghcr.io/netstab/app:1", "ok": False,
            "error_class": "tls_handshake_timeout", "error": "TLS handshake with %s did not finish in 1.0s" % host,
            "remote_ip": "203.0.113.%d" % (sum(map(ord, host)) % 200), "remote_port": port}
if args[0] == "http":
    # quay.io shares ghcr.io's address: its path is ghcr.io's, swept once
    records = [stall("ghcr.io"), stall("ghcr.io"), dict(stall("quay.io"), remote_ip=stall("ghcr.io")["remote_ip"])]
    if "--big-hello" in args:
        records += [stall("api.doppler.com")]
elif args[0] == "pull":
    records = [stall("blobs.example.net", "pull", 8443), stall("cdn.example.org", "pull"), stall("late.example.org", "pull")]
else:
    open(os.path.join(work, "started-" + args[1]), "w").close()
    deadline = time.monotonic() + 20
    while len([n for n in os.listdir(work) if n.startswith("started-")]) < int(os.environ["SWEEPS"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = len([n for n in os.listdir(work) if n.startswith("started-")])
    records = [{"kind": "mss_sweep", "target": args[1], "ok": True, "saw_started": seen}]
print(json.dumps({"schema": "netstab.probe/v1", "command": args[0], "records": records}))
"""


def test_every_stalled_host_is_swept_at_once_a_pulls_blob_host_included_up_to_the_bound():
    from components.render.validation import MAX_SWEEPS

    validation = ValidationConfig.model_validate({"endpoints": ["https://ghcr.io/v2/", "https://quay.io/v2/"], "images": ["ghcr.io/netstab/app:1"]})
    done = subprocess.run(["sh", "-c", probe_script("cp1", validation, None)], input=STALLING_AGENT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "SWEEPS": str(MAX_SWEEPS)})
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    sweeps = [d["records"][0] for d in run["documents"] if d["command"] == "mss-sweep"]
    # in the order met: the plain hellos', the large hellos', then the pulls' blob hosts (with their ports); ghcr.io's address once
    stalled = ["ghcr.io:443", "api.doppler.com:443", "blobs.example.net:8443", "cdn.example.org:443", "late.example.org:443"]
    assert len(stalled) > MAX_SWEEPS > 2
    assert sorted(s["target"] for s in sweeps) == sorted(stalled[:MAX_SWEEPS])
    assert all(s["saw_started"] == MAX_SWEEPS for s in sweeps), sweeps
    assert run["notes"] == []


def test_no_sweep_when_nothing_stalled():
    run = json.loads(subprocess.run(["sh", "-c", probe_script("cp1", ValidationConfig.model_validate({}), None)], input=RECORDING_AGENT,
                                    capture_output=True, text=True, timeout=60).stdout)
    assert [d["argv"][0] for d in run["documents"]].count("mss-sweep") == 0
