"""MSS arithmetic, pure: how a path MTU or a chosen MSS becomes the clamp for each VM subnet.

Config validates with it and the gateway renderer builds its rules from it, so neither imports
the other.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.config import IPNetwork

MIN_MSS = 536  # TCP's minimum (RFC 879): a clamp below it is never right
IPV4_OVERHEAD = 40  # IPv4 header 20 + TCP header 20
IPV6_OVERHEAD = 60  # IPv6 header 40 + TCP header 20


class MssError(ValueError):
    pass


def overhead(ipv6: bool) -> int:
    return IPV6_OVERHEAD if ipv6 else IPV4_OVERHEAD


def mss_from_path_mtu(path_mtu: int, ipv6: bool) -> int:
    """MSS = path MTU - IP header - TCP header."""
    return path_mtu - overhead(ipv6)


def check_mss(mss: int, mtu: int) -> None:
    """536 <= MSS <= MTU - 40: below, TCP's minimum; above, more than the node's own link carries."""
    if not MIN_MSS <= mss <= mtu - IPV4_OVERHEAD:
        raise MssError(f"MSS {mss} is outside {MIN_MSS}..{mtu - IPV4_OVERHEAD} (MTU {mtu} - 40); use a value in that range")


def clamp_values(subnets: Sequence[str | IPNetwork], *, mss: int | None = None, path_mtu: int | None = None,
                 pmtu: bool = False, mtu: int = 1500) -> tuple[tuple[IPNetwork, int | None], ...]:
    """(subnet, MSS) per subnet from exactly one source; MSS None means "the route MTU" (pmtu mode).

    An explicit `mss` is the IPv4 value (IPv6 gets 20 less); a path MTU gives each family its own overhead.
    """
    if sum((mss is not None, path_mtu is not None, pmtu)) != 1:
        raise MssError("choose exactly one MSS source: an MSS, a measured path MTU, or pmtu mode")
    out = []
    for raw in subnets:
        subnet = ipaddress.ip_network(raw, strict=True) if isinstance(raw, str) else raw
        ipv6 = subnet.version == 6
        value: int | None = None
        if path_mtu is not None:
            value = mss_from_path_mtu(path_mtu, ipv6)
        elif mss is not None:
            value = mss - 20 if ipv6 else mss
        if value is not None:
            check_mss(value, mtu - (20 if ipv6 else 0))
        out.append((subnet, value))
    return tuple(out)
