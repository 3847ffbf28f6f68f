"""Gateway scripts: TCP MSS clamping for the VM subnet and ICMP "too big" messages let through.

Two flavors for Linux gateways, `nftables` (gateway_nft.py) and `iptables` (gateway_ipt.py), and
four actions: `apply` (checked first, one transaction, idempotent, persistent across reboots),
`remove` (exactly this stack's rules and their boot-time reload), `verify` (live rules and their
persistence, exit 1 on any difference) and `inspect` (read-only: does anything drop frag-needed?).
Scripts are POSIX sh, `set -eu`.
"""

from __future__ import annotations

from components.config import FLAVORS
from components.render import gateway_ipt, gateway_nft
from components.render.gateway_ipt import iptables_rules
from components.render.gateway_nft import nft_table
from components.render.gateway_rules import Clamp, GatewayRuleError, GatewayRules

ACTIONS = ("apply", "remove", "verify", "inspect")

__all__ = ["ACTIONS", "FLAVORS", "Clamp", "GatewayRuleError", "GatewayRules", "gateway_script", "iptables_rules", "nft_table"]


# ---------------------------------------------------------------- inspect (read-only)

def _inspect(flavor: str) -> str:
    if flavor == "nftables":
        body = 'ruleset=$(nft list ruleset 2>/dev/null) || { echo "netstab: cannot read the nftables ruleset (run as root)" >&2; exit 1; }\n'
        body += f'printf \'%s\\n\' "$ruleset" | {gateway_nft.FRAG_NEEDED_DROPS} > "$problems_file"\n'
        tables = "nft list tables"
    else:
        body = r"""
iptables-save -t filter 2>/dev/null | awk '
  /^:FORWARD DROP/ { drop = 1 }
  /^-A FORWARD .*(RELATED|-p icmp).* -j ACCEPT/ { ok = 1 }
  /^-A FORWARD .*-p icmp.* -j (DROP|REJECT)/ { print "PROBLEM: filter FORWARD has a rule dropping ICMP: " $0 }
  END { if (drop && !ok) print "PROBLEM: filter FORWARD policy DROP accepts no ICMP fragmentation-needed (nor RELATED)" }' > "$problems_file"
"""
        tables = "iptables-save | grep '^\\*'"
    return f"""#!/bin/sh
# netstab gateway inspect ({flavor}): read-only; reports whether forwarded ICMP "too big" messages are dropped.
set -eu
problems_file=$(mktemp)
trap 'rm -f "$problems_file"' EXIT
{body}
echo "netstab: tables on this gateway:"
{tables} | sed 's/^/  /'
if [ -s "$problems_file" ]; then
  cat "$problems_file"
  echo "netstab: inspect: ICMP fragmentation-needed may be DROPPED in forward; apply the gateway rules (and see docs/gateway.md on other tables)"
else
  echo "netstab: inspect: no forward rule or policy found that drops ICMP fragmentation-needed"
fi
"""


# ---------------------------------------------------------------- entry points


def _header(action: str, flavor: str, rules: GatewayRules) -> str:
    what = f": {rules.describe()}" if action == "apply" else ""
    return f"#!/bin/sh\n# netstab gateway {action} ({flavor}) of stack {rules.stack}{what}\nset -eu\n"


def gateway_script(action: str, flavor: str, rules: GatewayRules) -> str:
    if flavor not in FLAVORS:
        raise GatewayRuleError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
    if action not in ACTIONS:
        raise GatewayRuleError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    if action == "inspect":
        return _inspect(flavor)
    module = gateway_nft if flavor == "nftables" else gateway_ipt
    body = {"apply": module.apply, "remove": module.remove, "verify": module.verify}[action](rules)
    return _header(action, flavor, rules) + body
