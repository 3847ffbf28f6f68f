"""Each broken config breaks one rule and must name its key path, and say what is expected."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_config


def _set(raw, path, value):
    """Set (or, with value=DELETE, remove) a dotted path such as 'nodes[1].ip' in a raw config."""
    *parents, last = path.replace("]", "").replace("[", ".").split(".")
    target = raw
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key = int(last) if last.isdigit() else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value


DELETE = object()

# (rule, edits, expected "path: fragment" in the error list)
BROKEN = [
    ("subnet_not_a_cidr", [("network.subnet", "10.27.27.0")], "network.subnet: '10.27.27.0' is not a CIDR"),
    ("subnet_host_bits_set", [("network.subnet", "10.27.27.5/24")], "network.subnet: '10.27.27.5/24' is not a CIDR"),
    ("gateway_not_an_ip", [("network.gateway", "10.27.27.300")], "network.gateway: '10.27.27.300' is not an IP address"),
    ("gateway_outside_subnet", [("network.gateway", "10.27.28.1")], "network.gateway: 10.27.28.1 is outside network.subnet"),
    ("dns_entry_not_an_ip", [("network.dns", ["10.27.27.1", "one.one"])], "network.dns[1]: 'one.one' is not an IP address"),
    ("mtu_too_small", [("network.mtu", 500)], "network.mtu: 500 is not an integer in 576..9000"),
    ("mtu_too_large", [("network.mtu", 9216)], "network.mtu: 9216 is not an integer in 576..9000"),
    ("mtu_not_a_number", [("network.mtu", "jumbo")], "network.mtu: 'jumbo' is not an integer"),
    ("node_ip_outside_subnet", [("nodes[1].ip", "192.168.1.21")], "nodes[1].ip: 192.168.1.21 is outside network.subnet 10.27.27.0/24"),
    ("node_ip_is_gateway", [("nodes[2].ip", "10.27.27.1")], "nodes[2].ip: 10.27.27.1 is the gateway's address"),
    ("node_ip_is_broadcast", [("nodes[2].ip", "10.27.27.255")], "nodes[2].ip: 10.27.27.255 is the subnet's network or broadcast"),
    ("node_ip_malformed", [("nodes[0].ip", "10.27.27")], "nodes[0].ip: '10.27.27' is not an IP address"),
    ("duplicate_vm_id", [("nodes[2].vmId", 2721)], "nodes[2].vmId: 2721 is already used by nodes[1]"),
    ("duplicate_name", [("nodes[2].name", "worker1")], "nodes[2].name: worker1 is already used by nodes[1]"),
    ("duplicate_ip", [("nodes[2].ip", "10.27.27.21")], "nodes[2].ip: 10.27.27.21 is already used by nodes[1]"),
    ("missing_bridge", [("network.bridge", DELETE)], "network.bridge: missing required key"),
    ("missing_k3s_version", [("k3s.version", DELETE)], "k3s.version: missing required key"),
    ("missing_nodes", [("nodes", DELETE)], "nodes: missing required key"),
    ("unknown_key_in_section", [("network.mut", 1400)], "network.mut: unknown key; expected one of: bridge"),
    ("unknown_top_level_key", [("netwrok", {})], "netwrok: unknown key"),
    ("unknown_key_in_node", [("nodes[0].memory", 4096)], "nodes[0].memory: unknown key"),
    ("bad_role", [("nodes[1].role", "worker")], "nodes[1].role: 'worker' is not one of server, agent"),
    ("no_server", [("nodes[0].role", "agent")], "nodes: needs exactly one node with role: server (found 0)"),
    ("two_servers", [("nodes[1].role", "server")], "nodes: needs exactly one node with role: server (found 2)"),
    ("bad_hostname", [("nodes[0].name", "CP_1")], "nodes[0].name: 'CP_1' is not a hostname"),
    ("vm_id_below_proxmox_minimum", [("nodes[0].vmId", 99)], "nodes[0].vmId: 99 is not an integer in 100..999999999"),
    ("k3s_version_unpinned", [("k3s.version", "latest")], "k3s.version: 'latest' is not a K3s release"),
    ("endpoint_not_https", [("proxmox.endpoint", "http://pve:8006")], "proxmox.endpoint: 'http://pve:8006' is not an https:// URL"),
    ("image_both_url_and_template", [("image.templateVmId", 9000)], "image: set exactly one of image.url"),
    ("ssh_private_key_as_public", [("ssh.publicKeys", ["-----BEGIN OPENSSH PRIVATE KEY-----"])], "ssh.publicKeys: "),
    ("section_not_a_mapping", [("network", "10.27.27.0/24")], "network: expected a mapping"),
    ("secret_in_plain_text", [("k3sToken", "hunter2")], "netstab:k3sToken: is stored in plain text; set it with: pulumi config set --secret netstab:k3sToken"),
]


@pytest.mark.parametrize("rule,edits,expected", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_config_names_its_key_path(homelab_raw, rule, edits, expected):
    for path, value in edits:
        _set(homelab_raw, path, value)
    with pytest.raises(ConfigError) as caught:
        parse_config(homelab_raw)
    assert any(expected in line for line in caught.value.problems), f"{rule}: no problem line contains {expected!r}; got:\n{caught.value}"


def test_every_problem_is_reported_at_once(homelab_raw):
    _set(homelab_raw, "network.mtu", 100)
    _set(homelab_raw, "nodes[1].ip", "10.0.0.1")
    _set(homelab_raw, "nodes[2].vmId", 2711)
    _set(homelab_raw, "k3s.colour", "blue")
    with pytest.raises(ConfigError) as caught:
        parse_config(homelab_raw)
    paths = {line.split(":", 1)[0] for line in caught.value.problems}
    assert {"network.mtu", "nodes[2].vmId", "k3s.colour"} <= paths, caught.value.problems
    # node IPs are checked against the subnet only once the network section is valid
    assert "nodes[1].ip" not in paths


def test_the_homelab_stack_is_valid_and_has_the_plans_shape(homelab):
    assert str(homelab.network.subnet) == "10.27.27.0/24"
    assert homelab.network.mtu == 1400
    assert homelab.server.name == "cp1"
    assert [n.name for n in homelab.agents] == ["worker1", "worker2"]


def test_defaults_fill_optional_keys(homelab_raw):
    del homelab_raw["k3s"]["readyTimeoutSeconds"]
    for node in homelab_raw["nodes"]:
        del node["cores"]
    config = parse_config(homelab_raw)
    assert config.k3s.ready_timeout_s == 600
    assert {n.cores for n in config.nodes} == {2}


def test_image_file_name_defaults_to_the_url_basename(homelab):
    assert homelab.image.file_name == "noble-server-cloudimg-amd64.img"


def test_a_template_instead_of_an_image_url_is_accepted(homelab_raw):
    homelab_raw["image"] = {"templateVmId": 9000}
    config = parse_config(homelab_raw)
    assert config.image.template_vm_id == 9000 and config.image.url is None
