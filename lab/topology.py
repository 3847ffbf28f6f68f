"""The lab's network: the plan's cluster in namespaces, with the black hole beyond the gateway.

  cp1, worker1 (10.27.27.0/24, MTU 1400) -- gw (NAT) -- lan 192.0.2.0/24 -- up -- isp -- internet 203.0.113.0/24
                                                pve (the Proxmox host) --'        |
  up reaches isp over a wide link, and over a narrow one (MTU 1280 by default) that carries the
  VM subnet's NATed egress (as a VLAN/VPN/PPPoE egress policy would). up and isp drop the ICMP
  fragmentation-needed they generate: a PMTU black hole beyond the gateway, not on it. The host's
  own egress takes the wide link, which is why its probes pass while the VMs' fail.
"""

from __future__ import annotations

from lab.blackhole import DROP_FRAG_NEEDED
from lab.netns import Topology

PREFIX = "nstlab-"
VM_SUBNET = "10.27.27.0/24"
VM_MTU = 1400
NODES = {"cp1": "10.27.27.11", "worker1": "10.27.27.21"}
GATEWAY_VM_IP = "10.27.27.1"
GATEWAY_WAN_IP = "192.0.2.2"
PVE_IP = "192.0.2.10"
REGISTRY_IP = "203.0.113.10"
API_IP = "203.0.113.20"
# The plan's endpoints by their real names, as every lab host's /etc/hosts resolves them.
NAMES = {
    "ghcr.io": REGISTRY_IP,
    "registry-1.docker.io": REGISTRY_IP,
    "quay.io": REGISTRY_IP,
    "registry.k8s.io": REGISTRY_IP,
    "auth.docker.io": API_IP,
    "api.doppler.com": API_IP,
}
PROBE_HOSTS = ("cp1", "worker1", "pve")
# blob-host: where the registry redirects blob downloads (ghcr.io's blob host), on the internet,
# reached from the VM subnet only across the narrow link
BLOB_NAME = "pkg-containers.githubusercontent.com"
BLOB_IP = "203.0.113.30"
MIRROR_IP = "10.27.27.5"

GATEWAY_NAT = f"""
table ip lab_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {VM_SUBNET} oifname "wan0" masquerade
  }}
}}
"""


def _bridge(topo: Topology, host: str, name: str, cidr: str, mtu: int = 1500) -> None:
    topo.run(host, "ip", "link", "add", name, "type", "bridge")
    topo.run(host, "ip", "link", "set", name, "mtu", str(mtu), "up")
    topo.addr(host, name, cidr)


def _port(topo: Topology, bridge_host: str, bridge: str, port: str) -> None:
    topo.run(bridge_host, "ip", "link", "set", port, "master", bridge)


def build(topo: Topology, narrow_mtu: int = 1280) -> None:
    for host in (*NODES, "gw", "pve", "up", "isp", "registry", "api"):
        topo.add_host(host)
    for host in ("gw", "up", "isp"):
        topo.forwarding(host)
    for host in ("up", "isp"):
        topo.nft(host, DROP_FRAG_NEEDED)
    for host in (*NODES, "pve"):
        topo.set_hosts_file(host, NAMES)

    # VM subnet: a bridge in the gateway, every node at the stack MTU
    _bridge(topo, "gw", "br0", f"{GATEWAY_VM_IP}/24", mtu=VM_MTU)
    for node, ip in NODES.items():
        topo.link(node, "eth0", "gw", f"p-{node}", mtu=VM_MTU)
        _port(topo, "gw", "br0", f"p-{node}")
        topo.addr(node, "eth0", f"{ip}/24")
        topo.route(node, "default", GATEWAY_VM_IP)
    topo.nft("gw", GATEWAY_NAT)

    # lan: gateway's outer side, the Proxmox host, the upstream router
    _bridge(topo, "up", "br-lan", "192.0.2.1/24")
    for host, ip in (("gw", GATEWAY_WAN_IP), ("pve", PVE_IP)):
        dev = "wan0" if host == "gw" else "eth0"
        topo.link(host, dev, "up", f"l-{host}")
        _port(topo, "up", "br-lan", f"l-{host}")
        topo.addr(host, dev, f"{ip}/24")
        topo.route(host, "default", "192.0.2.1")

    # up <-> isp: wide and narrow links; the VM subnet's NATed traffic takes the narrow one
    topo.link("up", "wide0", "isp", "wide0")
    topo.addr("up", "wide0", "198.51.100.1/30")
    topo.addr("isp", "wide0", "198.51.100.2/30")
    topo.link("up", "narrow0", "isp", "narrow0", mtu=narrow_mtu)
    topo.addr("up", "narrow0", "198.51.100.5/30")
    topo.addr("isp", "narrow0", "198.51.100.6/30")
    topo.route("up", "default", "198.51.100.2")
    topo.run("up", "ip", "route", "replace", "default", "via", "198.51.100.6", "table", "200")
    topo.run("up", "ip", "rule", "add", "from", f"{GATEWAY_WAN_IP}/32", "lookup", "200", "pref", "200")
    topo.route("isp", "192.0.2.0/24", "198.51.100.1")
    topo.route("isp", f"{GATEWAY_WAN_IP}/32", "198.51.100.5")

    # the simulated internet
    _bridge(topo, "isp", "br-net", "203.0.113.1/24")
    for host, ip in (("registry", REGISTRY_IP), ("api", API_IP)):
        topo.link(host, "eth0", "isp", f"n-{host}")
        _port(topo, "isp", "br-net", f"n-{host}")
        topo.addr(host, "eth0", f"{ip}/24")
        topo.route(host, "default", "203.0.113.1")


def add_vm(topo: Topology, host: str, ip: str) -> None:
    """Another VM on the VM subnet (the registry mirror), at the stack MTU, resolving the real names."""
    topo.add_host(host, hosts_file=NAMES)
    topo.link(host, "eth0", "gw", f"p-{host}", mtu=VM_MTU)
    _port(topo, "gw", "br0", f"p-{host}")
    topo.addr(host, "eth0", f"{ip}/24")
    topo.route(host, "default", GATEWAY_VM_IP)


def add_blob_host(topo: Topology) -> None:
    """A blob host on the simulated internet, resolved by every prober. Only traffic between the VM
    subnet's NAT address and the blob host takes the narrow link, both ways; the registry API, the
    servers and the Proxmox host's traffic take the wide one."""
    topo.add_host("blobs")
    topo.link("blobs", "eth0", "isp", "n-blobs")
    _port(topo, "isp", "br-net", "n-blobs")
    topo.addr("blobs", "eth0", f"{BLOB_IP}/24")
    topo.route("blobs", "default", "203.0.113.1")
    for host in (*NODES, "pve"):
        topo.set_hosts_file(host, {**NAMES, BLOB_NAME: BLOB_IP})
    topo.run("up", "ip", "rule", "del", "pref", "200")
    topo.run("up", "ip", "rule", "add", "from", f"{GATEWAY_WAN_IP}/32", "to", f"{BLOB_IP}/32", "lookup", "200", "pref", "200")
    topo.route("isp", f"{GATEWAY_WAN_IP}/32", "198.51.100.1")
    topo.run("isp", "ip", "route", "replace", f"{GATEWAY_WAN_IP}/32", "via", "198.51.100.5", "table", "201")
    topo.run("isp", "ip", "rule", "add", "from", f"{BLOB_IP}/32", "to", f"{GATEWAY_WAN_IP}/32", "lookup", "201", "pref", "201")
