"""The iptables flavor: this stack's rules in `mangle FORWARD` (clamp) and `filter FORWARD` (ICMP
accept, first), changed with `iptables-restore --noflush`, so no other rule, chain or policy is
ever rewritten.

apply: read the live tables (stop, changing nothing, if that fails), delete every rule tagged with
this stack's prefix (whatever MSS it was written with), add ours; test the whole change with
`--test`, then commit it.
"""

from __future__ import annotations

from components.render.gateway_persist import boot_file, persist, unpersist, verify_persisted
from components.render.gateway_rules import DIRECTIONS, Clamp, GatewayRules
from components.render.quote import word


def _clamp(rules: GatewayRules, clamp: Clamp, direction: str) -> str:
    match = "-s" if direction == "out" else "-d"
    target = "--clamp-mss-to-pmtu" if clamp.mss is None else f"--set-mss {clamp.mss}"
    # written as iptables-save prints it, so `verify` can compare whole lines
    return (f"-A FORWARD {match} {clamp.subnet} -p tcp -m tcp --tcp-flags SYN,RST SYN "
            f"-m comment --comment \"{rules.clamp_tag(clamp, direction)}\" -j TCPMSS {target}")


def iptables_rules(rules: GatewayRules, ipv6: bool) -> tuple[list[str], list[str]]:
    """(mangle FORWARD rules, filter FORWARD rules) for iptables (ipv6=False) or ip6tables."""
    mangle = [_clamp(rules, c, d) for c in rules.clamps if c.ipv6 == ipv6 for d in DIRECTIONS]
    if ipv6:
        icmp = f"-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment \"{rules.icmp6_tag}\" -j ACCEPT"
    else:
        icmp = f"-A FORWARD -p icmp -m icmp --icmp-type 3/4 -m comment --comment \"{rules.icmp4_tag}\" -j ACCEPT"
    return mangle, [icmp]


FAMILIES = (("iptables", False), ("ip6tables", True))


def families(rules: GatewayRules) -> list[tuple[str, bool]]:
    return [(cmd, v6) for cmd, v6 in FAMILIES if (rules.any_ipv6 if v6 else rules.any_ipv4)]


def unused_families(rules: GatewayRules) -> list[str]:
    """Families this configuration has no rules in: an earlier one (dual stack, say) may have left some."""
    return [cmd for cmd, v6 in FAMILIES if (cmd, v6) not in families(rules)]


# $1 command, $2 table: this stack's live rules as `-D` lines. Stops the script when the live table
# cannot be read: guessing "empty" would add duplicates or, worse, hide rules.
_READ_OURS = """ours() {
  if ! saved=$("$1-save" -t "$2"); then echo "netstab: $1-save -t $2 failed; nothing was changed" >&2; exit 1; fi
  case "$saved" in *"*$2"*) ;; *) echo "netstab: $1-save -t $2 printed no *$2 table; nothing was changed" >&2; exit 1 ;; esac
  printf '%s\\n' "$saved" | grep -F -e "--comment \\"$PREFIX" -e "--comment $PREFIX" | sed 's/^-A /-D /' || true
}
"""


def _change(rules: GatewayRules, keep_ours: bool) -> str:
    """Build one restore input per family in $work, test them all, then commit them."""
    builds = []
    for cmd, v6 in families(rules):
        mangle, filt = iptables_rules(rules, v6) if keep_ours else ([], [])
        first_in_filter = [line.replace("-A FORWARD ", "-I FORWARD 1 ", 1) for line in filt]
        builds.append(f"""{{
  echo '*mangle'; ours {cmd} mangle
{"".join(f"  echo {word(line)}{chr(10)}" for line in mangle)}  echo COMMIT
  echo '*filter'; ours {cmd} filter
{"".join(f"  echo {word(line)}{chr(10)}" for line in first_in_filter)}  echo COMMIT
}} > "$work/{cmd}"
{cmd}-restore --noflush --test < "$work/{cmd}"
""")
    for cmd in unused_families(rules):
        # Only deletes, and only when this stack has rules there: a gateway without that family
        # (no ip6tables, no IPv6) is not an error for a configuration that does not use it.
        builds.append(f"""if command -v {cmd}-save >/dev/null 2>&1 && {cmd}-save 2>/dev/null | grep -qF -- "$PREFIX"; then
  {{ echo '*mangle'; ours {cmd} mangle; echo COMMIT; echo '*filter'; ours {cmd} filter; echo COMMIT; }} > "$work/{cmd}"
  {cmd}-restore --noflush --test < "$work/{cmd}"
fi
""")
    commits = "\n".join([f'{cmd}-restore --noflush < "$work/{cmd}"' for cmd, _ in families(rules)]
                        + [f'if [ -f "$work/{cmd}" ]; then {cmd}-restore --noflush < "$work/{cmd}"; fi' for cmd in unused_families(rules)])
    return f"""command -v iptables-restore >/dev/null 2>&1 || {{ echo "netstab: iptables-restore not found on the gateway; use the nftables flavor" >&2; exit 1; }}
PREFIX={word(rules.prefix)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
{_READ_OURS}{"".join(builds)}# every table was read and every change tested: now commit
{commits}
"""


def _boot_script(rules: GatewayRules) -> str:
    return f"#!/bin/sh\n# netstab: reload stack {rules.stack}'s gateway rules at boot\nset -eu\n{_change(rules, keep_ours=True)}"


def apply(rules: GatewayRules) -> str:
    return f"""{_change(rules, keep_ours=True)}echo "netstab: rules of stack {rules.stack} applied: {rules.describe()}"
cat > "$work/boot.sh" <<'NETSTAB_BOOT'
{_boot_script(rules)}NETSTAB_BOOT
{persist(rules, "iptables", "$work/boot.sh", f"/bin/sh {boot_file(rules, 'iptables')}")}"""


def remove(rules: GatewayRules) -> str:
    return f"""{_change(rules, keep_ours=False)}echo "netstab: rules of stack {rules.stack} removed (other rules untouched)"
{unpersist(rules, "iptables")}"""


def verify(rules: GatewayRules) -> str:
    lines = []
    for cmd, v6 in families(rules):
        mangle, filt = iptables_rules(rules, v6)
        lines += [(cmd, "mangle", r) for r in mangle] + [(cmd, "filter", r) for r in filt]
    checks = "\n".join(f"check {cmd} {table} {word(rule)}" for cmd, table, rule in lines)
    tables = " ".join(f"{cmd}:{t}" for cmd, _ in families(rules) for t in ("mangle", "filter"))
    tags = " ".join([rules.clamp_tag(c, d) for c in rules.clamps for d in DIRECTIONS] + [rules.icmp4_tag]
                    + ([rules.icmp6_tag] if rules.any_ipv6 else []))
    stale_check = "".join(f"""if command -v {cmd}-save >/dev/null 2>&1 && {cmd}-save 2>/dev/null | grep -qF -- '--comment "{rules.prefix}'; then
  echo "netstab: DIFFERS: {cmd} still holds rules of stack {rules.stack} this configuration has none for" >&2; bad=1
fi
""" for cmd in unused_families(rules))
    return f"""bad=0
check() {{
  if "$1-save" -t "$2" | grep -qxF -- "$3"; then echo "$1 -t $2 $3"
  else
    echo "netstab: MISSING or DIFFERS in $1 $2: $3" >&2; bad=1
  fi
}}
{checks}
found=0
for pair in {tables}; do
  n=$("${{pair%%:*}}-save" -t "${{pair#*:}}" | grep -cF -- '--comment "{rules.prefix}' || true)
  found=$((found + n))
done
{stale_check}if [ "$found" -ne {len(lines)} ]; then echo "netstab: DIFFERS: {len(lines)} rules of stack {rules.stack} expected, $found found" >&2; bad=1; fi
tags={word(tags)}
{verify_persisted(rules, "iptables")}[ "$bad" -eq 0 ] && echo "netstab: verified {len(lines)} rules, persistent ({rules.describe()})"
exit "$bad"
"""
