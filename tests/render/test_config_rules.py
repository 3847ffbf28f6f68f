"""Each broken config breaks one rule and must name its key path, and say what is expected."""

from __future__ import annotations

import pytest

from components.config import parse_config
from tests.conftest import problems_of

DELETE = object()


def _set(raw, path, value):
    """Set (or, with value=DELETE, remove) a dotted path such as 'nodes[1].ip' in a raw config."""
    *parents, last = path.replace("]", "").replace("[", ".").split(".")
    target = raw
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key = int(last) if last.isdigit() else last
    if value is DELETE:
        del target[key]
    else:
        target[key] = value


NETWORK_KEYS = "bridge, subnet, gateway, dns, searchDomains, mtu, vlan"
TOP_KEYS = ("proxmox, network, image, ssh, k3s, nodes, gateway, mirror, secrets, validation, monitoring, "
            "proxmoxApiToken, sshPrivateKey, k3sToken, mirrorCredentials, dopplerToken")

PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-canary-7f3a\n-----END OPENSSH PRIVATE KEY-----"
PRIVATE_KEY_MESSAGE = ("ssh.publicKeys[1]: is a private key; never paste it here: set it with pulumi config set --secret netstab:sshPrivateKey < KEYFILE, "
                       "and list its public half (ssh-keygen -y -f KEY)")

# edits to the homelab stack, and the one problem line they must produce
BROKEN = [
    pytest.param([("network.subnet", "10.27.27.0")], "network.subnet: '10.27.27.0' is not a CIDR such as 10.27.27.0/24",
                 id="subnet_not_a_cidr"),
    pytest.param([("network.subnet", "10.27.27.5/24")],
                 "network.subnet: '10.27.27.5/24' is not a CIDR such as 10.27.27.0/24 (10.27.27.5/24 has host bits set)",
                 id="subnet_host_bits_set"),
    pytest.param([("network.gateway", "10.27.27.300")], "network.gateway: '10.27.27.300' is not an IP address", id="gateway_not_an_ip"),
    pytest.param([("network.gateway", "10.27.28.1")],
                 "network.gateway: 10.27.28.1 is outside network.subnet 10.27.27.0/24; use an address inside it", id="gateway_outside_subnet"),
    pytest.param([("network.dns", ["10.27.27.1", "one.one"])], "network.dns[1]: 'one.one' is not an IP address", id="dns_entry_not_an_ip"),
    pytest.param([("network.dns", [])], "network.dns: needs at least one resolver address", id="no_resolver"),
    pytest.param([("network.mtu", 500)], "network.mtu: 500 is not an integer in 576..9000", id="mtu_too_small"),
    pytest.param([("network.mtu", 9216)], "network.mtu: 9216 is not an integer in 576..9000", id="mtu_too_large"),
    pytest.param([("network.mtu", "jumbo")], "network.mtu: 'jumbo' is not an integer in 576..9000", id="mtu_not_a_number"),
    pytest.param([("nodes[1].ip", "192.168.1.21")],
                 "nodes[1].ip: 192.168.1.21 is outside network.subnet 10.27.27.0/24; pick an address inside it", id="node_ip_outside_subnet"),
    pytest.param([("nodes[2].ip", "10.27.27.1")], "nodes[2].ip: 10.27.27.1 is the gateway's address (network.gateway); pick another",
                 id="node_ip_is_gateway"),
    pytest.param([("nodes[2].ip", "10.27.27.255")],
                 "nodes[2].ip: 10.27.27.255 is the subnet's network or broadcast address; pick a host address", id="node_ip_is_broadcast"),
    pytest.param([("nodes[0].ip", "10.27.27")], "nodes[0].ip: '10.27.27' is not an IP address", id="node_ip_malformed"),
    pytest.param([("nodes[2].vmId", 2721)], "nodes[2].vmId: 2721 is already used by nodes[1]; each VM needs its own", id="duplicate_vm_id"),
    pytest.param([("nodes[2].name", "worker1")], "nodes[2].name: worker1 is already used by nodes[1]; each VM needs its own", id="duplicate_name"),
    pytest.param([("nodes[2].ip", "10.27.27.21")], "nodes[2].ip: 10.27.27.21 is already used by nodes[1]; each VM needs its own", id="duplicate_ip"),
    pytest.param([("nodes[1].vmId", 2711 + 2**24)],
                 "nodes[1].vmId: 16779927 gives the same MAC address (02:4e:53:00:0a:97) as vmId 2711 of nodes[0]; "
                 "the MAC keeps the id's low 24 bits, so pick an id that differs in them", id="vm_ids_sharing_a_mac"),
    pytest.param([("network.searchDomains", ["lan", "bad domain"])],
                 "network.searchDomains[1]: 'bad domain' is not a domain name such as lan or home.arpa", id="search_domain_not_a_domain"),
    pytest.param([("network.searchDomains", ["-lan"])],
                 "network.searchDomains[0]: '-lan' is not a domain name such as lan or home.arpa", id="search_domain_leading_hyphen"),
    pytest.param([("network.bridge", DELETE)], "network.bridge: missing required key", id="missing_bridge"),
    pytest.param([("k3s.version", DELETE)], "k3s.version: missing required key", id="missing_k3s_version"),
    pytest.param([("k3s", DELETE)], "k3s: missing required key", id="missing_section"),
    pytest.param([("nodes", DELETE)], "nodes: missing required key", id="missing_nodes"),
    pytest.param([("nodes", [])], "nodes: needs at least one node with role: server", id="empty_nodes"),
    pytest.param([("nodes", "cp1")], "nodes: 'cp1' is not a list", id="nodes_not_a_list"),
    pytest.param([("network.mut", 1400)], f"network.mut: unknown key; expected one of: {NETWORK_KEYS}", id="unknown_key_in_section"),
    pytest.param([("network.search_domains", ["lan"])], f"network.search_domains: unknown key; expected one of: {NETWORK_KEYS}",
                 id="python_name_instead_of_key"),
    pytest.param([("netwrok", {})], f"netwrok: unknown key; expected one of: {TOP_KEYS}", id="unknown_top_level_key"),
    pytest.param([("nodes[0].memory", 4096)], "nodes[0].memory: unknown key; expected one of: name, role, vmId, ip, cores, memoryMb, diskGb, proxmoxNode",
                 id="unknown_key_in_node"),
    pytest.param([("nodes[1].role", "worker")], "nodes[1].role: 'worker' is not one of server, agent", id="bad_role"),
    pytest.param([("nodes[0].role", "agent")],
                 "nodes: needs at least one node with role: server (found 0)", id="no_server"),
    pytest.param([("nodes[1].role", "server"), ("k3s.vip", "10.27.27.10")],
                 "nodes: has 2 servers; use 1, or an odd number of at least 3: the servers run embedded etcd, which writes only while a majority "
                 "(2 of 2) is up, so 2 servers tolerate 0 failed server(s), no more than 1 do; make one of them an agent, or add a server",
                 id="two_servers"),
    pytest.param([("nodes[0].name", "CP_1")], "nodes[0].name: 'CP_1' is not a hostname (lowercase letters, digits, '-')", id="bad_hostname"),
    pytest.param([("nodes[0].vmId", 99)], "nodes[0].vmId: 99 is not an integer in 100..999999999", id="vm_id_below_proxmox_minimum"),
    pytest.param([("k3s.version", "latest")], "k3s.version: 'latest' is not a K3s release such as v1.33.5+k3s1", id="k3s_version_unpinned"),
    pytest.param([("proxmox.endpoint", "http://pve:8006")],
                 "proxmox.endpoint: 'http://pve:8006' is not an https:// URL such as https://pve.lan:8006/", id="endpoint_not_https"),
    pytest.param([("proxmox.insecure", "yes")], "proxmox.insecure: 'yes' is not true or false", id="not_a_boolean"),
    pytest.param([("proxmox.node", "")], "proxmox.node: '' is not a Proxmox node name such as pve", id="empty_string"),
    pytest.param([("image.templateVmId", 9000)],
                 "image: set exactly one of image.url (a cloud image to download) or image.templateVmId", id="image_both_url_and_template"),
    pytest.param([("image.url", DELETE)],
                 "image: set exactly one of image.url (a cloud image to download) or image.templateVmId", id="image_neither_url_nor_template"),
    pytest.param([("ssh.publicKeys", ["ssh-ed25519 AAAAC3Nza me@laptop", PRIVATE_KEY])], PRIVATE_KEY_MESSAGE, id="ssh_private_key_as_public"),
    pytest.param([("ssh.publicKeys", ["ssh-ed25519"])], "ssh.publicKeys: ['ssh-ed25519'] is not a non-empty list of SSH public keys (ssh-ed25519 AAAA...)",
                 id="ssh_public_key_without_key"),
    pytest.param([("network.gateway", "10.27.27.0")],
                 "network.gateway: 10.27.27.0 is the subnet's network or broadcast address; use a host address", id="gateway_at_network_address"),
    pytest.param([("network.gateway", "10.27.27.255")],
                 "network.gateway: 10.27.27.255 is the subnet's network or broadcast address; use a host address", id="gateway_at_broadcast_address"),
    pytest.param([("network.subnet", "0.0.0.0/0")],
                 "network.subnet: 0.0.0.0/0 is too wide (/0): the mirror's firewall admits the whole subnet; use a prefix from /8 to /30, "
                 "such as 10.27.27.0/24", id="subnet_wider_than_a_slash_8"),
    pytest.param([("network.subnet", "10.27.27.0/31")],
                 "network.subnet: 10.27.27.0/31 is too narrow (/31) for a gateway and the VMs; use a prefix from /8 to /30, such as 10.27.27.0/24",
                 id="subnet_narrower_than_a_slash_30"),
    pytest.param([("network.subnet", "fd00:27::/64")],
                 "network.subnet: fd00:27::/64 is IPv6: IPv6 VM subnets are not supported yet; use an IPv4 subnet "
                 "(gateway.ipv6Subnet also clamps an IPv6 prefix)", id="ipv6_subnet_not_supported_yet"),
    pytest.param([("network.dns", [0])], "network.dns[0]: 0 is not an IP address", id="resolver_zero"),
    pytest.param([("network.dns", ["10.27.27.1", "0.0.0.0"])],
                 "network.dns[1]: 0.0.0.0 is the unspecified address: the VMs cannot send DNS there; use a resolver such as 10.27.27.1 or 1.1.1.1",
                 id="resolver_unspecified"),
    pytest.param([("network.dns", ["127.0.0.1"])],
                 "network.dns[0]: 127.0.0.1 is a loopback address: the VMs cannot send DNS there; use a resolver such as 10.27.27.1 or 1.1.1.1",
                 id="resolver_loopback"),
    pytest.param([("network.dns", ["224.0.0.251"])],
                 "network.dns[0]: 224.0.0.251 is a multicast address: the VMs cannot send DNS there; use a resolver such as 10.27.27.1 or 1.1.1.1",
                 id="resolver_multicast"),
    pytest.param([("network.dns", ["::"])],
                 "network.dns[0]: :: is the unspecified address: the VMs cannot send DNS there; use a resolver such as 10.27.27.1 or 1.1.1.1",
                 id="resolver_unspecified_ipv6"),
    pytest.param([("network", "10.27.27.0/24")], "network: expected a mapping, got '10.27.27.0/24'", id="section_not_a_mapping"),
    pytest.param([("nodes[1]", "worker1")], "nodes[1]: expected a mapping, got 'worker1'", id="node_not_a_mapping"),
    pytest.param([("k3sToken", "hunter2")],
                 "netstab:k3sToken: is stored in plain text; set it with: pulumi config set --secret netstab:k3sToken (it prompts for the value; never put it on the command line)",
                 id="secret_in_plain_text"),
]


@pytest.mark.parametrize("edits,expected", BROKEN)
def test_broken_config_names_its_key_path(homelab_raw, edits, expected):
    for path, value in edits:
        _set(homelab_raw, path, value)
    assert problems_of(homelab_raw) == [expected]


def test_every_problem_is_reported_at_once(homelab_raw):
    _set(homelab_raw, "network.mtu", 100)
    _set(homelab_raw, "nodes[1].ip", "10.0.0.1")
    _set(homelab_raw, "nodes[2].vmId", 2711)
    _set(homelab_raw, "k3s.colour", "blue")
    _set(homelab_raw, "gateway.pathMtu", DELETE)
    _set(homelab_raw, "gateway.mss", 1380)
    _set(homelab_raw, "network.dns", ["one.one"])
    _set(homelab_raw, "network.mtu", 1400)
    assert sorted(problems_of(homelab_raw)) == [
        "gateway.mss: MSS 1380 is outside 536..1360 (MTU 1400 - 40); use a value in that range (network.mtu is 1400)",
        "k3s.colour: unknown key; expected one of: version, installUrl, readyTimeoutSeconds, vip, vipInterface",
        "network.dns[0]: 'one.one' is not an IP address",
        "nodes[1].ip: 10.0.0.1 is outside network.subnet 10.27.27.0/24; pick an address inside it",
        "nodes[2].vmId: 2711 is already used by nodes[0]; each VM needs its own",
    ]


def test_rules_that_need_an_invalid_field_wait_for_it(homelab_raw):
    _set(homelab_raw, "network.subnet", "fd00:27::/64")
    _set(homelab_raw, "network.mtu", 100)
    assert sorted(problems_of(homelab_raw)) == [  # no node "outside the subnet", no MSS against a missing MTU
        "network.mtu: 100 is not an integer in 576..9000",
        "network.subnet: fd00:27::/64 is IPv6: IPv6 VM subnets are not supported yet; use an IPv4 subnet "
        "(gateway.ipv6Subnet also clamps an IPv6 prefix)",
    ]


def test_a_key_that_yaml_read_as_a_boolean_is_named(homelab_raw):
    homelab_raw["network"][True] = "vmbr1"  # `on: vmbr1` or `yes: ...` in YAML 1.1
    assert problems_of(homelab_raw) == [
        "network.True: key True is not text (YAML reads yes/no/on/off as booleans and bare numbers as numbers); "
        f"expected one of: {NETWORK_KEYS}"]


def test_a_private_key_is_never_quoted(homelab_raw):
    _set(homelab_raw, "ssh.publicKeys", [PRIVATE_KEY, "not a key"])
    problems = problems_of(homelab_raw)
    assert problems == [PRIVATE_KEY_MESSAGE.replace("publicKeys[1]", "publicKeys[0]")]
    assert "canary" not in "\n".join(problems)


def test_a_section_rule_still_runs_beside_an_invalid_field(homelab_raw):
    _set(homelab_raw, "network.gateway", "10.27.28.1")
    _set(homelab_raw, "network.mtu", 100)
    assert sorted(problems_of(homelab_raw)) == [
        "network.gateway: 10.27.28.1 is outside network.subnet 10.27.27.0/24; use an address inside it",
        "network.mtu: 100 is not an integer in 576..9000",
    ]


def test_the_homelab_stack_is_valid_and_has_the_plans_shape(homelab):
    assert str(homelab.network.subnet) == "10.27.27.0/24"
    assert homelab.network.mtu == 1400
    assert homelab.server.name == "cp1"
    assert [n.name for n in homelab.agents] == ["worker1", "worker2"]


def test_defaults_fill_optional_keys(homelab_raw):
    del homelab_raw["k3s"]["readyTimeoutSeconds"]
    for node in homelab_raw["nodes"]:
        del node["cores"]
    config = parse_config(homelab_raw)
    assert config.k3s.ready_timeout_s == 600
    assert {n.cores for n in config.nodes} == {2}


def test_numbers_and_booleans_given_as_text_are_refused_as_the_schema_refuses_them(homelab_raw):
    """The engine hands sections over as parsed JSON, and `pulumi config set --path KEY 1400` stores an int: text is a quoted value."""
    _set(homelab_raw, "network.mtu", "1400")
    _set(homelab_raw, "proxmox.insecure", "False")
    _set(homelab_raw, "gateway.pathMtu", "1400")
    assert problems_of(homelab_raw) == [
        "proxmox.insecure: 'False' is not true or false (quoted, it is text: write it without quotes)",
        "network.mtu: '1400' is not an integer in 576..9000 (quoted, it is text: write it without quotes)",
        "gateway.pathMtu: '1400' is not an integer in 576..9000 or auto (quoted, it is text: write it without quotes)",
    ]


def test_numbers_and_booleans_as_yaml_writes_them_are_read(homelab_raw):
    _set(homelab_raw, "network.mtu", 1400)
    _set(homelab_raw, "proxmox.insecure", False)
    config = parse_config(homelab_raw)
    assert config.network.mtu == 1400 and config.proxmox.insecure is False


def test_image_file_name_defaults_to_the_url_basename(homelab):
    assert homelab.image.file_name == "noble-server-cloudimg-amd64.img"


def test_a_template_instead_of_an_image_url_is_accepted(homelab_raw):
    homelab_raw["image"] = {"templateVmId": 9000}
    config = parse_config(homelab_raw)
    assert config.image.template_vm_id == 9000 and config.image.url is None and config.image.file_name is None


def test_config_is_frozen(homelab):
    with pytest.raises(ValueError, match="frozen"):
        homelab.network.mtu = 9000
