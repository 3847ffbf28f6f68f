"""Two small topologies with a PMTU black hole, used by the agent's tests and the benchmarks.

  both directions:  client -- r1 ==narrow== r2 -- server   (routers drop their ICMP frag-needed)
  client->server:   the same, plus a wide r2 -- r1 link that only the replies take
                    (asymmetric routing): the server's flight fits, a large ClientHello does not

(A broken middlebox that raises the SYN-ACK's MSS would be another way, but nftables and
iptables TCPMSS only ever lower an MSS, so the lab uses routing.)

Addresses are RFC 5737 documentation ranges, inside namespaces only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lab.netns import Topology, wait_for_port
from lab.pki import ServerCert

SERVER_NAME = "lab.test"
SERVER_IP = "203.0.113.2"
REPO = Path(__file__).resolve().parent.parent

# Routers send no ICMP fragmentation-needed: the black hole.
DROP_FRAG_NEEDED = """
table inet blackhole {
  chain out {
    type filter hook output priority 0; policy accept;
    icmp type destination-unreachable icmp code frag-needed counter drop
    icmpv6 type packet-too-big counter drop
  }
}
"""

def build(topo: Topology, both_directions: bool, narrow_mtu: int = 1280) -> None:
    topo.add_host("client", hosts_file={SERVER_NAME: SERVER_IP})
    topo.add_host("server")
    for r in ("r1", "r2"):
        topo.add_host(r)
        topo.forwarding(r)
        topo.nft(r, DROP_FRAG_NEEDED)
    topo.link("client", "eth0", "r1", "c0")
    topo.link("r1", "n0", "r2", "n0", mtu=narrow_mtu)
    topo.link("r2", "s0", "server", "eth0")
    topo.addr("client", "eth0", "192.0.2.2/29")
    topo.addr("r1", "c0", "192.0.2.1/29")
    topo.addr("r1", "n0", "198.51.100.1/29")
    topo.addr("r2", "n0", "198.51.100.2/29")
    topo.addr("r2", "s0", "203.0.113.1/29")
    topo.addr("server", "eth0", f"{SERVER_IP}/29")
    topo.route("r1", "203.0.113.0/29", "198.51.100.2")
    if both_directions:
        topo.route("r2", "192.0.2.0/29", "198.51.100.1")
    else:
        topo.link("r1", "w0", "r2", "w0")
        topo.addr("r1", "w0", "198.51.100.9/29")
        topo.addr("r2", "w0", "198.51.100.10/29")
        topo.route("r2", "192.0.2.0/29", "198.51.100.9")
    topo.route("client", "default", "192.0.2.1")
    topo.route("server", "default", "203.0.113.1")


def start_https(topo: Topology, host: str, ip: str, cert: ServerCert, mode: str = "normal", port: int = 443,
                probe_from: str = "client", root: Path | None = None) -> subprocess.Popen[bytes]:
    """A `lab.servers` HTTPS server in `mode` inside `host`, once `probe_from` sees it listen."""
    proc = topo.start(host, sys.executable, "-m", "lab.servers", "--mode", mode, "--listen", f"{ip}:{port}",
               "--cert", str(cert.cert), "--key", str(cert.key), *(["--root", str(root)] if root else []), env={"PYTHONPATH": str(REPO)})
    wait_for_port(topo, probe_from, ip, port)
    return proc
