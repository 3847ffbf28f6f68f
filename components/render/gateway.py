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

_INSPECT_NFT = r"""
ruleset=$(nft list ruleset 2>/dev/null) || { echo "netstab: cannot read the nftables ruleset (run as root)" >&2; exit 1; }
# A forward base chain with policy drop lets ICMP "too big" through only if something accepts it:
# related conntrack state (ICMP errors are RELATED), an ICMP rule, or our own table.
printf '%s\n' "$ruleset" | awk '
  /^table / { table = $2 " " $3 }
  /^\tchain / { chain = $2; hook = ""; policy = "" }
  /hook forward/ { hook = "forward"; if ($0 ~ /policy drop/) policy = "drop" }
  hook == "forward" && /ct state .*related.* accept/ { ok[table " " chain] = 1 }
  hook == "forward" && /icmp .*(destination-unreachable|frag-needed).* accept|meta l4proto (icmp|\{ ?icmp).* accept/ { ok[table " " chain] = 1 }
  hook == "forward" && /icmp .*drop/ { icmpdrop[table " " chain] = 1 }
  hook == "forward" && policy == "drop" { dropping[table " " chain] = 1 }
  END {
    for (c in dropping) if (!(c in ok)) print "PROBLEM: " c " (hook forward, policy drop) accepts no ICMP fragmentation-needed"
    for (c in icmpdrop) print "PROBLEM: " c " has a rule that drops ICMP"
  }' > "$problems_file"
"""


def _inspect(flavor: str) -> str:
    if flavor == "nftables":
        body = _INSPECT_NFT
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
