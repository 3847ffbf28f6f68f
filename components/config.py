"""The stack's config as frozen, validated types.

Data flows one way: stack YAML (or `pulumi.Config`) -> `parse_config` -> these types ->
renderers and components. Every problem is reported at once, as `key.path: message`.
Secrets are not part of these types: they stay Pulumi secrets (see `load_secrets`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.render.gateway import FLAVORS, GatewayRuleError, GatewayRules
from components.schema import IPAddress, IPNetwork, Problems, Section

NAMESPACE = "netstab"

# Secret config keys: set only with `pulumi config set --secret`, never read into these types.
SECRET_KEYS = ("proxmoxApiToken", "sshPrivateKey", "k3sToken")

SECTIONS = ("proxmox", "network", "image", "ssh", "k3s", "nodes", "gateway")

MTU_MIN, MTU_MAX = 576, 9000
ROLES = ("server", "agent")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
K3S_VERSION = re.compile(r"^v\d+\.\d+\.\d+\+k3s\d+$")
# Guest NIC name the cloud-init network config pins by MAC; flannel binds to it.
GUEST_INTERFACE = "eth0"


@dataclass(frozen=True)
class ProxmoxConfig:
    endpoint: str
    node: str
    insecure: bool
    vm_datastore: str
    snippets_datastore: str
    image_datastore: str
    ssh_user: str


@dataclass(frozen=True)
class NetworkConfig:
    bridge: str
    subnet: IPNetwork
    gateway: IPAddress
    dns: tuple[IPAddress, ...]
    search_domains: tuple[str, ...]
    mtu: int
    vlan: int | None


@dataclass(frozen=True)
class ImageConfig:
    """Either a cloud image Proxmox downloads (`url`) or an existing template to clone."""

    url: str | None
    file_name: str | None
    template_vm_id: int | None


@dataclass(frozen=True)
class SshConfig:
    user: str
    public_keys: tuple[str, ...]


@dataclass(frozen=True)
class K3sConfig:
    version: str
    install_url: str
    ready_timeout_s: int


@dataclass(frozen=True)
class NodeConfig:
    name: str
    role: str
    vm_id: int
    ip: IPAddress
    cores: int
    memory_mb: int
    disk_gb: int

    @property
    def mac(self) -> str:
        """A stable, locally administered MAC derived from the VM id, so cloud-init can match the NIC."""
        low = self.vm_id & 0xFFFFFF
        return f"02:4e:53:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


GATEWAY_KINDS = ("linux", "opnsense", "pfsense", "openwrt", "mikrotik", "other")


@dataclass(frozen=True)
class GatewayConfig:
    """Where the VM subnet leaves for the internet, and how its MSS is clamped there.

    `manage: true` applies the rules over SSH (Linux gateways, often the Proxmox host itself);
    otherwise `render` writes gateway/MANUAL.md with the settings to enter by hand.
    """

    manage: bool
    kind: str
    host: str | None
    user: str
    port: int
    flavor: str
    mss: int | None
    path_mtu: int | None
    pmtu: bool
    lan_interface: str | None
    ipv6_subnet: IPNetwork | None
    rules: GatewayRules


@dataclass(frozen=True)
class StackConfig:
    proxmox: ProxmoxConfig
    network: NetworkConfig
    image: ImageConfig
    ssh: SshConfig
    k3s: K3sConfig
    nodes: tuple[NodeConfig, ...]
    gateway: GatewayConfig

    @property
    def server(self) -> NodeConfig:
        return next(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[NodeConfig, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")


def parse_config(raw: Mapping[str, Any], secret_keys_present: frozenset[str] | None = None) -> StackConfig:
    """Validate the `netstab:` keys of a stack (namespace already stripped).

    `secret_keys_present`, when given, names the secret keys that are set *as secrets*;
    a secret key with a plain value is an error either way.
    Raises ConfigError listing every problem.
    """
    problems = Problems()
    top = Section(dict(raw), "", problems, SECTIONS + SECRET_KEYS)
    for key in SECRET_KEYS:
        if key in raw and not (secret_keys_present and key in secret_keys_present) and not _looks_secure(raw[key]):
            problems.add(f"{NAMESPACE}:{key}", f"is stored in plain text; {secret_hint(key)}")

    proxmox = _proxmox(top.section("proxmox", ProxmoxKeys))
    network = _network(top.section("network", NetworkKeys))
    image = _image(top.section("image", ImageKeys))
    ssh = _ssh(top.section("ssh", SshKeys))
    k3s = _k3s(top.section("k3s", K3sKeys, default={}))
    nodes = _nodes(top.items("nodes"), problems)
    gateway = _gateway(top.section("gateway", GatewayKeys, default={"pathMtu": 1400}), network)
    if nodes is not None:
        _check_nodes_unique(nodes, problems)
        if network is not None:
            _check_nodes_against_network(nodes, network, problems)
    problems.raise_if_any()
    assert proxmox and network and image and ssh and k3s and gateway and nodes is not None
    return StackConfig(proxmox, network, image, ssh, k3s, tuple(nodes), gateway)


def secret_hint(key: str) -> str:
    return f"set it with: pulumi config set --secret {NAMESPACE}:{key} <value>"


def _looks_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


ProxmoxKeys = ("endpoint", "node", "insecure", "vmDatastore", "snippetsDatastore", "imageDatastore", "sshUser")


def _proxmox(s: Section) -> ProxmoxConfig | None:
    before = s.problems.count()
    endpoint = s.value("endpoint", _https_url, "an https:// URL such as https://pve.lan:8006/")
    values = (
        endpoint,
        s.string("node"),
        s.boolean("insecure", default=False),
        s.string("vmDatastore", default="local-lvm"),
        s.string("snippetsDatastore", default="local"),
        s.string("imageDatastore", default="local"),
        s.string("sshUser", default="root"),
    )
    if s.problems.count() > before or not s.ok:
        return None
    return ProxmoxConfig(*values)  # type: ignore[arg-type]


NetworkKeys = ("bridge", "subnet", "gateway", "dns", "searchDomains", "mtu", "vlan")


def _network(s: Section) -> NetworkConfig | None:
    before = s.problems.count()
    bridge = s.string("bridge")
    subnet = s.network("subnet")
    gateway = s.ip("gateway")
    dns = _ip_list(s, "dns")
    search = tuple(s.value("searchDomains", _string_list, "a list of domain names", default=[]) or [])
    mtu = s.integer("mtu", MTU_MIN, MTU_MAX)
    vlan = s.integer("vlan", 1, 4094, default=None)
    if subnet is not None and gateway is not None and gateway not in subnet:
        s.problems.add(s.key_path("gateway"), f"{gateway} is outside network.subnet {subnet}; use an address inside it")
    if dns is not None and not dns:
        s.problems.add(s.key_path("dns"), "needs at least one resolver address")
    if s.problems.count() > before or not s.ok:
        return None
    return NetworkConfig(bridge, subnet, gateway, tuple(dns or ()), search, mtu, vlan)  # type: ignore[arg-type]


ImageKeys = ("url", "fileName", "templateVmId")


def _image(s: Section) -> ImageConfig | None:
    before = s.problems.count()
    url = s.value("url", _https_url, "an https:// URL of a cloud image", default=None)
    file_name = s.string("fileName", default=None)
    template = s.integer("templateVmId", 100, 999_999_999, default=None)
    if s.ok and (url is None) == (template is None) and s.problems.count() == before:
        s.problems.add(s.path, "set exactly one of image.url (a cloud image to download) or image.templateVmId")
    if s.problems.count() > before or not s.ok:
        return None
    if url and not file_name:
        file_name = url.rstrip("/").rsplit("/", 1)[-1]
    return ImageConfig(url, file_name, template)


SshKeys = ("user", "publicKeys")


def _ssh(s: Section) -> SshConfig | None:
    before = s.problems.count()
    user = s.string("user")
    keys = s.value("publicKeys", _ssh_public_keys, "a non-empty list of SSH public keys (ssh-ed25519 AAAA...)")
    if s.problems.count() > before or not s.ok:
        return None
    return SshConfig(user, tuple(keys or ()))  # type: ignore[arg-type]


K3sKeys = ("version", "installUrl", "readyTimeoutSeconds")


def _k3s(s: Section) -> K3sConfig | None:
    before = s.problems.count()
    version = s.value("version", _k3s_version, "a K3s release such as v1.33.5+k3s1")
    install_url = s.value("installUrl", _https_url, "an https:// URL", default="https://get.k3s.io")
    timeout = s.integer("readyTimeoutSeconds", 30, 7200, default=600)
    if s.problems.count() > before or not s.ok:
        return None
    return K3sConfig(version, install_url, timeout)  # type: ignore[arg-type]


GatewayKeys = ("manage", "kind", "host", "user", "port", "flavor", "mss", "pathMtu", "pmtu", "lanInterface", "ipv6Subnet")


def _gateway(s: Section, network: NetworkConfig | None) -> GatewayConfig | None:
    before = s.problems.count()
    manage = s.boolean("manage", default=False)
    kind = s.value("kind", _one_of(GATEWAY_KINDS), f"one of {', '.join(GATEWAY_KINDS)}", default="linux")
    host = s.string("host", default=None)
    user = s.string("user", default="root")
    port = s.integer("port", 1, 65535, default=22)
    flavor = s.value("flavor", _one_of(FLAVORS), f"one of {', '.join(FLAVORS)}", default="nftables")
    mss = s.integer("mss", 1, 65535, default=None)
    path_mtu = s.integer("pathMtu", MTU_MIN, MTU_MAX, default=None)
    pmtu = s.boolean("pmtu", default=False)
    lan = s.string("lanInterface", default=None)
    ipv6 = s.network("ipv6Subnet", default=None)
    if manage and kind != "linux":
        s.problems.add(s.key_path("manage"), f"true needs gateway.kind linux (got {kind}); for {kind}, set manage: false and follow gateway/MANUAL.md")
    if manage and not host:
        s.problems.add(s.key_path("host"), "missing: manage: true needs the gateway's SSH address (often the Proxmox host)")
    if ipv6 is not None and ipv6.version != 6:
        s.problems.add(s.key_path("ipv6Subnet"), f"{ipv6} is not an IPv6 CIDR")
    if sum((mss is not None, path_mtu is not None, bool(pmtu))) != 1:
        s.problems.add(s.path, "set exactly one MSS source: gateway.mss, gateway.pathMtu (measured; MSS = path MTU - 40) or gateway.pmtu: true")
    if s.problems.count() > before or not s.ok or network is None:
        return None
    try:
        rules = GatewayRules.build([network.subnet, *([ipv6] if ipv6 else [])], mss=mss, path_mtu=path_mtu, pmtu=bool(pmtu), mtu=network.mtu)
    except GatewayRuleError as exc:
        key = "mss" if mss is not None else "pathMtu" if path_mtu is not None else ""
        s.problems.add(s.key_path(key) if key else s.path, f"{exc} (network.mtu is {network.mtu})")
        return None
    return GatewayConfig(manage, kind, host, user, port, flavor, mss, path_mtu, bool(pmtu), lan, ipv6, rules)  # type: ignore[arg-type]


NodeKeys = ("name", "role", "vmId", "ip", "cores", "memoryMb", "diskGb")


def _nodes(raw: list[Any] | None, problems: Problems) -> list[NodeConfig] | None:
    if raw is None:
        return None
    before = problems.count()
    nodes = [n for i, item in enumerate(raw) if (n := _node(Section(item, f"nodes[{i}]", problems, NodeKeys)))]
    if not raw:
        problems.add("nodes", "needs at least one node with role: server")
    return nodes if problems.count() == before else None


def _node(s: Section) -> NodeConfig | None:
    before = s.problems.count()
    name = s.value("name", _hostname, "a hostname (lowercase letters, digits, '-')")
    role = s.value("role", _one_of(ROLES), f"one of {', '.join(ROLES)}")
    values = (
        name,
        role,
        s.integer("vmId", 100, 999_999_999),
        s.ip("ip"),
        s.integer("cores", 1, 128, default=2),
        s.integer("memoryMb", 512, 1_048_576, default=4096),
        s.integer("diskGb", 8, 65_536, default=32),
    )
    if s.problems.count() > before or not s.ok:
        return None
    return NodeConfig(*values)  # type: ignore[arg-type]


def _check_nodes_against_network(nodes: list[NodeConfig], network: NetworkConfig, problems: Problems) -> None:
    """Rules that span sections: every node address is a usable host address of the subnet."""
    for i, node in enumerate(nodes):
        path = f"nodes[{i}].ip"
        if node.ip not in network.subnet:
            problems.add(path, f"{node.ip} is outside network.subnet {network.subnet}; pick an address inside it")
        elif node.ip == network.gateway:
            problems.add(path, f"{node.ip} is the gateway's address (network.gateway); pick another")
        elif node.ip in (network.subnet.network_address, network.subnet.broadcast_address):
            problems.add(path, f"{node.ip} is the subnet's network or broadcast address; pick a host address")


def _check_nodes_unique(nodes: list[NodeConfig], problems: Problems) -> None:
    for attr, key in (("name", "name"), ("vm_id", "vmId"), ("ip", "ip")):
        seen: dict[Any, int] = {}
        for i, node in enumerate(nodes):
            value = getattr(node, attr)
            if value in seen:
                problems.add(f"nodes[{i}].{key}", f"{value} is already used by nodes[{seen[value]}]; each node needs its own")
            seen.setdefault(value, i)
    servers = [i for i, n in enumerate(nodes) if n.role == "server"]
    if len(servers) != 1:
        problems.add("nodes", f"needs exactly one node with role: server (found {len(servers)}); HA control planes are not supported yet")


def _ip_list(s: Section, key: str) -> list[IPAddress] | None:
    items = s.items(key)
    if items is None:
        return None
    out: list[IPAddress] = []
    for i, item in enumerate(items):
        try:
            out.append(ipaddress.ip_address(item))
        except (ValueError, TypeError):
            s.problems.add(f"{s.key_path(key)}[{i}]", f"{item!r} is not an IP address")
    return out


def _https_url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https://[^\s/]+(/\S*)?$", value):
        raise ValueError("")
    return value


def _hostname(value: Any) -> str:
    if not isinstance(value, str) or not HOSTNAME.match(value):
        raise ValueError("")
    return value


def _k3s_version(value: Any) -> str:
    if not isinstance(value, str) or not K3S_VERSION.match(value):
        raise ValueError("")
    return value


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("")
        return str(value)

    return check


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("")
    return value


def _ssh_public_keys(value: Any) -> list[str]:
    keys = _string_list(value)
    if not keys or not all(re.match(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) \S+", k) for k in keys):
        raise ValueError("")
    if any("PRIVATE KEY" in k for k in keys):
        raise ValueError("a private key was given; put it in netstab:sshPrivateKey as a secret")
    return keys
