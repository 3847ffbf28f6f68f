"""Gateway rules: TCP MSS clamping for the VM subnet and ICMP "too big" messages let through.

Two flavors for Linux gateways: `nftables` (a table of our own, `inet netstab`) and `iptables`
(rules tagged with a `netstab:` comment in `mangle FORWARD` and `filter FORWARD`). Each rule
carries a tag that names what it is for (`netstab:clamp:<subnet>:<out|in>:<mss|pmtu>`), so
`verify` can tell a missing rule from a changed one, and `remove` takes exactly ours.

Scripts are POSIX sh, `set -eu`, checked before they change anything (`nft -c`,
`iptables-restore --test`), atomic (one transaction), idempotent, and removable.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from components.config import FLAVORS, GatewayConfig, IPNetwork, NetworkConfig
from components.mss import MssError, clamp_values

TABLE = "netstab"
TAG = "netstab:"

GatewayRuleError = MssError


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

    def tag(self, direction: str) -> str:
        return f"{TAG}clamp:{self.subnet}:{direction}:{self.value}"


@dataclass(frozen=True)
class GatewayRules:
    clamps: tuple[Clamp, ...]

    @classmethod
    def build(cls, subnets: Sequence[str | IPNetwork], *, mss: int | None = None, path_mtu: int | None = None,
              pmtu: bool = False, mtu: int = 1500) -> GatewayRules:
        """Exactly one MSS source (see `components.mss.clamp_values`)."""
        values = clamp_values(subnets, mss=mss, path_mtu=path_mtu, pmtu=pmtu, mtu=mtu)
        return cls(tuple(Clamp(subnet, value) for subnet, value in values))

    @classmethod
    def for_stack(cls, gateway: GatewayConfig, network: NetworkConfig) -> GatewayRules:
        """The rules of a validated stack: its VM subnet (and IPv6 subnet) at its MSS source."""
        subnets = [network.subnet, *([gateway.ipv6_subnet] if gateway.ipv6_subnet else [])]
        return cls.build(subnets, mss=gateway.mss, path_mtu=gateway.path_mtu, pmtu=gateway.pmtu, mtu=network.mtu)

    def tags(self) -> list[str]:
        return [c.tag(d) for c in self.clamps for d in ("out", "in")] + [ICMP4_TAG] + ([ICMP6_TAG] if self.any_ipv6 else [])

    @property
    def any_ipv6(self) -> bool:
        return any(c.ipv6 for c in self.clamps)

    @property
    def any_ipv4(self) -> bool:
        return any(not c.ipv6 for c in self.clamps)

    def describe(self) -> str:
        return ", ".join(f"{c.subnet} -> MSS {c.value}" for c in self.clamps)


ICMP4_TAG = f"{TAG}icmp:frag-needed"
ICMP6_TAG = f"{TAG}icmp6:packet-too-big"

# ---------------------------------------------------------------- nftables


def _nft_clamp(clamp: Clamp, direction: str) -> str:
    family = "ip6" if clamp.ipv6 else "ip"
    match = "saddr" if direction == "out" else "daddr"
    target = "rt mtu" if clamp.mss is None else str(clamp.mss)
    return (f'{family} {match} {clamp.subnet} tcp flags & (syn | rst) == syn '
            f'tcp option maxseg size set {target} comment "{clamp.tag(direction)}"')


def nft_table(rules: GatewayRules) -> str:
    """Our table: a forward chain at mangle priority for the clamp, one ahead of filter for ICMP."""
    clamp_rules = "\n".join(f"    {_nft_clamp(c, d)}" for c in rules.clamps for d in ("out", "in"))
    icmp_rules = [f'    icmp type destination-unreachable icmp code frag-needed accept comment "{ICMP4_TAG}"']
    if rules.any_ipv6:
        icmp_rules.append(f'    icmpv6 type packet-too-big accept comment "{ICMP6_TAG}"')
    icmp = "\n".join(icmp_rules)
    return f"""table inet {TABLE} {{
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


def _nft_apply(rules: GatewayRules) -> str:
    # `table; delete table; table {...}` in one file: created if missing, replaced if present, atomically.
    ruleset = f"table inet {TABLE}\ndelete table inet {TABLE}\n{nft_table(rules)}"
    return f"""{_header("apply", "nftables", rules)}
command -v nft >/dev/null 2>&1 || {{ echo "netstab: nft not found on the gateway; install nftables or use --flavor iptables" >&2; exit 1; }}
ruleset=$(mktemp)
trap 'rm -f "$ruleset"' EXIT
cat > "$ruleset" <<'NETSTAB_RULES'
{ruleset}NETSTAB_RULES
nft -c -f "$ruleset"
nft -f "$ruleset"
echo "netstab: table inet {TABLE} applied: {rules.describe()}"
"""


def _nft_remove() -> str:
    return f"""{_header("remove", "nftables")}
if nft list table inet {TABLE} >/dev/null 2>&1; then
  nft delete table inet {TABLE}
  echo "netstab: table inet {TABLE} removed"
else
  echo "netstab: table inet {TABLE} was not there; nothing to remove"
fi
"""


def _nft_verify(rules: GatewayRules) -> str:
    expected = [(c.tag(d), "rt mtu" if c.mss is None else f"maxseg size set {c.mss}") for c in rules.clamps for d in ("out", "in")]
    expected.append((ICMP4_TAG, "accept"))
    if rules.any_ipv6:
        expected.append((ICMP6_TAG, "accept"))
    checks = "\n".join(f"check {shlex.quote(tag)} {shlex.quote(fragment)}" for tag, fragment in expected)
    return f"""{_header("verify", "nftables", rules)}
live=$(nft list table inet {TABLE} 2>/dev/null) || {{ echo "netstab: MISSING table inet {TABLE}" >&2; exit 1; }}
echo "$live"
bad=0
check() {{
  line=$(printf '%s\\n' "$live" | grep -F "comment \\"$1\\"" || true)
  if [ -z "$line" ]; then echo "netstab: MISSING rule $1" >&2; bad=1
  elif ! printf '%s\\n' "$line" | grep -qF "$2"; then echo "netstab: DIFFERS rule $1: expected '$2' in: $line" >&2; bad=1; fi
}}
{checks}
extra=$(printf '%s\\n' "$live" | grep -c 'comment "{TAG}' || true)
if [ "$extra" -ne {len(expected)} ]; then echo "netstab: DIFFERS: {len(expected)} netstab rules expected, $extra found" >&2; bad=1; fi
[ "$bad" -eq 0 ] && echo "netstab: verified {len(expected)} rules ({rules.describe()})"
exit "$bad"
"""


# ---------------------------------------------------------------- iptables


def _ipt_clamp(clamp: Clamp, direction: str) -> str:
    match = "-s" if direction == "out" else "-d"
    target = "--clamp-mss-to-pmtu" if clamp.mss is None else f"--set-mss {clamp.mss}"
    # written as iptables-save prints it, so `verify` can compare whole lines
    return f"-A FORWARD {match} {clamp.subnet} -p tcp -m tcp --tcp-flags SYN,RST SYN -m comment --comment \"{clamp.tag(direction)}\" -j TCPMSS {target}"


def iptables_rules(rules: GatewayRules, ipv6: bool) -> tuple[list[str], list[str]]:
    """(mangle FORWARD rules, filter FORWARD rules) for iptables (ipv6=False) or ip6tables."""
    mangle = [_ipt_clamp(c, d) for c in rules.clamps if c.ipv6 == ipv6 for d in ("out", "in")]
    if ipv6:
        icmp = f"-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment \"{ICMP6_TAG}\" -j ACCEPT"
    else:
        icmp = f"-A FORWARD -p icmp -m icmp --icmp-type 3/4 -m comment --comment \"{ICMP4_TAG}\" -j ACCEPT"
    return mangle, [icmp]


# Merges our rules into a saved table: drops any netstab-tagged rule, puts ours first in FORWARD
# (filter: ahead of any drop) or last (mangle), and makes a minimal table if there was none.
_MERGE_AWK = r"""
BEGIN { while ((getline line < rules) > 0) ours = ours line "\n"; placed = 0; seen = 0 }
/--comment "?netstab:/ { next }
/^\*/ { seen = 1 }
first == "1" && !placed && /^(\[[0-9]+:[0-9]+\] )?-A FORWARD / { printf "%s", ours; placed = 1 }
/^COMMIT/ && !placed { printf "%s", ours; placed = 1 }
{ print }
END { if (!seen) { print "*" table; print ":FORWARD ACCEPT [0:0]"; printf "%s", ours; print "COMMIT" } }
"""


def _ipt_families(rules: GatewayRules) -> list[tuple[str, bool]]:
    return [(cmd, v6) for cmd, v6 in (("iptables", False), ("ip6tables", True)) if (rules.any_ipv6 if v6 else rules.any_ipv4)]


def _ipt_merge_script(action: str, rules: GatewayRules, keep_ours: bool) -> str:
    blocks = []
    for cmd, v6 in _ipt_families(rules):
        mangle, filt = iptables_rules(rules, v6) if keep_ours else ([], [])
        blocks.append(f"""merge {cmd} mangle 0 <<'NETSTAB_RULES'
{chr(10).join(mangle)}
NETSTAB_RULES
merge {cmd} filter 1 <<'NETSTAB_RULES'
{chr(10).join(filt)}
NETSTAB_RULES
cat "$work/{cmd}.mangle" "$work/{cmd}.filter" > "$work/{cmd}.new"
{cmd}-restore --test < "$work/{cmd}.new"
""")
    commits = "\n".join(f'{cmd}-restore -c < "$work/{cmd}.new"' for cmd, _ in _ipt_families(rules))
    done = f"rules applied: {rules.describe()}" if keep_ours else "rules removed (other rules untouched)"
    return f"""{_header(action, "iptables", rules if keep_ours else None)}
command -v iptables-restore >/dev/null 2>&1 || {{ echo "netstab: iptables-restore not found on the gateway; use --flavor nftables" >&2; exit 1; }}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
merge() {{  # $1 command, $2 table, $3 1 = our rules first in FORWARD; our rules on stdin
  grep -v '^$' > "$work/ours" || true
  "$1-save" -c -t "$2" > "$work/$1.$2.cur" 2>/dev/null || : > "$work/$1.$2.cur"
  awk -v rules="$work/ours" -v first="$3" -v table="$2" '{_MERGE_AWK}' "$work/$1.$2.cur" > "$work/$1.$2"
}}
{"".join(blocks)}# every check passed: now commit (each restore replaces its tables in one transaction)
{commits}
echo "netstab: {done}"
"""


def _ipt_verify(rules: GatewayRules) -> str:
    lines = []
    for cmd, v6 in _ipt_families(rules):
        mangle, filt = iptables_rules(rules, v6)
        lines += [(cmd, "mangle", r) for r in mangle] + [(cmd, "filter", r) for r in filt]
    checks = "\n".join(f"check {cmd} {table} {shlex.quote(rule)}" for cmd, table, rule in lines)
    tables = " ".join(f"{cmd}:{t}" for cmd, _ in _ipt_families(rules) for t in ("mangle", "filter"))
    return f"""{_header("verify", "iptables", rules)}
bad=0
check() {{
  if "$1-save" -t "$2" | grep -qxF -- "$3"; then echo "$1 -t $2 $3"
  else
    echo "netstab: MISSING or DIFFERS in $1 $2: $3" >&2; bad=1
  fi
}}
{checks}
found=0
for pair in {tables}; do
  n=$("${{pair%%:*}}-save" -t "${{pair#*:}}" | grep -c -- '--comment "\\?{TAG}' || true)
  found=$((found + n))
done
if [ "$found" -ne {len(lines)} ]; then echo "netstab: DIFFERS: {len(lines)} netstab rules expected, $found found" >&2; bad=1; fi
[ "$bad" -eq 0 ] && echo "netstab: verified {len(lines)} rules ({rules.describe()})"
exit "$bad"
"""


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
  echo "netstab: inspect: ICMP fragmentation-needed may be DROPPED in forward; apply the gateway rules (and see the README on other tables)"
else
  echo "netstab: inspect: no forward rule or policy found that drops ICMP fragmentation-needed"
fi
"""


# ---------------------------------------------------------------- entry points


def _header(action: str, flavor: str, rules: GatewayRules | None = None) -> str:
    what = f": {rules.describe()}" if rules else ""
    return f"#!/bin/sh\n# netstab gateway {action} ({flavor}){what}\nset -eu"


def gateway_script(action: str, flavor: str, rules: GatewayRules) -> str:
    if flavor not in FLAVORS:
        raise GatewayRuleError(f"unknown flavor {flavor!r}; use one of {', '.join(FLAVORS)}")
    if action == "inspect":
        return _inspect(flavor)
    if flavor == "nftables":
        return {"apply": lambda: _nft_apply(rules), "remove": _nft_remove, "verify": lambda: _nft_verify(rules)}[action]()
    return {
        "apply": lambda: _ipt_merge_script("apply", rules, keep_ours=True),
        "remove": lambda: _ipt_merge_script("remove", rules, keep_ours=False),
        "verify": lambda: _ipt_verify(rules),
    }[action]()


ACTIONS = ("apply", "remove", "verify", "inspect")
