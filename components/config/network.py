"""The `network` section and its rules."""

from __future__ import annotations

from typing import Annotated

from components.config.base import Problems, Section, default, rule
from components.config.fields import CIDR, IP, STRING_ITEMS, Check, IPList, Text, between, string_list

MTU_MIN, MTU_MAX = 576, 9000
# Guest NIC name the cloud-init network config pins by MAC; flannel binds to it.
GUEST_INTERFACE = "eth0"


class NetworkConfig(Section):
    """The VM subnet every node and the mirror live on."""

    bridge: Text
    """Proxmox bridge every VM NIC attaches to (vmbr0)."""
    subnet: CIDR
    """The VM subnet; node, mirror and gateway addresses are inside it."""
    gateway: IP
    """Default route of the VMs, inside the subnet."""
    dns: IPList
    """Resolvers of the VMs, at least one."""
    search_domains: Annotated[tuple[str, ...], Check("a list of domain names", string_list, STRING_ITEMS)] = default([])
    """DNS search list."""
    mtu: Annotated[int, between(MTU_MIN, MTU_MAX)]
    """MTU of every NIC and guest interface (the plan's 1400)."""
    vlan: Annotated[int, between(1, 4094)] | None = None
    """VLAN tag of every VM NIC."""

    @rule("subnet", "gateway")
    def _gateway_inside_subnet(self) -> Problems:
        if self.gateway not in self.subnet:
            yield ("gateway",), f"{self.gateway} is outside network.subnet {self.subnet}; use an address inside it"

    @rule("dns")
    def _at_least_one_resolver(self) -> Problems:
        if not self.dns:
            yield ("dns",), "needs at least one resolver address"
