"""The HA keys (issue 19): k3s.vip, k3s.vipInterface, the server count, nodes[].proxmoxNode and
proxmox.nodes. Each broken value is refused naming its key, every problem at once."""

from __future__ import annotations

import copy

import pytest

from components.config import parse_config
from components.stack import read_stack_file, stack_file
from tests.conftest import problems_of

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPve9HostKeyReplaceWithYourSshKeyscanOutput0 root@pve9"


@pytest.fixture
def ha_raw():
    raw, _ = read_stack_file(stack_file("homelab-ha"))
    return copy.deepcopy(raw)


def test_the_ha_stack_is_valid_and_spread(ha_raw):
    config = parse_config(ha_raw)
    assert [n.name for n in config.servers] == ["cp1", "cp2", "cp3"]
    assert config.ha and config.api_address == "10.27.27.10"
    assert [config.proxmox_node_of(n) for n in config.nodes] == ["pve1", "pve2", "pve3", "pve2", "pve3"]
    assert config.warnings() == []


def test_the_single_server_stack_is_not_ha(homelab):
    assert not homelab.ha and homelab.api_address == "10.27.27.11" and homelab.k3s.vip is None
    assert {homelab.proxmox_node_of(n) for n in homelab.nodes} == {"pve"}


@pytest.mark.parametrize("servers,ok", [(1, True), (2, False), (3, True), (4, False), (5, True), (6, False), (7, True)])
def test_server_count_is_one_or_odd(ha_raw, servers, ok):
    nodes = ha_raw["nodes"][:1]
    for i in range(1, servers + 2):
        nodes.append({**ha_raw["nodes"][0], "name": f"n{i}", "vmId": 3000 + i, "ip": f"10.27.27.{100 + i}",
                      "role": "server" if i < servers else "agent"})
    ha_raw["nodes"] = nodes
    if ok:
        assert len(parse_config(ha_raw).servers) == servers
    else:
        problems = problems_of(ha_raw)
        assert problems == [next(p for p in problems if p.startswith(f"nodes: has {servers} servers"))]
        assert "etcd" in problems[0] and f"majority ({servers // 2 + 1} of {servers})" in problems[0]


def test_more_than_one_server_needs_the_vip(ha_raw):
    del ha_raw["k3s"]["vip"]
    assert problems_of(ha_raw) == ["k3s.vip: missing: with 3 servers the API needs one address that moves between them; "
                                   "set k3s.vip to a free host address of network.subnet (kube-vip announces it)"]


def test_one_server_may_carry_a_vip_it_does_not_need(homelab_raw):
    homelab_raw["k3s"]["vip"] = "10.27.27.10"
    assert parse_config(homelab_raw).api_address == "10.27.27.11"  # one server: clients dial it, as before


@pytest.mark.parametrize("vip,expected", [
    ("10.28.0.10", "k3s.vip: 10.28.0.10 is outside network.subnet 10.27.27.0/24; kube-vip answers ARP on the VM subnet only: "
                   "pick a free address inside it"),
    ("10.27.27.0", "k3s.vip: 10.27.27.0 is the subnet's network or broadcast address; pick a free host address"),
    ("10.27.27.255", "k3s.vip: 10.27.27.255 is the subnet's network or broadcast address; pick a free host address"),
    ("10.27.27.1", "k3s.vip: 10.27.27.1 is the gateway's address (network.gateway); pick a free host address"),
    ("10.27.27.12", "k3s.vip: 10.27.27.12 is already the address of nodes[1]; the VIP must be an address no VM holds"),
    ("10.27.27.22", "k3s.vip: 10.27.27.22 is already the address of nodes[4]; the VIP must be an address no VM holds"),
    ("10.27.27.5", "k3s.vip: 10.27.27.5 is already the address of mirror; the VIP must be an address no VM holds"),
    ("10.27.27.300", "k3s.vip: '10.27.27.300' is not an IP address"),
])
def test_a_vip_that_is_not_free_on_the_subnet_is_refused(ha_raw, vip, expected):
    ha_raw["k3s"]["vip"] = vip
    assert problems_of(ha_raw) == [expected]


def test_vip_interface_defaults_to_none_and_is_an_interface_name(ha_raw):
    del ha_raw["k3s"]["vipInterface"]
    assert parse_config(ha_raw).k3s.vip_interface is None
    ha_raw["k3s"]["vipInterface"] = "eth0; reboot"
    assert [p.split(":")[0] for p in problems_of(ha_raw)] == ["k3s.vipInterface"]


def test_a_proxmox_node_not_listed_is_refused(ha_raw):
    ha_raw["nodes"][2]["proxmoxNode"] = "pve9"
    assert problems_of(ha_raw) == ["nodes[2].proxmoxNode: pve9 is not in proxmox.nodes; add it there with its address and sshHostKey "
                                   "(the steps on it connect over SSH), or use one of: pve1, pve2, pve3"]
    ha_raw["proxmox"]["nodes"].append({"name": "pve9", "address": "pve9.lan", "sshHostKey": HOST_KEY})
    assert parse_config(ha_raw).proxmox.placement("pve9") == ("pve9.lan", HOST_KEY)


@pytest.mark.parametrize("missing", ["address", "sshHostKey"])
def test_a_proxmox_node_without_address_or_host_key_is_refused(ha_raw, missing):
    del ha_raw["proxmox"]["nodes"][0][missing]
    assert problems_of(ha_raw) == [f"proxmox.nodes[0].{missing}: missing required key"]


def test_a_proxmox_node_listed_twice_is_refused(ha_raw):
    ha_raw["proxmox"]["nodes"].append(dict(ha_raw["proxmox"]["nodes"][0]))
    assert problems_of(ha_raw) == ["proxmox.nodes[2].name: pve2 is already listed as proxmox.nodes[0]; list each Proxmox node once"]


def test_placement_of_the_default_node_is_the_endpoint(ha_raw):
    px = parse_config(ha_raw).proxmox
    assert px.placement("pve1") == ("pve1.lan", px.ssh_host_key)
    assert px.placement("pve3")[0] == "pve3.lan"
    with pytest.raises(KeyError):
        px.placement("pve9")


def test_every_server_on_one_proxmox_node_is_a_warning_not_an_error(ha_raw):
    for node in ha_raw["nodes"]:
        node["proxmoxNode"] = "pve2"
    config = parse_config(ha_raw)
    assert config.warnings() == ["nodes: every server (cp1, cp2, cp3) runs on Proxmox node pve2: losing that node stops the whole "
                                 "control plane, which defeats HA; spread the servers with nodes[].proxmoxNode"]
    ha_raw["nodes"][0]["proxmoxNode"] = "pve1"  # two Proxmox nodes: no warning
    assert parse_config(ha_raw).warnings() == []


def test_every_ha_problem_at_once(ha_raw):
    ha_raw["nodes"][3]["role"] = "server"  # four servers
    ha_raw["k3s"]["vip"] = "10.27.27.1"
    ha_raw["nodes"][0]["proxmoxNode"] = "pve7"
    del ha_raw["proxmox"]["nodes"][1]["address"]
    assert [p.split(":")[0] for p in problems_of(ha_raw)] == [
        "proxmox.nodes[1].address", "nodes", "k3s.vip", "nodes[0].proxmoxNode"]
