"""Gateway rule text for both flavors, the MSS arithmetic, validation, and the manual guide."""

from __future__ import annotations

import ipaddress

import pytest

from components.config import parse_config
from components.mss import mss_from_path_mtu
from components.render.gateway import GatewayRuleError, GatewayRules, gateway_script, iptables_rules, nft_table
from components.render.gateway_measure import MeasureError, measured_path_mtu
from tests.conftest import problems_of
from tests.render.files import files_of


@pytest.mark.parametrize("path_mtu,ipv6,mss", [
    (1500, False, 1460),  # plain Ethernet
    (1492, False, 1452),  # PPPoE
    (1400, False, 1360),  # the plan's path
    (1280, False, 1240),  # the lab's narrow link
    (1500, True, 1440),
    (1280, True, 1220),  # IPv6's minimum MTU
])
def test_mss_from_a_measured_path_mtu(path_mtu, ipv6, mss):
    assert mss_from_path_mtu(path_mtu, ipv6=ipv6) == mss


@pytest.mark.parametrize("mss,mtu", [(536, 1400), (1360, 1400), (1460, 1500), (536, 576)])
def test_an_mss_from_536_to_the_mtu_minus_40_is_clamped_to(mss, mtu):
    assert GatewayRules.build(["10.0.0.0/24"], stack="homelab", mss=mss, mtu=mtu).clamps[0].mss == mss


@pytest.mark.parametrize("mss,mtu,message", [
    (535, 1400, "MSS 535 is outside 536..1360 (MTU 1400 - 40); use a value in that range"),
    (1361, 1400, "MSS 1361 is outside 536..1360 (MTU 1400 - 40); use a value in that range"),
    (1460, 1400, "MSS 1460 is outside 536..1360 (MTU 1400 - 40); use a value in that range"),
    (1461, 1500, "MSS 1461 is outside 536..1460 (MTU 1500 - 40); use a value in that range"),
])
def test_an_mss_outside_536_to_the_mtu_minus_40_is_refused(mss, mtu, message):
    with pytest.raises(GatewayRuleError) as caught:
        GatewayRules.build(["10.0.0.0/24"], stack="homelab", mss=mss, mtu=mtu)
    assert str(caught.value) == message


def test_dual_stack_clamps_each_family_with_its_own_overhead():
    rules = GatewayRules.build(["10.27.27.0/24", "fd00:27::/64"], stack="homelab", path_mtu=1400, mtu=1400)
    assert [c.mss for c in rules.clamps] == [1360, 1340]
    table = nft_table(rules)
    assert "ip saddr 10.27.27.0/24" in table and "ip6 saddr fd00:27::/64" in table
    assert "icmpv6 type packet-too-big accept" in table


def test_exactly_one_mss_source():
    with pytest.raises(GatewayRuleError, match="exactly one MSS source"):
        GatewayRules.build(["10.0.0.0/24"], stack="homelab", mss=1300, path_mtu=1400)
    with pytest.raises(GatewayRuleError, match="exactly one MSS source"):
        GatewayRules.build(["10.0.0.0/24"], stack="homelab")


def test_nft_clamps_syn_and_synack_both_ways_and_accepts_frag_needed():
    table = nft_table(GatewayRules.build(["10.27.27.0/24"], stack="homelab", mss=1360, mtu=1400))
    assert "type filter hook forward priority mangle" in table
    assert 'ip saddr 10.27.27.0/24 tcp flags & (syn | rst) == syn tcp option maxseg size set 1360 comment "netstab:homelab:clamp:10.27.27.0/24:out:1360"' in table
    assert 'ip daddr 10.27.27.0/24 tcp flags & (syn | rst) == syn tcp option maxseg size set 1360' in table
    assert "icmp type destination-unreachable icmp code frag-needed accept" in table


def test_pmtu_mode_uses_the_route_mtu():
    rules = GatewayRules.build(["10.27.27.0/24"], stack="homelab", pmtu=True)
    assert "maxseg size set rt mtu" in nft_table(rules)
    mangle, _ = iptables_rules(rules, ipv6=False)
    assert all("--clamp-mss-to-pmtu" in line for line in mangle)


def test_iptables_rules_are_tagged_and_in_the_right_tables():
    mangle, filt = iptables_rules(GatewayRules.build(["10.27.27.0/24"], stack="homelab", mss=1360, mtu=1400), ipv6=False)
    assert mangle == [
        '-A FORWARD -s 10.27.27.0/24 -p tcp -m tcp --tcp-flags SYN,RST SYN -m comment --comment "netstab:homelab:clamp:10.27.27.0/24:out:1360" -j TCPMSS --set-mss 1360',
        '-A FORWARD -d 10.27.27.0/24 -p tcp -m tcp --tcp-flags SYN,RST SYN -m comment --comment "netstab:homelab:clamp:10.27.27.0/24:in:1360" -j TCPMSS --set-mss 1360',
    ]
    assert filt == ['-A FORWARD -p icmp -m icmp --icmp-type 3/4 -m comment --comment "netstab:homelab:icmp:frag-needed" -j ACCEPT']


@pytest.mark.parametrize("stack", ["homelab", "lab_2"])
def test_a_plain_stack_name_is_its_own_table(stack):
    rules = GatewayRules.build(["10.0.0.0/24"], stack=stack, mss=1300, mtu=1400)
    assert f"table inet netstab_{stack} " in nft_table(rules)


def test_stacks_that_differ_only_in_punctuation_never_share_a_table_or_a_unit():
    """Pulumi allows home-lab, home.lab and home_lab side by side; one's remove must not take another's rules."""
    names = ["home-lab", "home.lab", "home_lab"]
    rules = [GatewayRules.build(["10.0.0.0/24"], stack=name, mss=1300, mtu=1400) for name in names]
    assert len({r.slug for r in rules}) == 3 and len({r.unit for r in rules}) == 3
    assert all(r.slug.isidentifier() for r in rules)

@pytest.mark.parametrize("flavor", ["nftables", "iptables"])
def test_apply_checks_before_it_commits(flavor):
    script = gateway_script("apply", flavor, GatewayRules.build(["10.27.27.0/24"], stack="homelab", mss=1360, mtu=1400))
    check, commit = ("nft -c -f", 'nft -f "$ruleset"') if flavor == "nftables" else ("iptables-restore --noflush --test", 'iptables-restore --noflush < "$work/iptables"')
    assert script.index(check) < script.index(commit)
    assert script.startswith("#!/bin/sh") and "set -eu" in script


def test_the_homelab_stack_measures_its_path_mtu_and_clamps_for_the_measured_value(homelab):
    assert homelab.gateway.path_mtu == "auto"
    with pytest.raises(GatewayRuleError, match="the rules need the path MTU measured from the gateway"):
        GatewayRules.for_stack("homelab", homelab.gateway, homelab.network)
    rules = GatewayRules.for_stack("homelab", homelab.gateway, homelab.network, measured_path_mtu=1280)
    assert rules.clamps[0].mss == 1240 and rules.clamps[0].subnet == ipaddress.ip_network("10.27.27.0/24")


GATEWAY_KEYS = "manage, kind, host, user, port, hostKey, flavor, mss, pathMtu, remeasure, pmtu, lanInterface, ipv6Subnet"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGatewayHostKey000000000000000000000000000000"
BROKEN_GATEWAYS = [
    pytest.param({"pathMtu": 1400, "mss": 1300},
                 "gateway: set exactly one MSS source: gateway.mss, gateway.pathMtu (measured; MSS = path MTU - 40) or gateway.pmtu: true",
                 id="two_mss_sources"),
    pytest.param({"manage": False},
                 "gateway: set exactly one MSS source: gateway.mss, gateway.pathMtu (measured; MSS = path MTU - 40) or gateway.pmtu: true",
                 id="no_mss_source"),
    pytest.param({"mss": 1380}, "gateway.mss: MSS 1380 is outside 536..1360 (MTU 1400 - 40); use a value in that range (network.mtu is 1400)",
                 id="mss_above_mtu_minus_40"),
    pytest.param({"mss": 400}, "gateway.mss: MSS 400 is outside 536..1360 (MTU 1400 - 40); use a value in that range (network.mtu is 1400)",
                 id="mss_below_tcp_minimum"),
    pytest.param({"pathMtu": 9999}, "gateway.pathMtu: 9999 is not an integer in 576..9000 or auto", id="path_mtu_out_of_range"),
    pytest.param({"pathMtu": 1400, "flavor": "pf"}, "gateway.flavor: 'pf' is not one of nftables, iptables", id="unknown_flavor"),
    pytest.param({"pathMtu": 1400, "manage": True, "hostKey": HOST_KEY},
                 "gateway.host: missing: manage: true needs the gateway's SSH address (often the Proxmox host)", id="managed_without_host"),
    pytest.param({"pathMtu": 1400, "manage": True, "host": "10.27.27.1"},
                 "gateway.hostKey: missing: manage: true needs the gateway's SSH host key to pin (ssh-keyscan -t ed25519 HOST)",
                 id="managed_without_host_key"),
    pytest.param({"pathMtu": 1400, "manage": True, "host": "10.27.27.1", "hostKey": "ssh-rsa AAAAB3NzaC1yc2E= root@gw"},
                 "gateway.hostKey: 'ssh-rsa AAAAB3NzaC1yc2E= root@gw' is not an SSH host key line such as 'ssh-ed25519 AAAA...' "
                 "(ssh-keyscan -t ed25519 HOST) (RSA host keys cannot be pinned: pulumi-command would offer only ssh-rsa (SHA-1), "
                 "which current sshd refuses; use the host's ed25519 key: ssh-keyscan -t ed25519 HOST)", id="rsa_host_key"),
    pytest.param({"pathMtu": 1400, "manage": True, "host": "10.27.27.1", "hostKey": HOST_KEY, "kind": "opnsense"},
                 "gateway.manage: true needs gateway.kind linux (got opnsense); for opnsense, set manage: false and follow gateway/MANUAL.md",
                 id="managed_but_not_linux"),
    pytest.param({"pathMtu": 1400, "ipv6Subnet": "10.0.0.0/8"}, "gateway.ipv6Subnet: 10.0.0.0/8 is not an IPv6 CIDR", id="ipv6_subnet_is_ipv4"),
    pytest.param({"pathMtu": 1400, "mtu": 1400}, f"gateway.mtu: unknown key; expected one of: {GATEWAY_KEYS}", id="unknown_key"),
]


@pytest.mark.parametrize("gateway,expected", BROKEN_GATEWAYS)
def test_gateway_config_errors_name_their_key(homelab_raw, gateway, expected):
    homelab_raw["gateway"] = gateway
    assert problems_of(homelab_raw) == [expected]


def test_render_writes_the_gateway_scripts(homelab_raw):
    homelab_raw["gateway"]["pathMtu"] = 1400
    files = files_of(parse_config(homelab_raw))
    for action in ("apply", "remove", "verify", "inspect"):
        assert f"gateway/{action}.sh" in files
    assert "gateway/MANUAL.md" not in files and "gateway/measure.sh" not in files


def test_with_a_measured_path_mtu_render_says_so_and_writes_what_does_not_depend_on_it(homelab):
    files = files_of(homelab)
    assert {"gateway/measure.sh", "gateway/remove.sh", "gateway/inspect.sh", "gateway/MEASURED.md"} <= set(files)
    assert "gateway/apply.sh" not in files and "gateway/verify.sh" not in files
    assert "render STACK --path-mtu 1280" in files["gateway/MEASURED.md"]
    assert "mss-sweep ghcr.io:443 --source 10.27.27.1" in files["gateway/measure.sh"]


@pytest.mark.parametrize("kind,needle", [("opnsense", "Max mss `1360`"), ("pfsense", "MSS `1360`"), ("mikrotik", "new-mss=1360"),
                                         ("openwrt", "maxseg size set 1360"), ("other", "MSS `1360`")])
def test_unmanaged_gateways_get_a_manual_with_the_exact_settings(homelab_raw, kind, needle):
    homelab_raw["gateway"] = {"manage": False, "kind": kind, "pathMtu": 1400, "lanInterface": "LAN"}
    files = files_of(parse_config(homelab_raw))
    guide = files["gateway/MANUAL.md"]
    assert needle in guide and "10.27.27.0/24" in guide and "mss-sweep" in guide
    assert "gateway/apply.sh" not in files


def _measurement(*sweeps: dict) -> str:
    import json

    return json.dumps({"schema": "netstab.gateway-measure/v1", "sweeps": list(sweeps)})


@pytest.mark.parametrize("sweeps,path_mtu", [
    pytest.param([{"verdict": "black-hole", "path_mtu": 1320}, {"verdict": "black-hole", "path_mtu": 1280}, {"verdict": "clean"}], 1280,
                 id="the_lowest_black_hole_wins"),
    pytest.param([{"verdict": "clean"}, {"verdict": "unreachable"}], 1400, id="a_clean_path_clamps_at_the_node_mtu"),
    pytest.param([{"verdict": "black-hole", "path_mtu": 1480}], 1400, id="never_above_the_node_mtu"),
])
def test_the_measured_path_mtu(sweeps, path_mtu):
    assert measured_path_mtu(_measurement(*sweeps), mtu=1400) == path_mtu


@pytest.mark.parametrize("output,message", [
    pytest.param(_measurement({"target": "ghcr.io:443", "verdict": "unreachable"}, {"target": "quay.io:443", "verdict": "no-result"}),
                 "could not measure the path MTU from the gateway (ghcr.io:443: unreachable, quay.io:443: no-result); set gateway.pathMtu "
                 "to a number, or fix the gateway's egress and raise gateway.remeasure", id="nothing_answered"),
    pytest.param("Traceback (most recent call last)", "the path MTU measurement on the gateway printed no result; see the gateway-measure "
                 "step's output", id="no_result"),
])
def test_a_measurement_without_a_value_says_what_to_do(output, message):
    with pytest.raises(MeasureError) as caught:
        measured_path_mtu(output, mtu=1400)
    assert str(caught.value) == message
