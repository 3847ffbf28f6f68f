"""Cloud-init and K3s scripts as rendered for the homelab stack and variations of it."""

from __future__ import annotations

import ipaddress

import yaml
from hypothesis import given
from hypothesis import strategies as st

from components.config import NodeConfig
from components.render import cloudinit, k3s
from components.render.shell import as_root
from tests.render.files import files_of


def test_network_config_carries_mtu_address_route_and_dns(homelab):
    for node in homelab.nodes:
        doc = yaml.safe_load(cloudinit.network_config(node, homelab.network))
        eth0 = doc["ethernets"]["eth0"]
        assert doc["version"] == 2
        assert eth0["mtu"] == 1400
        assert eth0["addresses"] == [f"{node.ip}/24"]
        assert eth0["routes"] == [{"to": "0.0.0.0/0", "via": "10.27.27.1"}]
        assert eth0["nameservers"]["addresses"] == ["10.27.27.1", "1.1.1.1"]
        assert eth0["match"]["macaddress"] == node.mac


def test_network_config_follows_a_changed_mtu(homelab):
    network = homelab.network.model_copy(update={"mtu": 1280})
    doc = yaml.safe_load(cloudinit.network_config(homelab.server, network))
    assert doc["ethernets"]["eth0"]["mtu"] == 1280


@given(st.integers(min_value=100, max_value=999_999_999))
def test_mac_survives_yaml_as_a_string(vm_id):
    # A MAC such as 02:10:53:00:10:11 is a base-60 integer to YAML 1.1 parsers unless quoted.
    node = NodeConfig(name="n", role="agent", vm_id=vm_id, ip=ipaddress.ip_address("10.0.0.2"), cores=1, memory_mb=1024, disk_gb=8)
    net = _net()
    doc = yaml.safe_load(cloudinit.network_config(node, net))
    mac = doc["ethernets"]["eth0"]["match"]["macaddress"]
    assert mac == node.mac and isinstance(mac, str)
    assert int(mac.split(":")[0], 16) & 0b10, "locally administered bit must be set"


def _net():
    from components.config import NetworkConfig

    return NetworkConfig(bridge="vmbr0", subnet=ipaddress.ip_network("10.0.0.0/24"), gateway=ipaddress.ip_address("10.0.0.1"),
                         dns=(ipaddress.ip_address("10.0.0.1"),), mtu=1400)


def test_user_data_is_cloud_config_with_keys_and_guest_agent(homelab):
    text = cloudinit.user_data(homelab.server, homelab.ssh)
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert doc["users"][0]["ssh_authorized_keys"] == list(homelab.ssh.public_keys)
    assert "qemu-guest-agent" in doc["packages"]
    assert doc["hostname"] == "cp1"


def test_server_script_pins_version_node_ip_and_flannel_interface(homelab):
    script = k3s.server_install_script(homelab)
    assert "INSTALL_K3S_VERSION=v1.33.5+k3s1" in script
    assert "server --node-ip 10.27.27.11 --node-name cp1 --flannel-iface eth0" in script
    assert "read -r K3S_TOKEN" in script


def test_agent_script_joins_the_server(homelab):
    worker = homelab.agents[0]
    script = k3s.agent_install_script(homelab, worker)
    assert "K3S_URL=https://10.27.27.11:6443" in script
    assert "agent --node-ip 10.27.27.21 --node-name worker1 --flannel-iface eth0" in script


def test_nodes_ready_waits_for_every_node_by_name_with_the_configured_bound(homelab):
    script = k3s.nodes_ready_script(homelab)
    assert "for node in cp1 worker1 worker2;" in script
    assert "+ 600 ))" in script


def test_kubeconfig_is_rewritten_to_the_server_address():
    text = "clusters:\n- cluster:\n    server: https://127.0.0.1:6443\n"
    assert "server: https://10.27.27.11:6443" in k3s.rewrite_kubeconfig(text, "10.27.27.11", "netstab-homelab")


K3S_KUBECONFIG = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""


def test_kubeconfig_context_is_named_after_the_stack_so_a_merge_does_not_collide():
    doc = yaml.safe_load(k3s.rewrite_kubeconfig(K3S_KUBECONFIG, "10.27.27.11", "netstab-homelab"))
    assert doc["current-context"] == "netstab-homelab"
    assert doc["contexts"] == [{"context": {"cluster": "netstab-homelab", "user": "netstab-homelab"}, "name": "netstab-homelab"}]
    assert [c["name"] for c in doc["clusters"]] == ["netstab-homelab"] == [u["name"] for u in doc["users"]]
    assert doc["clusters"][0]["cluster"] == {"certificate-authority-data": "Q0E=", "server": "https://10.27.27.11:6443"}
    assert doc["users"][0]["user"]["client-key-data"] == "S0VZ"


def test_kubeconfig_without_the_loopback_server_is_refused():
    import pytest

    with pytest.raises(ValueError, match="no server https://127.0.0.1:6443"):
        k3s.rewrite_kubeconfig("server: https://elsewhere:6443", "10.27.27.11", "netstab-homelab")


def test_scripts_are_valid_posix_shell(homelab, tmp_path):
    import subprocess

    for relative, text in files_of(homelab).items():
        if relative.endswith(".sh"):
            path = tmp_path / relative.replace("/", "_")
            path.write_text(text)
            result = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, f"{relative}: {result.stderr}"


def test_as_root_keeps_the_script_intact_through_the_shell(tmp_path):
    import subprocess

    script = "echo \"it's $((1+1))\"\n"
    command = as_root(script).replace("sudo -n ", "")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert out.stdout == "it's 2\n"


def test_the_install_script_reads_the_token_from_stdin_only(tmp_path, homelab):
    """Run the script's token step for real: stdin in, exported variable out, nothing echoed."""
    import subprocess

    preamble = k3s.server_install_script(homelab).split("work=$(mktemp -d)")[0]
    assert "curl" not in preamble, "the probe must stop before the installer"
    probe = preamble + 'echo "len=${#K3S_TOKEN}"\n'
    out = subprocess.run(["sh", "-c", probe], input="s3cret-token-value", capture_output=True, text=True)
    assert out.stdout.strip() == "len=18" and "s3cret" not in out.stdout + out.stderr
    empty = subprocess.run(["sh", "-c", probe], input="", capture_output=True, text=True)
    assert empty.returncode == 1 and "no K3s token on stdin" in empty.stderr


def test_render_writes_every_node_artifact(homelab):
    files = files_of(homelab)
    for name in ("cp1", "worker1", "worker2"):
        for artifact in ("network-config.yaml", "user-data.yaml", "k3s-install.sh"):
            assert f"nodes/{name}/{artifact}" in files
