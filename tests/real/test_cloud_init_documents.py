"""Every rendered cloud-init document, checked by the programs that read it on a VM: user-data by
`cloud-init schema --config-file` (Debian's cloud-init, `make deps`), network-config by
`netplan generate --root-dir` (netplan.io), as cloud-init hands it to netplan (under `network:`).

A user-data that fails the schema boots "degraded": cloud-init logs "cloud-config failed schema
validation!" and `cloud-init status` exits 2 (the old `ssh_genkeytypes: []` did that on every VM).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.hostkeys import generate
from components.render.cloudinit import install_host_key
from tests.render.files import files_of


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        pytest.fail(f"{name} is missing: run `make deps` as root (Debian packages cloud-init and netplan.io)")
    return path


def _documents(homelab, suffix: str) -> dict[str, str]:
    """Every node's and the mirror VM's rendered document of that kind (the homelab stack renders both)."""
    found = {path: text for path, text in files_of(homelab).items() if path.endswith(suffix)}
    assert {p.split("/")[-2] for p in found} == {*(n.name for n in homelab.nodes), "mirror"}, sorted(found)
    return found


def schema_check(tmp_path: Path, user_data: str) -> subprocess.CompletedProcess[str]:
    """`cloud-init schema` on the user-data as the VM receives it: its host key installed."""
    private, public = generate("netstab-host-test")
    path = tmp_path / "user-data.yaml"
    path.write_text(install_host_key(user_data, private, public))
    return subprocess.run([_tool("cloud-init"), "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=60)


def netplan_generate(root: Path, network_config: str) -> subprocess.CompletedProcess[str]:
    """`netplan generate` in a root of its own, on the network-config as cloud-init writes it for netplan."""
    netplan_dir = root / "etc" / "netplan"
    netplan_dir.mkdir(parents=True)
    path = netplan_dir / "50-cloud-init.yaml"
    path.write_text(yaml.safe_dump({"network": yaml.safe_load(network_config)}, sort_keys=False))
    path.chmod(0o600)  # netplan warns about readable files
    return subprocess.run([_tool("netplan"), "generate", "--root-dir", str(root)], capture_output=True, text=True, timeout=60)


def test_every_rendered_user_data_passes_cloud_inits_schema(homelab, tmp_path):
    for path, text in _documents(homelab, "user-data.yaml").items():
        done = schema_check(tmp_path, text)
        assert done.returncode == 0 and "Valid cloud-config" in done.stdout, f"{path}: {done.stdout}{done.stderr}"
        assert "ssh_genkeytypes" not in yaml.safe_load(text), path


def test_the_old_empty_ssh_genkeytypes_fails_the_schema(homelab, tmp_path):
    """The counterfactual: the check above catches what booted every VM degraded."""
    text = _documents(homelab, "user-data.yaml")["nodes/cp1/user-data.yaml"]
    old = text.replace("ssh_deletekeys: true\n", "ssh_deletekeys: true\nssh_genkeytypes: []\n")
    assert old != text
    done = schema_check(tmp_path, old)
    assert done.returncode != 0
    assert "ssh_genkeytypes" in done.stdout + done.stderr, done.stdout + done.stderr


def test_every_rendered_network_config_generates_with_netplan_at_the_stacks_mtu(homelab, tmp_path):
    for n, (path, text) in enumerate(_documents(homelab, "network-config.yaml").items()):
        root = tmp_path / str(n)
        done = netplan_generate(root, text)
        assert done.returncode == 0, f"{path}: {done.stdout}{done.stderr}"
        networkd = (root / "run" / "systemd" / "network" / "10-netplan-eth0.network").read_text()
        link = (root / "run" / "systemd" / "network" / "10-netplan-eth0.link").read_text()
        assert f"MTUBytes={homelab.network.mtu}" in networkd and f"MTUBytes={homelab.network.mtu}" in link, networkd + link
        assert f"Gateway={homelab.network.gateway}" in networkd


@pytest.mark.parametrize("breakage", [("mtu: 1400", "mtu: lots"), ("macaddress:", "macadress:"), ("version: 2", "version: 3")],
                         ids=["mtu_not_a_number", "misspelt_key", "wrong_version"])
def test_a_broken_network_config_fails_netplan_generate(homelab, tmp_path, breakage):
    """The counterfactual: netplan refuses what would leave a VM without its network."""
    text = _documents(homelab, "network-config.yaml")["nodes/cp1/network-config.yaml"]
    broken = text.replace(*breakage)
    assert broken != text
    done = netplan_generate(tmp_path, broken)
    assert done.returncode != 0, done.stdout + done.stderr
