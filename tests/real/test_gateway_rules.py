"""The rendered gateway scripts on a real kernel, inside a namespace standing for the gateway."""

from __future__ import annotations

import pytest

from components.render.gateway import GatewayRules, gateway_script
from lab.netns import Topology
from tests.real.conftest import require_root

RULES = GatewayRules.build(["10.27.27.0/24"], stack="homelab", path_mtu=1280, mtu=1400)
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
def gw(tmp_path):
    require_root()
    with Topology("nstg-") as topo:
        topo.add_host("gw")
        topo.root = tmp_path  # NETSTAB_ROOT: the namespace shares this machine's /etc
        yield topo


def run(topo: Topology, action: str, flavor: str, rules: GatewayRules = RULES, check: bool = True, path: str | None = None):
    env = [f"NETSTAB_ROOT={topo.root}"] + ([f"PATH={path}"] if path else [])
    return topo.run("gw", "env", *env, "sh", "-c", gateway_script(action, flavor, rules), check=check)


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
    assert "netstab:homelab:clamp:10.27.27.0/24:out:1240" in ok.stdout
    if flavor == "nftables":
        listing = gw.run("gw", "nft", "-a", "list", "chain", "inet", "netstab_homelab", "clamp_mss").stdout
        handle = next(line.rsplit("# handle ", 1)[1] for line in listing.splitlines() if ":out:1240" in line)
        gw.run("gw", "nft", "delete", "rule", "inet", "netstab_homelab", "clamp_mss", "handle", handle.strip())
    else:
        gw.run("gw", "iptables", "-t", "mangle", "-D", "FORWARD", "1")
    broken = run(gw, "verify", flavor, check=False)
    assert broken.returncode == 1 and "MISSING" in broken.stderr


def test_verify_notices_a_changed_mss(gw):
    run(gw, "apply", "nftables")
    other = GatewayRules.build(["10.27.27.0/24"], stack="homelab", mss=1300, mtu=1400)
    result = run(gw, "verify", "nftables", rules=other, check=False)
    assert result.returncode == 1 and "MISSING rule netstab:homelab:clamp:10.27.27.0/24:out:1300" in result.stderr


def test_nft_verify_fails_while_another_forward_chain_drops_frag_needed(gw):
    """nftables runs every forward base chain: our accept cannot overrule another table's policy drop."""
    run(gw, "apply", "nftables")
    gw.nft("gw", "table inet strict {\n chain forward {\n  type filter hook forward priority filter; policy drop;\n  tcp dport 443 accept\n }\n}\n")
    blocked = run(gw, "verify", "nftables", check=False)
    assert blocked.returncode == 1
    assert "PROBLEM: inet strict forward (hook forward, policy drop)" in blocked.stderr and "DROPPED" in blocked.stderr
    gw.run("gw", "nft", "add", "rule", "inet", "strict", "forward", "ct", "state", "established,related", "accept")
    ok = run(gw, "verify", "nftables", check=False)
    assert ok.returncode == 0, ok.stderr
    gw.run("gw", "nft", "add", "rule", "inet", "strict", "forward", "icmp", "type", "destination-unreachable", "drop")
    assert run(gw, "verify", "nftables", check=False).returncode == 0, "a drop after the related accept never sees it"
    gw.run("gw", "nft", "insert", "rule", "inet", "strict", "forward", "icmp", "type", "destination-unreachable", "drop")
    dropped = run(gw, "verify", "nftables", check=False)
    assert dropped.returncode == 1 and "has a rule that drops ICMP fragmentation-needed" in dropped.stderr


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
    assert "netstab:homelab:icmp:frag-needed" in forward[0]
    run(gw, "remove", "iptables")
    assert ipt_save(gw) == before


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_an_invalid_ruleset_is_refused_before_the_kernel_is_touched(gw, flavor):
    """The check step (`nft -c` / `iptables-restore --test`) stops a broken script before any change."""
    script = gateway_script("apply", flavor, RULES)
    broken = script.replace("10.27.27.0/24 tcp flags", "10.27.27.0/33 tcp flags").replace("-s 10.27.27.0/24", "-s 10.27.27.0/33")
    before = nft_ruleset(gw) + ipt_save(gw)
    result = gw.run("gw", "env", f"NETSTAB_ROOT={gw.root}", "sh", "-c", broken, check=False)
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


def _reboot(topo: Topology) -> None:
    """What a reboot does to the kernel's rules: all gone (the distribution's own service flushes)."""
    topo.run("gw", "nft", "flush", "ruleset")


def _boot(topo: Topology, flavor: str, rules: GatewayRules = RULES) -> None:
    """Run what the installed unit runs at boot: its ExecStart, with the files under NETSTAB_ROOT."""
    unit = (topo.root / "etc/systemd/system" / rules.unit).read_text()
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    relocated = exec_start.replace(" /etc/netstab/", f" {topo.root}/etc/netstab/")
    topo.run("gw", "sh", "-c", relocated)


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_the_rules_come_back_after_a_reboot_and_remove_takes_the_boot_files_too(gw, flavor):
    run(gw, "apply", flavor)
    _reboot(gw)
    assert run(gw, "verify", flavor, check=False).returncode == 1, "a reboot loses the live rules"
    _boot(gw, flavor)
    ok = run(gw, "verify", flavor, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "persistent" in ok.stdout
    run(gw, "remove", flavor)
    assert not list((gw.root / "etc/netstab").iterdir()) and not list((gw.root / "etc/systemd/system").iterdir())


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_verify_fails_when_the_boot_file_is_gone(gw, flavor):
    run(gw, "apply", flavor)
    next((gw.root / "etc/netstab").iterdir()).unlink()
    result = run(gw, "verify", flavor, check=False)
    assert result.returncode == 1 and "NOT PERSISTENT" in result.stderr


STRICT_INPUT = [["iptables", "-P", "INPUT", "DROP"], ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]]


@pytest.mark.parametrize("broken_save", ["exit 1", "exit 0"], ids=["save_fails", "save_prints_nothing"])
def test_iptables_apply_changes_nothing_when_the_live_table_cannot_be_read(gw, tmp_path, broken_save):
    """A gateway whose INPUT is "policy DROP, accept tcp/22" keeps it when iptables-save misbehaves."""
    for argv in STRICT_INPUT:
        gw.run("gw", *argv)
    before = ipt_save(gw)
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "iptables-save").write_text(f"#!/bin/sh\n{broken_save}\n")
    (shims / "iptables-save").chmod(0o755)
    result = run(gw, "apply", "iptables", check=False, path=f"{shims}:/usr/sbin:/usr/bin:/sbin:/bin")
    assert result.returncode != 0 and "nothing was changed" in result.stderr
    assert ipt_save(gw) == before


@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_two_stacks_share_a_gateway_and_remove_takes_only_its_own(gw, flavor):
    other = GatewayRules.build(["10.28.28.0/24"], stack="lab-b", mss=1300, mtu=1400)
    run(gw, "apply", flavor)
    run(gw, "apply", flavor, rules=other)
    run(gw, "remove", flavor)
    assert run(gw, "verify", flavor, rules=other, check=False).returncode == 0, "stack lab-b's rules must survive homelab's remove"
    assert run(gw, "verify", flavor, check=False).returncode == 1


def test_iptables_apply_replaces_this_stacks_rules_written_under_an_older_mss(gw):
    older = GatewayRules.build(["10.27.27.0/24"], stack="homelab", mss=1300, mtu=1400)
    run(gw, "apply", "iptables", rules=older)
    run(gw, "apply", "iptables")
    live = ipt_save(gw)
    assert "--set-mss 1300" not in live and live.count("--set-mss 1240") == 2
    run(gw, "remove", "iptables", rules=older)  # remove rendered with the old MSS still finds the new rules
    assert "netstab:" not in ipt_save(gw)


def test_iptables_leaving_dual_stack_takes_this_stacks_ip6tables_rules_too(gw):
    """An update from dual stack to IPv4 only applies the new rules; the old IPv6 ones must not linger."""
    dual = GatewayRules.build(["10.27.27.0/24", "fd00:27::/64"], stack="homelab", path_mtu=1280, mtu=1400)
    run(gw, "apply", "iptables", rules=dual)
    assert "netstab:homelab:" in gw.run("gw", "ip6tables-save").stdout
    stale = run(gw, "verify", "iptables", check=False)
    assert stale.returncode == 1 and "ip6tables still holds rules of stack homelab" in stale.stderr
    run(gw, "apply", "iptables")
    assert "netstab:homelab:" not in gw.run("gw", "ip6tables-save").stdout
    assert run(gw, "verify", "iptables", check=False).returncode == 0
