"""Bringing a running guest's network to its rendered config, through the Proxmox host.

Cloud-init applies network-config once per instance, so a later MTU, DNS, address or search-domain
change reaches the Proxmox NIC but not the guest. These scripts run inside the guest through the
QEMU guest agent (`qm guest exec` on the Proxmox host), which needs no guest network: an address
change cannot cut the step off from the node it changes.

- check (first boot): the guest's eth0 has the rendered MTU and address, i.e. cloud-init applied them;
- converge (any later change): write the netplan file, `netplan apply`, prove the gateway answers,
  restore the previous file when it does not; restart K3s when the MTU changed, so flannel re-reads it.
"""

from __future__ import annotations

import yaml

from components.config import GUEST_INTERFACE, NetworkConfig, NodeConfig
from components.render.cloudinit import network_document
from components.render.quote import heredoc, in_double_quotes, word

NETPLAN_PATH = "/etc/netplan/50-cloud-init.yaml"  # the file cloud-init writes from network-config v2
GUEST_EXEC_TIMEOUT_S = 180


def netplan(node: NodeConfig, network: NetworkConfig) -> str:
    header = "# written by netstab from the node's rendered network-config; cloud-init writes the same on a new instance\n"
    return header + yaml.safe_dump({"network": network_document(node, network)}, sort_keys=False)


# Whether two netplan files say the same: compared as YAML, not as text. cloud-init writes its own
# header and dumps the document its own way (cloud-init @04eacd06 cloudinit/net/netplan.py: header
# 392-396, v2 passthrough through safeyaml.dumps 462-470: indent 4, `---` and `...`), so the file it
# wrote for the same config never equals netstab's text. python3-yaml comes with cloud-init; without
# it, the text with comment lines left out. Needs $work, a private folder.
SAME_NETPLAN = """same_netplan() {
  python3 -c 'import sys, yaml
a, b = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a == b else 3)' "$1" "$2" 2>/dev/null
  case $? in
    0) return 0 ;;
    3) return 1 ;;
  esac
  grep -v '^[[:space:]]*#' "$1" > "$work/want.body"; grep -v '^[[:space:]]*#' "$2" > "$work/have.body" 2>/dev/null
  cmp -s "$work/want.body" "$work/have.body"
}
"""


def _expect(node: NodeConfig, network: NetworkConfig) -> str:
    return f"""iface={GUEST_INTERFACE}
want_mtu={network.mtu}
want_addr={word(f"{node.ip}/{network.subnet.prefixlen}")}
gateway={network.gateway}
matches() {{
  [ "$(cat /sys/class/net/$iface/mtu 2>/dev/null)" = "$want_mtu" ] && ip -o addr show dev "$iface" | grep -qF " $want_addr "
}}
"""


def network_check_script(node: NodeConfig, network: NetworkConfig) -> str:
    return f"""#!/bin/sh
set -u
{_expect(node, network)}if matches; then
  echo "netstab: {in_double_quotes(node.name)}: $iface has MTU $want_mtu and $want_addr"
  exit 0
fi
echo "netstab: {in_double_quotes(node.name)}: $iface does not carry the rendered network (want MTU $want_mtu, $want_addr):" >&2
ip -o addr show dev "$iface" >&2 || true
cat /sys/class/net/$iface/mtu >&2 2>/dev/null || true
exit 1
"""


def network_converge_script(node: NodeConfig, network: NetworkConfig, gateway_wait_s: int = 20) -> str:
    """`NETSTAB_ROOT` (empty in a real guest) relocates the netplan file for tests."""
    return f"""#!/bin/sh
set -u
{_expect(node, network)}target="${{NETSTAB_ROOT:-}}{NETPLAN_PATH}"
if ! command -v netplan >/dev/null 2>&1; then
  echo "netstab: {in_double_quotes(node.name)} has no netplan: a network change after the first boot cannot be applied in place on this image. Replace the VM (pulumi up --replace on its URN) so that cloud-init applies the new config." >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/netplan.yaml" {heredoc(netplan(node, network), "NETSTAB_NETPLAN")}{SAME_NETPLAN}if [ -f "$target" ] && same_netplan "$work/netplan.yaml" "$target" && matches; then
  echo "netstab: {in_double_quotes(node.name)}: network already as rendered; nothing to do"
  exit 0
fi
old_mtu=$(cat /sys/class/net/$iface/mtu 2>/dev/null || echo unknown)
[ -f "$target" ] && cp -p "$target" "$work/previous.yaml"
install -m 0600 "$work/netplan.yaml" "$target"
reaches_gateway() {{
  i=0
  while [ $i -lt {gateway_wait_s} ]; do
    if matches && {{ ping -c 1 -W 1 "$gateway" >/dev/null 2>&1 || ip neigh show "$gateway" dev "$iface" | grep -q lladdr; }}; then return 0; fi
    i=$((i + 1)); sleep 1
  done
  return 1
}}
if ! netplan apply || ! reaches_gateway; then
  if [ -f "$work/previous.yaml" ]; then install -m 0600 "$work/previous.yaml" "$target"; else rm -f "$target"; fi
  netplan apply || true
  echo "netstab: {in_double_quotes(node.name)}: the new network config did not bring up $iface with MTU $want_mtu, $want_addr and a reachable gateway $gateway; the previous config is restored" >&2
  exit 1
fi
echo "netstab: {in_double_quotes(node.name)}: network converged: $iface MTU $want_mtu, $want_addr, gateway $gateway answers"
if [ "$old_mtu" != "$want_mtu" ]; then
  for svc in k3s k3s-agent; do
    if systemctl is-active --quiet "$svc"; then
      systemctl restart "$svc"
      echo "netstab: {in_double_quotes(node.name)}: $svc restarted so that flannel takes MTU $want_mtu"
    fi
  done
fi
"""


def via_guest_agent(vm_id: int, guest_script: str, timeout_s: int = GUEST_EXEC_TIMEOUT_S, absent_ok: str = "", then: str = "",
                    then_when_absent: bool = False) -> str:
    """Run on the Proxmox host: `guest_script` inside VM `vm_id` through the guest agent, its output
    and exit status passed through (qm(1): `qm guest exec --pass-stdin` feeds it as the shell's stdin).
    `absent_ok`: a VM that does not exist is no error; this is said instead. `then`: shell run on the
    Proxmox host after the guest script succeeded (and, `then_when_absent`, after an absent VM too)."""
    absent = f"""if ! qm status {vm_id} >/dev/null 2>&1; then
  echo {word("netstab: " + absent_ok)}
{then if then_when_absent else ""}  exit 0
fi
""" if absent_ok else ""
    return f"""#!/bin/sh
set -u
{absent}work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/guest.sh" {heredoc(guest_script, "NETSTAB_GUEST")}if ! qm guest exec {vm_id} --timeout {timeout_s} --pass-stdin 1 -- /bin/sh -s < "$work/guest.sh" > "$work/result.json"; then
  echo "netstab: qm guest exec {vm_id} failed: is the VM running with its guest agent (qemu-guest-agent) up?" >&2
  exit 1
fi
perl -MJSON::PP -e '
  local $/; my $r = decode_json(<STDIN>);
  print $r->{{"out-data"}} // ""; print STDERR $r->{{"err-data"}} // "";
  if (!$r->{{exited}}) {{ print STDERR "netstab: the step did not finish inside VM {vm_id} within {timeout_s}s\\n"; exit 1 }}
  exit($r->{{exitcode}} // 1);
' < "$work/result.json"{" || exit $?" + chr(10) + then if then else ""}
"""
