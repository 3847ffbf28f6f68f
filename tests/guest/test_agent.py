"""The guest agent answers as `qm guest exec` needs, and the rendered converge script runs through it:
the live MTU changes, and a network whose gateway does not answer is rolled back."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import NetworkConfig
from components.render.guest import NETPLAN_PATH, network_check_script, network_converge_script, via_guest_agent
from lab.guest_agent import RUN_DIR_ENV, guest_exec, qga

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qm_bin(tmp_path_factory) -> Path:
    """A `qm` on PATH: the stand-in (lab/guest_agent.py) for Proxmox's."""
    bin_dir = tmp_path_factory.mktemp("qm-bin")
    (bin_dir / "qm").write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m lab.guest_agent "$@"\n')
    (bin_dir / "qm").chmod(0o755)
    return bin_dir


def _on_proxmox_host(guest, qm_bin: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A rendered host-side step, run as the program runs it on the Proxmox host."""
    env = {"PATH": f"{qm_bin}:/usr/bin:/bin", RUN_DIR_ENV: str(guest.run_dir)}
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=300, env=env)


def _live_mtu(guest) -> int:
    return int(guest.sh("cat /sys/class/net/eth0/mtu")["out-data"])


def _network(guest, **changes) -> NetworkConfig:
    return guest.config.network.model_copy(update=changes)


def test_the_agent_answers_guest_exec_and_guest_exec_status(guest):
    assert qga(guest.qga, "guest-ping") == {}
    result = guest_exec(guest.qga, ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == {"exited": 1, "exitcode": 3, "out-data": "out\n", "err-data": "err\n"}


def test_the_qm_stand_in_prints_what_qm_guest_exec_prints(guest, qm_bin):
    done = subprocess.run(["qm", "guest", "exec", str(guest.node.vm_id), "--timeout", "30", "--pass-stdin", "1", "--", "/bin/sh", "-s"],
                          input="hostname\n", capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{qm_bin}:/usr/bin:/bin", RUN_DIR_ENV: str(guest.run_dir)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"exitcode": 0, "exited": 1, "out-data": f"{guest.node.name}\n"}


def test_the_first_boot_check_passes_through_the_agent(guest, qm_bin):
    script = via_guest_agent(guest.node.vm_id, network_check_script(guest.node, guest.config.network))
    done = _on_proxmox_host(guest, qm_bin, script)
    assert done.returncode == 0, done.stderr
    assert "eth0 has MTU 1400 and 10.27.27.11/24" in done.stdout


def test_the_converge_script_changes_the_live_mtu_through_the_agent_and_back(guest, qm_bin):
    node = guest.node
    lower = via_guest_agent(node.vm_id, network_converge_script(node, _network(guest, mtu=1380)))
    done = _on_proxmox_host(guest, qm_bin, lower)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "network converged: eth0 MTU 1380" in done.stdout
    assert _live_mtu(guest) == 1380
    again = _on_proxmox_host(guest, qm_bin, lower)
    assert again.returncode == 0 and "nothing to do" in again.stdout, "applying the same network twice does nothing"
    back = _on_proxmox_host(guest, qm_bin, via_guest_agent(node.vm_id, network_converge_script(node, guest.config.network)))
    assert back.returncode == 0, back.stderr
    assert _live_mtu(guest) == 1400


def test_a_network_whose_gateway_does_not_answer_is_rolled_back(guest, qm_bin):
    node = guest.node
    before = guest.sh(f"cat {NETPLAN_PATH}")["out-data"]
    dead = _network(guest, mtu=1380, gateway=ipaddress.ip_address("10.27.27.254"))  # nobody answers there
    done = _on_proxmox_host(guest, qm_bin, via_guest_agent(node.vm_id, network_converge_script(node, dead, gateway_wait_s=8)))
    assert done.returncode == 1
    assert "the previous config is restored" in done.stderr
    assert guest.sh(f"cat {NETPLAN_PATH}")["out-data"] == before
    assert _live_mtu(guest) == 1400
    assert guest.ssh("true").returncode == 0, "the node is reachable again on its own network"
