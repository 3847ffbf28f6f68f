"""The guest network steps on a real kernel: a namespace plays the guest (eth0 on the VM subnet), a
second one its gateway; a stand-in `netplan` applies the file with `ip`, as netplan would; a
stand-in `qm` runs the guest script locally and answers in `qm guest exec`'s JSON."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import pytest

from components.render import guest
from lab.netns import Topology
from tests.real.conftest import require_root

FAKE_NETPLAN = f"""#!{sys.executable}
import subprocess, sys, os, yaml
assert sys.argv[1:] == ["apply"], sys.argv
path = os.environ.get("NETSTAB_ROOT", "") + "{guest.NETPLAN_PATH}"
eth0 = yaml.safe_load(open(path))["network"]["ethernets"]["eth0"]
run = lambda *a: subprocess.run(["ip", *a], check=True)
run("link", "set", "eth0", "mtu", str(eth0["mtu"]))
run("addr", "flush", "dev", "eth0")
for address in eth0["addresses"]:
    run("addr", "add", address, "dev", "eth0")
for route in eth0["routes"]:
    run("route", "replace", "default" if route["to"] == "0.0.0.0/0" else route["to"], "via", route["via"])
"""

FAKE_QM = f"""#!{sys.executable}
import json, subprocess, sys
args = sys.argv[1:]
assert args[:2] == ["guest", "exec"] and "--pass-stdin" in args, args
command = args[args.index("--") + 1:]
timeout = int(args[args.index("--timeout") + 1])
try:
    done = subprocess.run(command, input=sys.stdin.read(), capture_output=True, text=True, timeout=timeout)
    print(json.dumps({{"exited": 1, "exitcode": done.returncode, "out-data": done.stdout, "err-data": done.stderr}}))
except subprocess.TimeoutExpired:
    print(json.dumps({{"exited": 0, "pid": 1}}))
"""


@pytest.fixture
def vm(tmp_path, homelab):
    """cp1 at 10.27.27.11/24 MTU 1400 behind its gateway 10.27.27.1, with stand-in netplan and qm."""
    require_root()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("netplan", FAKE_NETPLAN), ("qm", FAKE_QM)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "root/etc/netplan").mkdir(parents=True)
    with Topology("nstv-") as topo:
        topo.add_host("cp1")
        topo.add_host("gw")
        topo.link("cp1", "eth0", "gw", "br-vm", mtu=1400)
        topo.addr("cp1", "eth0", "10.27.27.11/24")
        topo.addr("gw", "br-vm", "10.27.27.1/24")
        topo.route("cp1", "default", "10.27.27.1")
        topo.env = [f"PATH={bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", f"NETSTAB_ROOT={tmp_path / 'root'}"]
        topo.netplan_file = tmp_path / "root" / guest.NETPLAN_PATH.lstrip("/")
        yield topo


def run(topo: Topology, script: str, on_host: bool = False):
    argv = ["env", *topo.env, "sh", "-c", script] if on_host else ["env", *topo.env, "sh", "-s"]
    return topo.run("cp1", *argv, check=False, timeout=60, input_text=None if on_host else script)


def mtu(topo: Topology) -> int:
    return int(topo.run("cp1", "cat", "/sys/class/net/eth0/mtu").stdout)


def test_the_first_boot_check_passes_on_the_rendered_network_and_fails_off_it(vm, homelab):
    ok = run(vm, guest.network_check_script(homelab.server, homelab.network))
    assert ok.returncode == 0, ok.stderr
    vm.run("cp1", "ip", "link", "set", "eth0", "mtu", "1500")
    bad = run(vm, guest.network_check_script(homelab.server, homelab.network))
    assert bad.returncode == 1 and "does not carry the rendered network (want MTU 1400" in bad.stderr


def test_an_mtu_change_converges_the_running_guest(vm, homelab):
    network = homelab.network.model_copy(update={"mtu": 1280})
    done = run(vm, guest.network_converge_script(homelab.server, network))
    assert done.returncode == 0, done.stderr
    assert mtu(vm) == 1280
    assert "mtu: 1280" in vm.netplan_file.read_text()
    again = run(vm, guest.network_converge_script(homelab.server, network))
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_config_that_loses_the_gateway_is_rolled_back(vm, homelab):
    run(vm, guest.network_converge_script(homelab.server, homelab.network))  # the known-good file in place
    good = vm.netplan_file.read_text()
    wrong = homelab.network.model_copy(update={"gateway": ipaddress.ip_address("10.27.27.99"), "mtu": 1300})
    done = run(vm, guest.network_converge_script(homelab.server, wrong, gateway_wait_s=2))
    assert done.returncode == 1 and "the previous config is restored" in done.stderr
    assert vm.netplan_file.read_text() == good
    assert mtu(vm) == 1400, "the previous config is applied again"


def test_an_image_without_netplan_says_the_vm_must_be_replaced(vm, homelab, tmp_path):
    # this machine's own tools, without netplan (`make deps` installs netplan.io for the render checks)
    bare = tmp_path / "no-netplan"
    bare.mkdir()
    for folder in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for tool in Path(folder).iterdir():
            if tool.name != "netplan" and not (bare / tool.name).exists() and os.access(tool, os.X_OK):
                (bare / tool.name).symlink_to(tool)
    vm.env[0] = f"PATH={bare}"
    done = run(vm, guest.network_converge_script(homelab.server, homelab.network))
    assert done.returncode == 1 and "has no netplan" in done.stderr and "Replace the VM" in done.stderr


def test_the_guest_agent_wrapper_passes_output_and_exit_status_through(vm, homelab):
    network = homelab.network.model_copy(update={"mtu": 1280})
    wrapped = guest.via_guest_agent(2711, guest.network_converge_script(homelab.server, network))
    done = run(vm, wrapped, on_host=True)
    assert done.returncode == 0, done.stderr
    assert "network converged: eth0 MTU 1280" in done.stdout and mtu(vm) == 1280
    failing = run(vm, guest.via_guest_agent(2711, "echo broken >&2; exit 3\n"), on_host=True)
    assert failing.returncode == 3 and "broken" in failing.stderr
    stuck = run(vm, guest.via_guest_agent(2711, "sleep 5\n", timeout_s=1), on_host=True)
    assert stuck.returncode == 1 and "did not finish inside VM 2711 within 1s" in stuck.stderr



def test_the_first_update_after_boot_leaves_the_file_cloud_init_wrote_for_the_same_config(vm, homelab):
    """Issue 22: the comparison reads both files as YAML, so cloud-init's header and layout are no change."""
    from components.render.cloudinit import network_document
    from tests.real.test_netplan_compare import cloud_init_file

    written = cloud_init_file(network_document(homelab.server, homelab.network))
    vm.netplan_file.write_text(written)
    done = run(vm, guest.network_converge_script(homelab.server, homelab.network))
    assert done.returncode == 0 and "nothing to do" in done.stdout, done.stderr
    assert vm.netplan_file.read_text() == written, "not rewritten, and netplan apply did not run"
