"""The rendered gateway scripts on a real kernel, inside a namespace standing for the gateway."""

from __future__ import annotations

import pytest

from components.render.gateway import GatewayRules, gateway_script
from lab.netns import Topology
from tests.real.conftest import require_root

RULES = GatewayRules.build(["10.27.27.0/24"], path_mtu=1280, mtu=1400)
UNRELATED_NFT = """
table inet homelab {
  chain forward {
    type filter hook forward priority filter; policy accept;
    ip saddr 10.27.27.0/24 tcp dport 22 counter accept comment "keep me"
  }
}
"""
UNRELATED_IPT = [
    ["iptables", "-t", "filter", "-A", "FORWARD", "-s", "10.27.27.0/24", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"],
    ["iptables", "-t", "mangle", "-A", "FORWARD", "-p", "udp", "-j", "ACCEPT"],
    ["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.27.27.0/24", "-j", "MASQUERADE"],
]


@pytest.fixture
def gw():
    require_root()
    with Topology("nstg-") as topo:
        topo.add_host("gw")
        yield topo


def run(topo: Topology, action: str, flavor: str, rules: GatewayRules = RULES, check: bool = True):
    return topo.run("gw", "sh", "-c", gateway_script(action, flavor, rules), check=check)


def nft_ruleset(topo: Topology) -> str:
    return topo.run("gw", "nft", "list", "ruleset").stdout


def ipt_save(topo: Topology) -> str:
    text = "".join(topo.run("gw", "iptables-save", "-t", t).stdout for t in ("filter", "mangle", "nat"))
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_apply_three_times_equals_apply_once(gw, flavor):
    snapshot = nft_ruleset if flavor == "nftables" else ipt_save
    run(gw, "apply", flavor)
    once = snapshot(gw)
    run(gw, "apply", flavor)
    run(gw, "apply", flavor)
    assert snapshot(gw) == once
    assert "1240" in once


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_verify_passes_after_apply_and_fails_when_a_rule_is_deleted_by_hand(gw, flavor):
    assert run(gw, "verify", flavor, check=False).returncode == 1, "nothing applied yet"
    run(gw, "apply", flavor)
    ok = run(gw, "verify", flavor, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "netstab:clamp:10.27.27.0/24:out:1240" in ok.stdout
    if flavor == "nftables":
        listing = gw.run("gw", "nft", "-a", "list", "chain", "inet", "netstab", "clamp_mss").stdout
        handle = next(line.rsplit("# handle ", 1)[1] for line in listing.splitlines() if ":out:1240" in line)
        gw.run("gw", "nft", "delete", "rule", "inet", "netstab", "clamp_mss", "handle", handle.strip())
    else:
        gw.run("gw", "iptables", "-t", "mangle", "-D", "FORWARD", "1")
    broken = run(gw, "verify", flavor, check=False)
    assert broken.returncode == 1 and "MISSING" in broken.stderr


def test_verify_notices_a_changed_mss(gw):
    run(gw, "apply", "nftables")
    other = GatewayRules.build(["10.27.27.0/24"], mss=1300, mtu=1400)
    result = run(gw, "verify", "nftables", rules=other, check=False)
    assert result.returncode == 1 and "MISSING rule netstab:clamp:10.27.27.0/24:out:1300" in result.stderr


def test_nft_remove_leaves_no_residue_and_other_tables_untouched(gw):
    gw.nft("gw", UNRELATED_NFT)
    before = nft_ruleset(gw)
    run(gw, "apply", "nftables")
    assert "table inet netstab" in nft_ruleset(gw)
    run(gw, "remove", "nftables")
    assert nft_ruleset(gw) == before
    again = run(gw, "remove", "nftables")
    assert "nothing to remove" in again.stdout


def test_iptables_remove_leaves_no_residue_and_other_rules_untouched(gw):
    for argv in UNRELATED_IPT:
        gw.run("gw", *argv)
    before = ipt_save(gw)
    run(gw, "apply", "iptables")
    applied = ipt_save(gw)
    assert "netstab:" in applied
    # the ICMP accept must come before any other FORWARD rule of the filter table
    forward = [line for line in applied.split("*filter", 1)[1].splitlines() if line.startswith("-A FORWARD")]
    assert "netstab:icmp:frag-needed" in forward[0]
    run(gw, "remove", "iptables")
    assert ipt_save(gw) == before


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_an_invalid_ruleset_is_refused_before_the_kernel_is_touched(gw, flavor):
    """The check step (`nft -c` / `iptables-restore --test`) stops a broken script before any change."""
    script = gateway_script("apply", flavor, RULES)
    broken = script.replace("10.27.27.0/24 tcp flags", "10.27.27.0/33 tcp flags").replace("-s 10.27.27.0/24", "-s 10.27.27.0/33")
    before = nft_ruleset(gw) + ipt_save(gw)
    result = gw.run("gw", "sh", "-c", broken, check=False)
    assert result.returncode != 0
    assert nft_ruleset(gw) + ipt_save(gw) == before


def test_inspect_reports_a_forward_policy_that_drops_icmp(gw):
    gw.nft("gw", "table inet strict {\n chain forward {\n  type filter hook forward priority filter; policy drop;\n  tcp dport 443 accept\n }\n}\n")
    report = run(gw, "inspect", "nftables").stdout
    assert "PROBLEM: inet strict forward" in report and "DROPPED" in report
    gw.run("gw", "nft", "add", "rule", "inet", "strict", "forward", "ct", "state", "established,related", "accept")
    assert "no forward rule or policy found" in run(gw, "inspect", "nftables").stdout


def test_iptables_inspect_reports_policy_drop_without_related(gw):
    gw.run("gw", "iptables", "-P", "FORWARD", "DROP")
    assert "PROBLEM: filter FORWARD policy DROP" in run(gw, "inspect", "iptables").stdout
    gw.run("gw", "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    assert "no forward rule or policy found" in run(gw, "inspect", "iptables").stdout
