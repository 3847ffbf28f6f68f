"""The `gateway` section and its rules (MSS against the network's MTU: components.config.stack)."""

from __future__ import annotations

from typing import Annotated, Any

from components.config.base import Problems, Section, rule
from components.config.fields import CIDR_NETWORK, Bool, Check, Host, HostKey, Interface, IPNetwork, Refused, UserName, between, one_of
from components.config.network import MTU_MAX, MTU_MIN


def _ipv6(subnet: IPNetwork) -> IPNetwork:
    if subnet.version != 6:
        raise Refused(f"{subnet} is not an IPv6 CIDR")
    return subnet


def _path_mtu(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    return int(between(MTU_MIN, MTU_MAX).convert(value))


GATEWAY_KINDS = ("linux", "opnsense", "pfsense", "openwrt", "mikrotik", "other")
FLAVORS = ("nftables", "iptables")


class GatewayConfig(Section):
    """Where the VM subnet leaves for the internet, and how its MSS is clamped there.

    `manage: true` applies the rules over SSH (Linux gateways, often the Proxmox host itself);
    otherwise `render` writes gateway/MANUAL.md with the settings to enter by hand.
    """

    manage: Bool = False
    """Apply the clamp over SSH (Linux gateways only); false: follow gateway/MANUAL.md by hand."""
    kind: Annotated[str, one_of(GATEWAY_KINDS)] = "linux"
    """What the gateway runs; MANUAL.md gives the settings for each kind."""
    host: Host | None = None
    """The gateway's SSH address (often the Proxmox host); needed with manage: true."""
    user: UserName = "root"
    """SSH user on the gateway."""
    port: Annotated[int, between(1, 65535)] = 22
    """SSH port of the gateway."""
    host_key: HostKey | None = None
    """The gateway's SSH host key, pinned (ssh-keyscan -t ed25519 HOST); needed with manage: true."""
    flavor: Annotated[str, one_of(FLAVORS)] = "nftables"
    """nftables (a table of the stack's own, inet netstab_<stack>) or iptables (rules tagged netstab:<stack>: in mangle and filter FORWARD)."""
    mss: Annotated[int, between(1, 65535)] | None = None
    """Clamp to this MSS (IPv4; IPv6 gets 20 less)."""
    path_mtu: Annotated[int | str, Check(f"an integer in {MTU_MIN}..{MTU_MAX} or auto", _path_mtu,
                                         {"anyOf": [{"type": "integer", "minimum": MTU_MIN, "maximum": MTU_MAX}, {"const": "auto"}]})] | None = None
    """Working path MTU: a number (mss-sweep's path_mtu), or auto: measured from the gateway before it clamps. MSS = path MTU - 40 (IPv6: - 60)."""
    remeasure: Annotated[int, between(0, 1_000_000)] = 0
    """With pathMtu: auto, raise this number to measure again on the next `pulumi up` (the value is kept otherwise)."""
    pmtu: Bool = False
    """Clamp to the gateway's route MTU instead (misses narrow links beyond it)."""
    lan_interface: Interface | None = None
    """The gateway's interface on the VM subnet, named in MANUAL.md."""
    ipv6_subnet: Annotated[IPNetwork, CIDR_NETWORK.then(_ipv6, pattern=r"^[0-9A-Fa-f:]+/\d{1,3}$")] | None = None
    """An IPv6 VM subnet to clamp too (dual stack)."""

    @rule("manage", "kind")
    def _managed_only_on_linux(self) -> Problems:
        if self.manage and self.kind != "linux":
            yield ("manage",), (f"true needs gateway.kind linux (got {self.kind}); "
                                f"for {self.kind}, set manage: false and follow gateway/MANUAL.md")

    @rule("manage", "host")
    def _managed_needs_a_host(self) -> Problems:
        if self.manage and not self.host:
            yield ("host",), "missing: manage: true needs the gateway's SSH address (often the Proxmox host)"

    @rule("manage", "host_key")
    def _managed_needs_a_host_key(self) -> Problems:
        if self.manage and not self.host_key:
            yield ("hostKey",), "missing: manage: true needs the gateway's SSH host key to pin (ssh-keyscan -t ed25519 HOST)"

    @property
    def measured(self) -> bool:
        """pathMtu: auto: the path MTU is measured from the gateway at deploy time."""
        return self.path_mtu == "auto"

    @property
    def fixed_path_mtu(self) -> int | None:
        return self.path_mtu if isinstance(self.path_mtu, int) else None

    @rule("path_mtu", "manage")
    def _measured_only_when_managed(self) -> Problems:
        if self.path_mtu == "auto" and not self.manage:
            yield ("pathMtu",), ("auto needs gateway.manage: true (netstab measures from the gateway over SSH); for an unmanaged "
                                 "gateway run `python3 probes/agent.py mss-sweep registry-1.docker.io` from a node and set the number")

    @rule("mss", "path_mtu", "pmtu")
    def _exactly_one_mss_source(self) -> Problems:
        if sum((self.mss is not None, self.path_mtu is not None, self.pmtu)) != 1:
            yield (), "set exactly one MSS source: gateway.mss, gateway.pathMtu (measured; MSS = path MTU - 40) or gateway.pmtu: true"
