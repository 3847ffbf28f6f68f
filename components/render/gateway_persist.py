"""Making the gateway rules survive a reboot: a file the rules load from, and a systemd unit that
loads it at boot, after the distribution's own firewall service (which may flush the ruleset).

The shell below runs inside the apply/remove/verify scripts. `NETSTAB_ROOT` (empty on a real
gateway) relocates the files, so tests and the lab exercise the same text without touching the
machine's own /etc; systemd is asked to enable the unit only when it runs the machine.
"""

from __future__ import annotations

from components.render.gateway_rules import GatewayRules

CONFIG_DIR = "/etc/netstab"
UNIT_DIR = "/etc/systemd/system"
# the distribution firewalls that may flush the ruleset at boot: load after them
AFTER = "nftables.service netfilter-persistent.service iptables.service ip6tables.service firewalld.service"


def boot_file(rules: GatewayRules, flavor: str) -> str:
    return f"{CONFIG_DIR}/gateway-{rules.slug}.{'nft' if flavor == 'nftables' else 'sh'}"


def unit_text(rules: GatewayRules, flavor: str, exec_start: str) -> str:
    return f"""[Unit]
Description=netstab gateway rules of stack {rules.stack} ({flavor}): MSS clamp, ICMP too-big accepted
After={AFTER}
Wants=network-pre.target
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={exec_start}

[Install]
WantedBy=multi-user.target
"""


def persist(rules: GatewayRules, flavor: str, source: str, exec_start: str) -> str:
    """Shell: install `source` (a file the script wrote) as the boot file and enable the unit."""
    path = boot_file(rules, flavor)
    return f"""root=${{NETSTAB_ROOT:-}}
install -d -m 0755 "$root{CONFIG_DIR}" "$root{UNIT_DIR}"
install -m 0644 "{source}" "$root{path}"
cat > "$root{UNIT_DIR}/{rules.unit}" <<NETSTAB_UNIT
{unit_text(rules, flavor, exec_start)}NETSTAB_UNIT
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable {rules.unit} >/dev/null 2>&1
  echo "netstab: persistent: {rules.unit} reloads {path} at boot"
else
  echo "netstab: WARNING: systemd does not run this machine; {path} is written but nothing reloads it at boot" >&2
fi
"""


def unpersist(rules: GatewayRules, flavor: str) -> str:
    path = boot_file(rules, flavor)
    return f"""root=${{NETSTAB_ROOT:-}}
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl disable {rules.unit} >/dev/null 2>&1 || true
fi
rm -f "$root{UNIT_DIR}/{rules.unit}" "$root{path}"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
echo "netstab: boot-time reload of stack {rules.stack}'s rules removed"
"""


def verify_persisted(rules: GatewayRules, flavor: str) -> str:
    """Shell for verify: the boot file carries every tag, and the unit is there (and enabled under systemd)."""
    path = boot_file(rules, flavor)
    return f"""root=${{NETSTAB_ROOT:-}}
if [ ! -f "$root{path}" ] || [ ! -f "$root{UNIT_DIR}/{rules.unit}" ]; then
  echo "netstab: NOT PERSISTENT: $root{path} or {rules.unit} is missing; the rules are lost at the next reboot" >&2; bad=1
else
  for tag in $tags; do
    grep -qF "$tag" "$root{path}" || {{ echo "netstab: NOT PERSISTENT: $tag is not in $root{path}" >&2; bad=1; }}
  done
  if [ -z "$root" ] && [ -d /run/systemd/system ] && ! systemctl is-enabled --quiet {rules.unit}; then
    echo "netstab: NOT PERSISTENT: {rules.unit} is not enabled" >&2; bad=1
  fi
fi
"""
