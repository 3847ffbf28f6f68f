"""`make lab` end to end, what makes a scenario pass, and what the lab proves about the gateway fix on a real kernel."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from components.render.gateway import GatewayRules, gateway_script
from lab import gate as lab_gate
from lab import probing, services
from lab import topology as lab_topology
from lab.netns import Topology, exclusive, list_namespaces, sh
from lab.scenarios import SCENARIOS, check
from probes.report import AppliedFix
from probes.verdict import diagnose
from tests.real.conftest import require_root

REPO = Path(__file__).resolve().parents[2]


KINDS = {"blackhole": "pmtu-black-hole", "toward-server": "pmtu-black-hole", "loss": "packet-loss", "dns": "dns",
         "upstream-down": "upstream-down", "silent-server": "server-stall", "bad-cert": "tls-certificate",
         "server-5xx": "server-error", "rate-limited": "rate-limited", "blob-host": "pmtu-black-hole"}
FIXES = {"loss": "find the lossy hop", "dns": "fix the resolver", "upstream-down": "the service, or the path to it, is down",
         "silent-server": "never answers the ClientHello", "bad-cert": "install the CA", "server-5xx": "the service itself fails",
         "rate-limited": "pull through the registry mirror"}


def lab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def judged_by_the_command(folder: Path) -> dict:
    """`python -m probes diagnose --json` on a scenario's saved evidence, as an operator would run it."""
    pairs = [f"{p.stem.removeprefix('before-')}={p}" for p in sorted(folder.glob("before-*.json"))]
    done = subprocess.run([sys.executable, "-m", "probes", "diagnose", "--json", "--reference", "pve", *pairs], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    return dict(json.loads(done.stdout))


def test_every_scenario_reaches_its_kind_says_what_fixes_it_and_the_black_holes_fixes_are_verified(tmp_path):
    require_root()
    sh("ip", "netns", "add", f"{lab_topology.PREFIX}stale")  # as an interrupted run would leave it
    result = lab("all", "--report", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed 1 namespaces left by an interrupted run" in result.stdout
    for scenario, kind in KINDS.items():
        assert f"lab: {scenario}: PASS - {kind} (" in result.stdout
        judged = judged_by_the_command(tmp_path / scenario)
        assert (judged["kind"], judged["verdict"]) == (kind, "fail"), scenario
        report = (tmp_path / scenario / "REPORT.md").read_text()
        assert f"**PASS (expected `{kind}`, the judge says `{kind}`)**" in report
        if scenario in FIXES:
            assert "MSS fix: does not apply" in report and FIXES[scenario] in report.split("## What fixes it", 1)[1], scenario
    for scenario in ("blackhole", "toward-server"):
        report = (tmp_path / scenario / "REPORT.md").read_text()
        assert "MSS fix: applies" in report and "clamp 1240" in report and "pulumi config set --path netstab:gateway.mss 1240" in report
        assert "verify (passed):" in report and "## After the fix" in report and "PASS: healthy" in report
        assert "| host | probe | target | before | after |" in report
        after = json.loads((tmp_path / scenario / "after-cp1.json").read_text())
        assert all(r["ok"] for doc in after for r in doc["records"])
        # the post-up gate on the rendered probe runs: it fails the deploy before the fix, passes after;
        # the gateway's own measurement (pathMtu: auto) finds the path MTU the judge's sweep found
        assert "The gateway measured path MTU **1280** from its VM-subnet address" in report
        gate_before = report.split("### before the fix: FAIL", 1)[1].split("###", 1)[0]
        assert "FAIL: pmtu-black-hole" in gate_before and "clamp 1240" in gate_before and "netstab:gateway.remeasure 1" in gate_before
        assert "### after the fix: PASS" in report
        assert (tmp_path / scenario / "gate-before" / "REPORT.md").exists() and (tmp_path / scenario / "gate-after" / "cp1.json").exists()
    # blob-host: only the pulls stall, at the blob host the registry redirected them to; its sweep sizes the clamp, before
    # the fix in the lab's probes and in the gate's, and the clamp for the judge's path MTU fixes the pulls
    report = (tmp_path / "blob-host" / "REPORT.md").read_text()
    assert "clamp 1240" in report and "verify (passed):" in report and "PASS: healthy" in report
    assert "The clamp applied is for path MTU **1280**, the judge's" in report and "### after the fix: PASS" in report
    gate_before = report.split("### before the fix: FAIL", 1)[1].split("###", 1)[0]
    assert "FAIL: pmtu-black-hole" in gate_before and f"mss-sweep from cp1 to {lab_topology.BLOB_NAME}:443" in gate_before
    blob_cp1 = json.loads((tmp_path / "blob-host" / "before-cp1.json").read_text())
    assert all(r["ok"] for doc in blob_cp1 if doc["command"] == "http" for r in doc["records"])
    assert [d["mss_sweep"]["target"] for d in blob_cp1 if d["command"] == "mss-sweep"] == [f"{lab_topology.BLOB_NAME}:443"]
    before = json.loads((tmp_path / "blackhole" / "before-cp1.json").read_text())
    assert {r["error_class"] for doc in before if doc["command"] == "http" for r in doc["records"]} == {"tls_handshake_timeout"}
    pve = json.loads((tmp_path / "blackhole" / "before-pve.json").read_text())
    assert all(r["ok"] for doc in pve for r in doc["records"]), "the Proxmox host's egress must pass where the VMs fail"
    toward = json.loads((tmp_path / "toward-server" / "before-cp1.json").read_text())
    plain, big = ([r["ok"] for doc in toward if doc["command"] == "http" and doc["records"][0]["big_hello"] is flag for r in doc["records"]]
                  for flag in (False, True))
    assert all(plain) and not any(big), "toward the server only: plain hellos pass, large ones stall"
    silent = json.loads((tmp_path / "silent-server" / "before-cp1.json").read_text())
    assert next(d["mss_sweep"] for d in silent if d["command"] == "mss-sweep")["verdict"] == "unreachable"
    for scenario in KINDS:  # report.html and the charts beside every judged REPORT.md, the page's path printed
        assert f"lab: {scenario}: charts and report in one page: {(tmp_path / scenario / 'report.html').resolve()}" in result.stdout
        assert all(f"({name})" in (tmp_path / scenario / "REPORT.md").read_text() and (tmp_path / scenario / name).exists()
                   for name in ("chart-mss-sweep.svg", "chart-phases.svg", "chart-pulls.svg", "chart-failures.svg")), scenario
    strip = (tmp_path / "blackhole" / "chart-mss-sweep.svg").read_text()
    assert 'data-cliff-pass="1240" data-cliff-stall="1241"' in strip and 'data-clamp="1240"' in strip
    mirror = (tmp_path / "mirror" / "REPORT.md").read_text()
    for step in ("| cold pull through the mirror |", "| cached pull, upstream unreachable |", "| upstream unreachable, no mirror |",
                 "| mirror stopped |"):
        assert step in mirror and "| PASS: " in mirror.split(step, 1)[1].split("\n", 1)[0], step
    with exclusive():  # another lab run on this machine may hold namespaces of the same prefix between ours
        assert not [n for n in list_namespaces() if n.startswith(lab_topology.PREFIX)]


def test_the_labs_gate_runs_at_the_labs_settings_unless_given_the_stacks():
    """The lab's gate probes as its Phase 1 (3 repeats); `python -m bench gate` gives it the stack's defaults and `quick`."""
    lab_settings, defaults, quick = (lab_gate.validation(services.TEST_IMAGE, s) for s in (None, {}, {"quick": True}))
    assert (lab_settings.effective_repeats, lab_settings.budget_s) == (3, 60)
    assert (defaults.effective_repeats, defaults.budget_s, defaults.quick) == (20, 120, False)
    assert (quick.effective_repeats, quick.budget_s) == (3, 120)
    assert lab_settings.images == defaults.images == (services.TEST_IMAGE,) and defaults.endpoints == tuple(probing.ENDPOINTS)


FIXTURE = json.loads((REPO / "tests" / "probes" / "fixtures" / "blackhole.json").read_text())
BLACKHOLE = SCENARIOS["blackhole"]


def test_the_black_hole_scenario_fails_unless_the_fix_is_applied_verified_and_leaves_the_path_healthy():
    before = diagnose(FIXTURE["evidence"], FIXTURE["reference"])
    after = diagnose(FIXTURE["after"], FIXTURE["reference"])
    verified = AppliedFix("script", "ok", True)
    assert check(BLACKHOLE, before, verified, after) == []
    assert check(BLACKHOLE, before, None, None) == ["no clamp was measured, so no fix was applied"]
    assert check(BLACKHOLE, before, AppliedFix("script", "missing", False), after) == ["the gateway's verify failed"]
    assert check(BLACKHOLE, before, verified, before) == ["after the fix: fail pmtu-black-hole"]


def test_a_scenario_fails_when_the_judge_names_another_kind_or_claims_the_mss_fix():
    before = diagnose(FIXTURE["evidence"], FIXTURE["reference"])
    assert check(SCENARIOS["silent-server"], before, None, None) == ["the judge says pmtu-black-hole", "the judge says the MSS fix applies"]


def test_pmtu_mode_does_not_fix_a_narrow_link_beyond_the_gateway_but_the_fixed_mss_does(tmp_path):
    require_root()
    with Topology("nstp-") as topo:
        lab_topology.build(topo, narrow_mtu=1280)
        svc = services.start(topo, tmp_path)

        def cp1_ok() -> bool:
            docs = {"cp1": probing.agent(topo, "cp1", "http", "https://ghcr.io/v2/", "--ca-file", str(svc.cert.ca), "--timeout", "2")}
            return diagnose(docs).kind == "healthy"

        assert not cp1_ok()
        pmtu = GatewayRules.build([lab_topology.VM_SUBNET], stack="homelab", pmtu=True)
        topo.run("gw", "env", f"NETSTAB_ROOT={tmp_path}", "sh", "-c", gateway_script("apply", "nftables", pmtu))
        assert not cp1_ok(), "clamping to the gateway's own route MTU cannot know the narrow link upstream"
        fixed = GatewayRules.build([lab_topology.VM_SUBNET], stack="homelab", path_mtu=1280, mtu=1400)
        topo.run("gw", "env", f"NETSTAB_ROOT={tmp_path}", "sh", "-c", gateway_script("apply", "nftables", fixed))
        assert cp1_ok()
        topo.run("gw", "env", f"NETSTAB_ROOT={tmp_path}", "sh", "-c", gateway_script("remove", "nftables", fixed))
        assert not cp1_ok(), "removing the fix brings the black hole back"


def test_the_iptables_flavor_fixes_the_black_hole_too(tmp_path):
    require_root()
    with Topology("nsti-") as topo:
        lab_topology.build(topo, narrow_mtu=1280)
        svc = services.start(topo, tmp_path)
        rules = GatewayRules.build([lab_topology.VM_SUBNET], stack="homelab", path_mtu=1280, mtu=1400)
        topo.run("gw", "env", f"NETSTAB_ROOT={tmp_path}", "sh", "-c", gateway_script("apply", "iptables", rules))
        doc = probing.agent(topo, "worker1", "http", "https://registry-1.docker.io/v2/", "--ca-file", str(svc.cert.ca), "--timeout", "2", "--repeat", "3")
        assert all(r["ok"] for r in doc["records"]), doc["records"]


def test_the_lab_refuses_to_run_without_root(monkeypatch, capsys, tmp_path):
    """As a non-root user sees it (euid faked: a real unprivileged user may not even read a CI clone)."""
    from lab import __main__ as lab_main

    monkeypatch.setattr(lab_main.os, "geteuid", lambda: 1000)
    assert lab_main.main(["--report", str(tmp_path)]) == 2
    assert "the lab needs root: it creates network namespaces" in capsys.readouterr().err
    assert not list(tmp_path.iterdir()), "nothing is written before the refusal"


def test_ctrl_c_cleans_up_the_namespaces(tmp_path):
    require_root()
    proc = subprocess.Popen([sys.executable, "-m", "lab", "--report", str(tmp_path)], cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 300  # it may first wait for another namespace user's lock
    line = ""
    while "Phase 1 probes" not in line and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 1)[0]:
            line = proc.stdout.readline()
    assert "Phase 1 probes" in line, "the lab never reached its probes"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; namespaces removed" in err
    with exclusive():
        assert not [n for n in list_namespaces() if n.startswith(lab_topology.PREFIX)]
        assert not [p for p in os.listdir("/etc/netns") if p.startswith(lab_topology.PREFIX)] if os.path.isdir("/etc/netns") else True
