"""The `network` section and its rules."""

from __future__ import annotations

from typing import Annotated

from components.config.base import Problems, Section, default, rule
from components.config.fields import (
    CIDR_NETWORK,
    IP,
    IP_ADDRESS,
    Check,
    Interface,
    IPAddress,
    IPNetwork,
    Refused,
    between,
    grammar,
    string_list,
)

MTU_MIN, MTU_MAX = 576, 9000
# Guest NIC name the cloud-init network config pins by MAC; flannel binds to it.
GUEST_INTERFACE = "eth0"
# Widest and narrowest VM subnet: the mirror's firewall admits the whole subnet; a gateway and a VM need two host addresses.
PREFIX_MIN, PREFIX_MAX = 8, 30


def _vm_subnet(subnet: IPNetwork) -> IPNetwork:
    if subnet.version == 6:
        # rendered URLs, K3S_URL and the registry addresses are not bracketed for IPv6 yet
        raise Refused(f"{subnet} is IPv6: IPv6 VM subnets are not supported yet; use an IPv4 subnet (gateway.ipv6Subnet also clamps an IPv6 prefix)")
    if subnet.prefixlen < PREFIX_MIN:
        raise Refused(f"{subnet} is too wide (/{subnet.prefixlen}): the mirror's firewall admits the whole subnet; "
                      f"use a prefix from /{PREFIX_MIN} to /{PREFIX_MAX}, such as 10.27.27.0/24")
    if subnet.prefixlen > PREFIX_MAX:
        raise Refused(f"{subnet} is too narrow (/{subnet.prefixlen}) for a gateway and the VMs; "
                      f"use a prefix from /{PREFIX_MIN} to /{PREFIX_MAX}, such as 10.27.27.0/24")
    return subnet


# A DNS search domain: dot-separated labels of letters, digits and inner '-', 253 characters at most.
DOMAIN = grammar(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def _search_domains(value: object) -> tuple[str, ...]:
    domains = string_list(value)
    for i, domain in enumerate(domains):
        if not DOMAIN.fullmatch(domain):  # it lands in netplan and resolv.conf, where a space or a quote splits it
            raise Refused(f"{domain!r} is not a domain name such as lan or home.arpa", at=(i,))
    return domains


SEARCH_DOMAINS_SCHEMA = {"type": "array", "items": {"type": "string", "pattern": DOMAIN.pattern}}


def _resolver(address: IPAddress) -> IPAddress:
    kind = ("the unspecified address" if address.is_unspecified else "a loopback address" if address.is_loopback
            else "a multicast address" if address.is_multicast else "a reserved address" if address.is_reserved else None)
    if kind:
        raise Refused(f"{address} is {kind}: the VMs cannot send DNS there; use a resolver such as 10.27.27.1 or 1.1.1.1")
    return address


class NetworkConfig(Section):
    """The VM subnet every node and the mirror live on."""

    bridge: Interface
    """Proxmox bridge every VM NIC attaches to (vmbr0)."""
    subnet: Annotated[IPNetwork, CIDR_NETWORK.then(_vm_subnet, pattern=r"^[0-9.]+/\d{1,2}$")]
    """The VM subnet, IPv4, /8 to /30; node, mirror and gateway addresses are inside it."""
    gateway: IP
    """Default route of the VMs, a host address of the subnet."""
    dns: tuple[Annotated[IPAddress, IP_ADDRESS.then(_resolver)], ...]
    """Resolvers of the VMs, at least one."""
    search_domains: Annotated[tuple[str, ...], Check("a list of domain names", _search_domains, SEARCH_DOMAINS_SCHEMA)] = default([])
    """DNS search list."""
    mtu: Annotated[int, between(MTU_MIN, MTU_MAX)]
    """MTU of every NIC and guest interface (the plan's 1400)."""
    vlan: Annotated[int, between(1, 4094)] | None = None
    """VLAN tag of every VM NIC."""

    @rule("subnet", "gateway")
    def _gateway_is_a_host_of_the_subnet(self) -> Problems:
        if self.gateway not in self.subnet:
            yield ("gateway",), f"{self.gateway} is outside network.subnet {self.subnet}; use an address inside it"
        elif self.gateway in (self.subnet.network_address, self.subnet.broadcast_address):
            yield ("gateway",), f"{self.gateway} is the subnet's network or broadcast address; use a host address"

    @rule("dns")
    def _at_least_one_resolver(self) -> Problems:
        if not self.dns:
            yield ("dns",), "needs at least one resolver address"
