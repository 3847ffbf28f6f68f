"""What the gateway rules are, apart from how a flavor writes them: one clamp per VM subnet and
direction, ICMP "too big" accepted, all tagged with the stack that owns them.

Every rule carries a tag that says what it is for and whose it is
(`netstab:<stack>:clamp:<subnet>:<out|in>:<mss|pmtu>`), so `verify` can tell a missing rule from
a changed one, and `remove` takes exactly this stack's rules, under any MSS they were written with.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from components.config import GatewayConfig, NetworkConfig
from components.mss import MssError, clamp_values

TAG = "netstab:"
DIRECTIONS = ("out", "in")

GatewayRuleError = MssError
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Clamp:
    """Clamp SYN and SYN-ACK MSS to and from `subnet`; `mss=None` clamps to the route MTU (pmtu mode)."""

    subnet: IPNetwork
    mss: int | None

    @property
    def ipv6(self) -> bool:
        return self.subnet.version == 6

    @property
    def value(self) -> str:
        return "pmtu" if self.mss is None else str(self.mss)


@dataclass(frozen=True)
class GatewayRules:
    stack: str  # the Pulumi stack that owns these rules: several stacks can share one gateway
    clamps: tuple[Clamp, ...]

    @classmethod
    def build(cls, subnets: Sequence[str | IPNetwork], *, stack: str, mss: int | None = None, path_mtu: int | None = None,
              pmtu: bool = False, mtu: int = 1500) -> GatewayRules:
        """Exactly one MSS source (see `components.mss.clamp_values`)."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", stack):
            raise GatewayRuleError(f"stack name {stack!r} must be 1-64 letters, digits, '_', '.' or '-'")
        values = clamp_values(subnets, mss=mss, path_mtu=path_mtu, pmtu=pmtu, mtu=mtu)
        return cls(stack, tuple(Clamp(subnet, value) for subnet, value in values))

    @classmethod
    def for_stack(cls, stack: str, gateway: GatewayConfig, network: NetworkConfig, measured_path_mtu: int | None = None) -> GatewayRules:
        """The rules of a validated stack: its VM subnet (and IPv6 subnet) at its MSS source; with
        pathMtu: auto, at the path MTU measured from the gateway."""
        if gateway.measured and measured_path_mtu is None:
            raise GatewayRuleError("gateway.pathMtu is auto: the rules need the path MTU measured from the gateway")
        path_mtu = measured_path_mtu if gateway.measured else gateway.fixed_path_mtu
        subnets = [network.subnet, *([gateway.ipv6_subnet] if gateway.ipv6_subnet else [])]
        return cls.build(subnets, stack=stack, mss=gateway.mss, path_mtu=path_mtu, pmtu=gateway.pmtu, mtu=network.mtu)

    @property
    def prefix(self) -> str:
        """Every tag of this stack starts with it (and no other stack's does)."""
        return f"{TAG}{self.stack}:"

    def clamp_tag(self, clamp: Clamp, direction: str) -> str:
        return f"{self.prefix}clamp:{clamp.subnet}:{direction}:{clamp.value}"

    @property
    def icmp4_tag(self) -> str:
        return f"{self.prefix}icmp:frag-needed"

    @property
    def icmp6_tag(self) -> str:
        return f"{self.prefix}icmp6:packet-too-big"

    @property
    def any_ipv6(self) -> bool:
        return any(c.ipv6 for c in self.clamps)

    @property
    def any_ipv4(self) -> bool:
        return any(not c.ipv6 for c in self.clamps)

    @property
    def slug(self) -> str:
        """The stack as a name nft tables, files and systemd units accept, one per stack: a name
        with other characters (Pulumi allows - and .) gets a short hash of itself, so stacks
        home-lab and home_lab sharing a gateway never share a table or a boot file."""
        if re.fullmatch(r"[A-Za-z0-9_]+", self.stack):
            return self.stack
        return re.sub(r"[^A-Za-z0-9_]", "_", self.stack) + "_" + hashlib.sha256(self.stack.encode()).hexdigest()[:8]

    @property
    def unit(self) -> str:
        """The systemd unit that reloads these rules at boot."""
        return f"netstab-gateway-{self.slug}.service"

    def describe(self) -> str:
        return ", ".join(f"{c.subnet} -> MSS {c.value}" for c in self.clamps)
