"""The nftables flavor: a table of this stack's own (`inet netstab_<stack>`), replaced atomically.

`table; delete table; table {...}` in one file creates the table if missing and replaces it if
present, in one transaction; the same file is what the boot-time unit loads.
"""

from __future__ import annotations

from components.render.gateway_persist import boot_file, persist, unpersist, verify_persisted
from components.render.gateway_rules import DIRECTIONS, Clamp, GatewayRules
from components.render.quote import nft_string, word

# Reads `nft list ruleset` on stdin; prints one PROBLEM line per forward base chain that would drop
# ICMP fragmentation-needed. nftables runs every base chain on the hook, and an accept in one (ours)
# does not overrule a drop in another: a chain with policy drop must accept it itself (as ICMP,
# or as conntrack RELATED, which ICMP errors are), and no rule before that accept may drop it.
FRAG_NEEDED_DROPS = r"""awk '
  /^table / { table = $2 " " $3 }
  /^\tchain / { chain = $2; hook = ""; policy = "" }
  /hook forward/ { hook = "forward"; if ($0 ~ /policy drop/) policy = "drop" }
  hook == "forward" && /ct state .*related.* accept/ { ok[table " " chain] = 1 }
  hook == "forward" && /icmp .*(destination-unreachable|frag-needed).* accept|meta l4proto (icmp|\{ ?icmp).* accept/ { ok[table " " chain] = 1 }
  hook == "forward" && !((table " " chain) in ok) && /(destination-unreachable|frag-needed|l4proto icmp|protocol icmp)[^;]* (drop|reject)/ { icmpdrop[table " " chain] = 1 }
  hook == "forward" && policy == "drop" { dropping[table " " chain] = 1 }
  END {
    for (c in dropping) if (!(c in ok)) print "PROBLEM: " c " (hook forward, policy drop) accepts no ICMP fragmentation-needed"
    for (c in icmpdrop) print "PROBLEM: " c " has a rule that drops ICMP fragmentation-needed"
  }'"""


def table_name(rules: GatewayRules) -> str:
    return f"netstab_{rules.slug}"


def _clamp(rules: GatewayRules, clamp: Clamp, direction: str) -> str:
    family = "ip6" if clamp.ipv6 else "ip"
    match = "saddr" if direction == "out" else "daddr"
    target = "rt mtu" if clamp.mss is None else str(clamp.mss)
    return (f'{family} {match} {clamp.subnet} tcp flags & (syn | rst) == syn '
            f'tcp option maxseg size set {target} comment {nft_string(rules.clamp_tag(clamp, direction))}')


def nft_table(rules: GatewayRules) -> str:
    """The table: a forward chain at mangle priority for the clamp, one ahead of filter for ICMP."""
    clamp_rules = "\n".join(f"    {_clamp(rules, c, d)}" for c in rules.clamps for d in DIRECTIONS)
    icmp_rules = [f'    icmp type destination-unreachable icmp code frag-needed accept comment {nft_string(rules.icmp4_tag)}']
    if rules.any_ipv6:
        icmp_rules.append(f'    icmpv6 type packet-too-big accept comment {nft_string(rules.icmp6_tag)}')
    icmp = "\n".join(icmp_rules)
    return f"""table inet {table_name(rules)} {{
  chain clamp_mss {{
    type filter hook forward priority mangle; policy accept;
{clamp_rules}
  }}
  chain allow_too_big {{
    type filter hook forward priority filter - 10; policy accept;
{icmp}
  }}
}}
"""


def ruleset(rules: GatewayRules) -> str:
    table = table_name(rules)
    return f"table inet {table}\ndelete table inet {table}\n{nft_table(rules)}"


def apply(rules: GatewayRules) -> str:
    table = table_name(rules)
    return f"""command -v nft >/dev/null 2>&1 || {{ echo "netstab: nft not found on the gateway; install nftables or use the iptables flavor" >&2; exit 1; }}
nft=$(command -v nft)
ruleset=$(mktemp)
trap 'rm -f "$ruleset"' EXIT
cat > "$ruleset" <<'NETSTAB_RULES'
{ruleset(rules)}NETSTAB_RULES
nft -c -f "$ruleset"
nft -f "$ruleset"
echo "netstab: table inet {table} applied: {rules.describe()}"
{persist(rules, "nftables", "$ruleset", f"$nft -f {boot_file(rules, 'nftables')}")}"""


def remove(rules: GatewayRules) -> str:
    table = table_name(rules)
    return f"""if nft list table inet {table} >/dev/null 2>&1; then
  nft delete table inet {table}
  echo "netstab: table inet {table} removed"
else
  echo "netstab: table inet {table} was not there; nothing to remove"
fi
{unpersist(rules, "nftables")}"""


def verify(rules: GatewayRules) -> str:
    table = table_name(rules)
    expected = [(rules.clamp_tag(c, d), "rt mtu" if c.mss is None else f"maxseg size set {c.mss}") for c in rules.clamps for d in DIRECTIONS]
    expected.append((rules.icmp4_tag, "accept"))
    if rules.any_ipv6:
        expected.append((rules.icmp6_tag, "accept"))
    checks = "\n".join(f"check {word(tag)} {word(fragment)}" for tag, fragment in expected)
    tags = " ".join(tag for tag, _ in expected)
    return f"""live=$(nft list table inet {table} 2>/dev/null) || {{ echo "netstab: MISSING table inet {table}" >&2; exit 1; }}
echo "$live"
bad=0
check() {{
  line=$(printf '%s\\n' "$live" | grep -F "comment \\"$1\\"" || true)
  if [ -z "$line" ]; then echo "netstab: MISSING rule $1" >&2; bad=1
  elif ! printf '%s\\n' "$line" | grep -qF "$2"; then echo "netstab: DIFFERS rule $1: expected '$2' in: $line" >&2; bad=1; fi
}}
{checks}
found=$(printf '%s\\n' "$live" | grep -c 'comment "{rules.prefix}' || true)
if [ "$found" -ne {len(expected)} ]; then echo "netstab: DIFFERS: {len(expected)} rules of stack {rules.stack} expected, $found found" >&2; bad=1; fi
tags={word(tags)}
{verify_persisted(rules, "nftables")}drops=$(nft list ruleset | {FRAG_NEEDED_DROPS})
if [ -n "$drops" ]; then
  printf '%s\\n' "$drops" >&2
  echo "netstab: ICMP fragmentation-needed is DROPPED in another forward chain: our accept cannot overrule it; accept it in that chain (ct state related accept, or an ICMP accept)" >&2
  bad=1
fi
[ "$bad" -eq 0 ] && echo "netstab: verified {len(expected)} rules, persistent ({rules.describe()})"
exit "$bad"
"""
