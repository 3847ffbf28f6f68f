"""The post-up gate's rendered probe run, executed in the real guest as the program runs it (over
SSH as ssh.user, the agent on stdin), through the lab gateway to the lab's internet: a black hole
beyond the gateway fails the gate, and with the gateway's clamp for the path MTU it measured the
gate passes. The Proxmox host's vantage point is the lab's pve namespace, as in the lab.

Runs last (file name): it changes the gateway's rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.kubeapi import GateError
from components.mss import mss_from_path_mtu
from components.networkgate import NetworkGateProvider
from components.render.shell import as_login_user
from components.render.validation import probe_script
from components.validation import gate_spec
from lab import gate as lab_gate
from lab import services
from lab import topology as lab_topology
from lab.scenarios import apply_fix
from probes import agent_source

GUEST_CA = "/etc/netstab-ring/lab-ca.pem"


@pytest.fixture(scope="module")
def internet(guest, tmp_path_factory):
    """The lab's registry and API behind the gateway; the guest trusts the lab CA and resolves the
    endpoints' real names as every lab host does (manage_etc_hosts rewrites /etc/hosts at boot only)."""
    work = tmp_path_factory.mktemp("internet")
    svc = services.start(guest.topo, work)
    hosts = "".join(f"{ip} {name}\n" for name, ip in sorted(lab_topology.NAMES.items()))
    setup = guest.sh(f"mkdir -p {Path(GUEST_CA).parent}\ncat > {GUEST_CA} <<'CA'\n{svc.cert.ca.read_text()}CA\ncat >> /etc/hosts <<'HOSTS'\n{hosts}HOSTS\n")
    assert setup["exitcode"] == 0, setup
    return svc, work


def _gate(guest, svc, report: Path, path_mtu: int | None) -> tuple[str, str]:
    config = lab_gate.validation(services.TEST_IMAGE)
    command = f"env SSL_CERT_FILE={GUEST_CA} " + as_login_user(probe_script("cp1", config, None))
    cp1 = guest.ssh(command, input_text=agent_source(), timeout=config.budget_s + 240)
    assert cp1.returncode == 0, cp1.stderr[-1000:]
    proxmox = guest.topo.run("pve", "env", f"SSL_CERT_FILE={svc.cert.ca}", "sh", "-c", probe_script("proxmox", config, None),
                             input_text=agent_source(), timeout=config.budget_s + 120)
    assert proxmox.returncode == 0, proxmox.stderr[-1000:]
    mss = mss_from_path_mtu(path_mtu, ipv6=False) if path_mtu else None
    spec = gate_spec(config, report, mss, "auto", remeasure=0, stack="guest-ring")
    try:
        created = NetworkGateProvider().create({"runs": {"cp1": cp1.stdout, "proxmox": proxmox.stdout}, "spec": spec, "run_id": "guest"})
    except GateError as failed:
        return "fail", str(failed)
    outs = created.outs or {}
    return str(outs["verdict"]), str(outs["summary"])


def test_the_gate_run_in_the_guest_finds_the_black_hole_and_passes_with_the_clamp(guest, internet, tmp_path):
    svc, work = internet
    verdict, text = _gate(guest, svc, tmp_path / "before", None)
    assert verdict == "fail" and "pmtu-black-hole" in text, text
    measured, _ = lab_gate.measure_from_gateway(guest.topo, svc.cert.ca, work / "gateway-root")
    assert measured == 1280, "the gateway measures the narrow link beyond it"
    assert f"clamp {mss_from_path_mtu(measured, ipv6=False)}" in text, text
    fix = apply_fix(guest.topo, measured, work / "gateway-root")
    assert fix.verified, fix.verify
    verdict, text = _gate(guest, svc, tmp_path / "after", measured)
    assert verdict == "pass", text
