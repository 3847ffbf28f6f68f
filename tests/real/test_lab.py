"""`make lab` end to end, and what the lab proves about the gateway fix on a real kernel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from components.render.gateway import GatewayRules, gateway_script
from lab import probing, services
from lab import topology as lab_topology
from lab.netns import Topology, list_namespaces, sh
from probes.verdict import diagnose
from tests.real.conftest import require_root

REPO = Path(__file__).resolve().parents[2]


def lab(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_every_scenario_is_diagnosed_right_and_the_black_hole_fix_is_verified(tmp_path):
    require_root()
    sh("ip", "netns", "add", f"{lab_topology.PREFIX}stale")  # as an interrupted run would leave it
    result = lab("all", "--report", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed 1 namespaces left by an interrupted run" in result.stdout
    for scenario in ("blackhole", "loss", "dns", "upstream-down", "mirror"):
        assert f"lab: {scenario}: PASS" in result.stdout
    report = (tmp_path / "blackhole" / "REPORT.md").read_text()
    assert "the MSS fix applies: clamp to 1240" in report and "| before | after |" in report
    for other in ("loss", "dns", "upstream-down"):
        assert "the MSS fix is not the answer here" in (tmp_path / other / "REPORT.md").read_text()
    before = json.loads((tmp_path / "blackhole" / "before-cp1.json").read_text())
    after = json.loads((tmp_path / "blackhole" / "after-cp1.json").read_text())
    assert before["schema"] == after["schema"] == "netstab.probe/v1"
    assert {r["error_class"] for r in before["records"]} == {"tls_handshake_timeout"}
    assert all(r["ok"] for r in after["records"])
    pve = json.loads((tmp_path / "blackhole" / "before-pve.json").read_text())
    assert all(r["ok"] for r in pve["records"]), "the Proxmox host's egress must pass where the VMs fail"
    mirror = (tmp_path / "mirror" / "REPORT.md").read_text()
    for step in ("| pull through the mirror (cold, then cached) |", "| upstream unreachable |", "| mirror stopped |"):
        assert step in mirror and "FAIL" not in mirror.split(step, 1)[1].split("\n", 1)[0]
    assert not [n for n in list_namespaces() if n.startswith(lab_topology.PREFIX)]


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
    proc = subprocess.Popen([sys.executable, "-m", "lab", "--report", str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not [n for n in list_namespaces() if n.startswith(lab_topology.PREFIX)] and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; namespaces removed" in err
    assert not [n for n in list_namespaces() if n.startswith(lab_topology.PREFIX)]
    assert not [p for p in os.listdir("/etc/netns") if p.startswith(lab_topology.PREFIX)] if os.path.isdir("/etc/netns") else True
