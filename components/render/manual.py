"""gateway/MANUAL.md: the exact settings to enter on a gateway netstab cannot SSH into."""

from __future__ import annotations

from components.config import GatewayConfig, NetworkConfig
from components.mss import clamp_values

_SETTINGS = {
    "linux": """1. Copy the scripts in `gateway/` to the gateway and run, as root: `sh apply.sh` (checks with
   `nft -c` / `iptables-restore --test` first, then applies in one transaction; safe to re-run).
2. `sh verify.sh` prints our live rules and exits non-zero if any is missing or differs;
   `sh inspect.sh` reports (read-only) whether the existing ruleset drops ICMP fragmentation-needed;
   `sh remove.sh` takes out exactly our rules.""",
    "opnsense": """1. **Firewall → Settings → Normalization → Add**: Interface `{lan}`, Direction `any`, Protocol `TCP`,
   Source `{subnet}`, Destination `any`, **Max mss `{mss}`**. Save, then **Apply**.
2. **Firewall → Rules → `{wan}`** (and `{lan}`): the default ruleset passes ICMP errors for tracked
   connections. If you added a block rule for ICMP, add above it: Action `Pass`, Protocol `ICMP`,
   ICMP type `Destination unreachable`, Description `netstab: frag-needed`.""",
    "pfsense": """1. **Interfaces → `{lan}`**: set **MSS `{mss}`** (pfSense clamps TCP MSS for traffic on this interface). Save, Apply.
   (Or **Firewall → Rules → `{lan}`**, on the pass rule for `{subnet}`: Advanced Options → **Max MSS `{mss}`**.)
2. **Firewall → Rules → WAN/`{lan}`**: keep ICMP type `Destination unreachable` passed; if you block ICMP,
   add a pass rule above the block for that type.""",
    "openwrt": """1. Add a clamp with a fixed value (the zone option `mtu_fix` only clamps to the router's own link MTU,
   which misses a narrow link further upstream). Create `/etc/nftables.d/10-netstab.nft`:
   ```
   chain netstab_clamp {{
     type filter hook forward priority mangle; policy accept;
     ip saddr {subnet} tcp flags & (syn | rst) == syn tcp option maxseg size set {mss}
     ip daddr {subnet} tcp flags & (syn | rst) == syn tcp option maxseg size set {mss}
   }}
   ```
   then `fw4 reload`.
2. The default fw4 ruleset accepts related ICMP; if you added custom ICMP drops in the forward chain,
   accept `icmp type destination-unreachable` before them.""",
    "mikrotik": """1. Clamp (RouterOS terminal):
   ```
   /ip firewall mangle add chain=forward protocol=tcp tcp-flags=syn src-address={subnet} tcp-mss={mss_plus}-65535 action=change-mss new-mss={mss} passthrough=yes comment="netstab clamp out"
   /ip firewall mangle add chain=forward protocol=tcp tcp-flags=syn dst-address={subnet} tcp-mss={mss_plus}-65535 action=change-mss new-mss={mss} passthrough=yes comment="netstab clamp in"
   ```
2. ICMP fragmentation-needed (type 3 code 4) must pass forward, ahead of any drop:
   ```
   /ip firewall filter add chain=forward protocol=icmp icmp-options=3:4 action=accept place-before=0 comment="netstab frag-needed"
   ```""",
    "other": """1. Find the router's **MSS clamping** (sometimes "TCP MSS", "MTU/MSS adjust" or only "MTU") for the LAN
   the VM subnet `{subnet}` sits on, and set **MSS `{mss}`**. If it offers only "clamp to PMTU", that only
   knows the router's own links: a narrow link beyond it still black-holes; prefer a Linux gateway
   (`gateway.kind: linux`, `manage: true`) in front of the VM subnet.
2. Make sure the router does not drop ICMP "destination unreachable / fragmentation needed".""",
}


def manual(gateway: GatewayConfig, network: NetworkConfig) -> str:
    _, value = clamp_values([network.subnet], mss=gateway.mss, path_mtu=gateway.fixed_path_mtu, pmtu=gateway.pmtu, mtu=network.mtu)[0]
    mss = "pmtu" if value is None else str(value)
    kind = gateway.kind if gateway.kind in _SETTINGS else "other"
    lan = gateway.lan_interface or "LAN"
    settings = _SETTINGS[kind].format(subnet=network.subnet, mss=mss, mss_plus=(int(mss) + 1) if mss != "pmtu" else 1,
                                      lan=lan, wan="WAN")
    source = (f"`gateway.mss: {gateway.mss}`" if gateway.mss is not None else
              f"`gateway.pathMtu: {gateway.path_mtu}` (MSS = path MTU − 40)" if gateway.path_mtu is not None else "pmtu mode")
    return f"""# Gateway settings for the VM subnet {network.subnet}

netstab does not manage this gateway (`gateway.manage: false`, kind `{gateway.kind}`). Enter these
settings by hand. The MSS comes from {source}: **{mss}**.

## Settings

{settings}

## Check them from a node

Run the probe agent from cp1 or a worker (copy `probes/agent.py` there, or pipe it over SSH):

```sh
python3 probes/agent.py mss-sweep registry-1.docker.io     # verdict "clean" or a working MSS >= {mss}
python3 probes/agent.py http --big-hello --repeat 20 https://ghcr.io/v2/ https://registry-1.docker.io/v2/
```

Before the fix a black hole shows as `tls_handshake_timeout` after a successful TCP connect; after
it, both commands exit 0. The node MTU stays {network.mtu}.
"""
