"""The NIC matched by the node's MAC carries the rendered network: MTU, address, route, resolvers."""

from __future__ import annotations

import json

from components.config import GUEST_INTERFACE


def _nic(guest) -> dict:
    links = json.loads(guest.sh("ip -j addr show")["out-data"])
    matched = [link for link in links if link.get("address") == guest.node.mac]
    assert len(matched) == 1, f"no single NIC with MAC {guest.node.mac}: {[link.get('address') for link in links]}"
    return matched[0]


def test_the_nic_with_the_nodes_mac_is_eth0_at_mtu_1400_with_the_stacks_address(guest):
    nic = _nic(guest)
    network = guest.config.network
    assert nic["ifname"] == GUEST_INTERFACE
    assert nic["mtu"] == network.mtu == 1400
    addresses = [f"{a['local']}/{a['prefixlen']}" for a in nic["addr_info"] if a["family"] == "inet"]
    assert addresses == [f"{guest.node.ip}/{network.subnet.prefixlen}"]


def test_the_default_route_goes_through_the_stacks_gateway(guest):
    routes = json.loads(guest.sh("ip -j route show default")["out-data"])
    assert [(r["gateway"], r["dev"]) for r in routes] == [(str(guest.config.network.gateway), GUEST_INTERFACE)]


def test_the_resolvers_and_search_domains_are_the_stacks(guest):
    network = guest.config.network
    dns = guest.sh(f"resolvectl dns {GUEST_INTERFACE}")["out-data"]
    assert dns.split(":", 1)[1].split() == [str(a) for a in network.dns], dns
    domains = guest.sh(f"resolvectl domain {GUEST_INTERFACE}")["out-data"]
    assert domains.split(":", 1)[1].split() == list(network.search_domains), domains
