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

from components.mss import MssError, clamp_values
from components.schema import IPAddress, IPNetwork, Problems, Section

NAMESPACE = "netstab"

# Secret config keys: set only with `pulumi config set --secret`, never read into these types.
SECRET_KEYS = ("proxmoxApiToken", "sshPrivateKey", "k3sToken")
# Optional secrets: upstream registry credentials for the mirror, as JSON {"docker.io": {"username", "password"}}.
OPTIONAL_SECRET_KEYS = ("mirrorCredentials", "dopplerToken")

SECTIONS = ("proxmox", "network", "image", "ssh", "k3s", "nodes", "gateway", "mirror", "secrets")

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
FLAVORS = ("nftables", "iptables")


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


@dataclass(frozen=True)
class StackConfig:
    proxmox: ProxmoxConfig
    network: NetworkConfig
    image: ImageConfig
    ssh: SshConfig
    k3s: K3sConfig
    nodes: tuple[NodeConfig, ...]
    gateway: GatewayConfig
    mirror: MirrorConfig
    secrets: SecretsConfig

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
    top = Section(dict(raw), "", problems, SECTIONS + SECRET_KEYS + OPTIONAL_SECRET_KEYS)
    for key in SECRET_KEYS + OPTIONAL_SECRET_KEYS:
        if key in raw and not (secret_keys_present and key in secret_keys_present) and not _looks_secure(raw[key]):
            problems.add(f"{NAMESPACE}:{key}", f"is stored in plain text; {secret_hint(key)}")

    proxmox = _proxmox(top.section("proxmox", ProxmoxKeys))
    network = _network(top.section("network", NetworkKeys))
    image = _image(top.section("image", ImageKeys))
    ssh = _ssh(top.section("ssh", SshKeys))
    k3s = _k3s(top.section("k3s", K3sKeys, default={}))
    nodes = _nodes(top.items("nodes"), problems)
    gateway = _gateway(top.section("gateway", GatewayKeys, default={"pathMtu": 1400}), network)
    mirror = _mirror(top.section("mirror", MirrorKeys, default={"enabled": False}))
    secrets = _secrets(top.section("secrets", SecretsKeys, default={"enabled": False}))
    if nodes is not None:
        hosts = list(nodes) + ([mirror.vm] if mirror and mirror.enabled and mirror.vm else [])
        _check_nodes_unique(hosts, problems)
        if network is not None:
            _check_nodes_against_network(hosts, network, problems)
    problems.raise_if_any()
    assert proxmox and network and image and ssh and k3s and gateway and mirror and secrets and nodes is not None
    return StackConfig(proxmox, network, image, ssh, k3s, tuple(nodes), gateway, mirror, secrets)


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
        clamp_values([network.subnet, *([ipv6] if ipv6 else [])], mss=mss, path_mtu=path_mtu, pmtu=bool(pmtu), mtu=network.mtu)
    except MssError as exc:
        key = "mss" if mss is not None else "pathMtu" if path_mtu is not None else ""
        s.problems.add(s.key_path(key) if key else s.path, f"{exc} (network.mtu is {network.mtu})")
        return None
    return GatewayConfig(manage, kind, host, user, port, flavor, mss, path_mtu, bool(pmtu), lan, ipv6)  # type: ignore[arg-type]


DEFAULT_UPSTREAMS = (
    {"registry": "docker.io", "remote": "https://registry-1.docker.io", "port": 5001},
    # oci.external-secrets.io redirects to ghcr.io/external-secrets with the same repository paths,
    # so the ghcr.io instance serves it (see README: Registry mirror).
    {"registry": "ghcr.io", "port": 5002, "aliases": ["oci.external-secrets.io"]},
    {"registry": "quay.io", "port": 5003},
    {"registry": "registry.k8s.io", "port": 5004},
)


@dataclass(frozen=True)
class UpstreamConfig:
    registry: str  # the name images use (docker.io, ghcr.io, ...)
    remote: str  # what the instance proxies
    port: int
    aliases: tuple[str, ...]  # other registry names served from the same instance


@dataclass(frozen=True)
class MirrorConfig:
    enabled: bool
    vm: NodeConfig | None
    upstreams: tuple[UpstreamConfig, ...]
    warmup_groups: dict[str, tuple[str, ...]]
    warmup_k3s_images: bool
    warmup_fatal: bool

    def endpoint(self, upstream: UpstreamConfig) -> str:
        assert self.vm is not None
        return f"http://{self.vm.ip}:{upstream.port}"


DEFAULT_WARMUP_GROUPS: dict[str, list[str]] = {
    "plan test images": [
        "ghcr.io/fluxcd/helm-controller:v1.5.1",
        "oci.external-secrets.io/external-secrets/external-secrets:v2.1.0",
        "docker.io/rancher/mirrored-library-busybox:1.37.0",
        "ghcr.io/tailscale/tailscale:v1.96.5",
        "quay.io/prometheus/node-exporter:v1.8.2",
    ],
    "kube-vip": ["ghcr.io/kube-vip/kube-vip:v1.0.1"],
    "flux": ["ghcr.io/fluxcd/source-controller:v1.7.2", "ghcr.io/fluxcd/kustomize-controller:v1.7.1", "ghcr.io/fluxcd/notification-controller:v1.7.3"],
    "tailscale": ["ghcr.io/tailscale/k8s-operator:v1.96.5"],
    "rancher": ["docker.io/rancher/rancher:v2.12.3", "docker.io/rancher/rancher-webhook:v0.8.3", "docker.io/rancher/shell:v0.5.0"],
    "traefik": ["docker.io/library/traefik:v3.5.3"],
    "cert-manager": ["quay.io/jetstack/cert-manager-controller:v1.19.1", "quay.io/jetstack/cert-manager-webhook:v1.19.1",
                     "quay.io/jetstack/cert-manager-cainjector:v1.19.1"],
    "observability": ["quay.io/prometheus/prometheus:v3.7.3", "quay.io/prometheus-operator/prometheus-operator:v0.86.1",
                      "docker.io/grafana/grafana:12.2.1"],
    "nfs and helpers": ["registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:v4.0.2", "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.15.0"],
}

MirrorKeys = ("enabled", "name", "vmId", "ip", "cores", "memoryMb", "diskGb", "upstreams", "warmup")
UpstreamKeys = ("registry", "remote", "port", "aliases")
WarmupKeys = ("fatal", "k3sImages", "groups")
REGISTRY_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d+)?$")
IMAGE_REF = re.compile(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})$")


def _mirror(s: Section) -> MirrorConfig | None:
    before = s.problems.count()
    enabled = s.boolean("enabled", default=True)
    if not enabled:
        return MirrorConfig(False, None, (), {}, False, False) if s.problems.count() == before else None
    vm_values = (
        s.value("name", _hostname, "a hostname", default="mirror"),
        "mirror",
        s.integer("vmId", 100, 999_999_999),
        s.ip("ip"),
        s.integer("cores", 1, 64, default=2),
        s.integer("memoryMb", 512, 262_144, default=2048),
        s.integer("diskGb", 8, 65_536, default=100),
    )
    raw_upstreams = s.items("upstreams", default=[dict(u) for u in DEFAULT_UPSTREAMS])
    upstreams = [_upstream(Section(u, f"{s.key_path('upstreams')}[{i}]", s.problems, UpstreamKeys)) for i, u in enumerate(raw_upstreams or [])]
    warm = s.section("warmup", WarmupKeys, default={})
    fatal = warm.boolean("fatal", default=False)
    k3s_images = warm.boolean("k3sImages", default=True)
    groups = warm.value("groups", _image_groups, "a mapping of group name -> list of image references (registry/repo:tag)",
                        default=DEFAULT_WARMUP_GROUPS)
    if not raw_upstreams and raw_upstreams is not None:
        s.problems.add(s.key_path("upstreams"), "needs at least one upstream registry")
    _check_upstreams_unique([u for u in upstreams if u], s)
    if s.problems.count() > before or not s.ok:
        return None
    vm = NodeConfig(*vm_values)  # type: ignore[arg-type]
    return MirrorConfig(True, vm, tuple(u for u in upstreams if u), {k: tuple(v) for k, v in (groups or {}).items()},
                        bool(k3s_images), bool(fatal))


def _upstream(s: Section) -> UpstreamConfig | None:
    before = s.problems.count()
    registry = s.value("registry", _registry_name, "a registry host name such as ghcr.io")
    remote = s.value("remote", _https_url, "an https:// URL", default=None)
    port = s.integer("port", 1024, 65535)
    aliases = s.value("aliases", lambda v: [_registry_name(a) for a in _string_list(v)], "a list of registry host names", default=[])
    if s.problems.count() > before or not s.ok:
        return None
    return UpstreamConfig(registry, remote or f"https://{registry}", port, tuple(aliases or ()))  # type: ignore[arg-type]


def _check_upstreams_unique(upstreams: list[UpstreamConfig], s: Section) -> None:
    ports: dict[int, str] = {}
    names: dict[str, str] = {}
    for i, u in enumerate(upstreams):
        path = f"{s.key_path('upstreams')}[{i}]"
        if u.port in ports:
            s.problems.add(f"{path}.port", f"{u.port} is already used by {ports[u.port]}; each instance needs its own port")
        ports.setdefault(u.port, u.registry)
        for name in (u.registry, *u.aliases):
            if name in names:
                s.problems.add(f"{path}.registry", f"{name} is already served by the {names[name]} instance")
            names.setdefault(name, u.registry)


def _registry_name(value: Any) -> str:
    if not isinstance(value, str) or not REGISTRY_NAME.match(value):
        raise ValueError("")
    return value


def _image_groups(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise ValueError("")
    for name, images in value.items():
        refs = _string_list(images)
        bad = [r for r in refs if not IMAGE_REF.match(r)]
        if bad:
            raise ValueError(f"group {name!r} has references without an explicit registry and tag: {', '.join(bad)}")
    return value


K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
K8S_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
DURATION = re.compile(r"^(\d+(ns|us|ms|s|m|h))+$")


@dataclass(frozen=True)
class ExternalSecretConfig:
    name: str
    namespace: str
    target: str  # the Kubernetes Secret External Secrets generates
    data: tuple[tuple[str, str], ...]  # (remote key in Doppler, key in the Secret)
    refresh_interval: str
    critical: bool

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(key for _, key in self.data)


@dataclass(frozen=True)
class SecretsConfig:
    enabled: bool
    install_operator: bool
    chart_version: str
    chart_repository: str
    operator_namespace: str
    store_name: str
    token_secret: str
    doppler_project: str | None
    doppler_config: str | None
    external_secrets: tuple[ExternalSecretConfig, ...]
    gate_timeout_s: int
    force_sync_interval_s: int
    gated_manifests: tuple[str, ...]  # manifest files applied only after the gate passes

    @property
    def critical(self) -> tuple[ExternalSecretConfig, ...]:
        return tuple(e for e in self.external_secrets if e.critical)


SecretsKeys = ("enabled", "operator", "store", "externalSecrets", "gate")
OperatorKeys = ("install", "chartVersion", "repository", "namespace")
StoreKeys = ("name", "tokenSecret", "project", "config")
ExternalSecretKeys = ("name", "namespace", "target", "data", "refreshInterval", "critical")
GateKeys = ("timeoutSeconds", "forceSyncIntervalSeconds", "manifests")


def _secrets(s: Section) -> SecretsConfig | None:
    before = s.problems.count()
    enabled = s.boolean("enabled", default=True)
    if not enabled:
        return (SecretsConfig(False, False, "", "", "", "", "", None, None, (), 0, 0, ())) if s.problems.count() == before else None
    op = s.section("operator", OperatorKeys, default={})
    install = op.boolean("install", default=True)
    chart_version = op.value("chartVersion", _semver, "a chart version such as 2.1.0", default="2.1.0")
    repository = op.value("repository", _https_url, "an https:// chart repository", default="https://charts.external-secrets.io")
    op_ns = op.value("namespace", _k8s_label, "a Kubernetes namespace name", default="external-secrets")
    st = s.section("store", StoreKeys, default={})
    store = st.value("name", _k8s_name, "a Kubernetes object name", default="doppler")
    token_secret = st.value("tokenSecret", _k8s_name, "a Kubernetes Secret name", default="doppler-token")
    project = st.string("project", default=None)
    config = st.string("config", default=None)
    raw = s.items("externalSecrets", default=[])
    items = [_external_secret(Section(e, f"{s.key_path('externalSecrets')}[{i}]", s.problems, ExternalSecretKeys)) for i, e in enumerate(raw or [])]
    seen: dict[tuple[str, str], int] = {}
    targets: dict[tuple[str, str], int] = {}
    for i, item in enumerate(items):
        if item is None:
            continue
        path = f"{s.key_path('externalSecrets')}[{i}]"
        if (item.namespace, item.name) in seen:
            s.problems.add(f"{path}.name", f"{item.namespace}/{item.name} is already declared by externalSecrets[{seen[(item.namespace, item.name)]}]")
        seen.setdefault((item.namespace, item.name), i)
        if (item.namespace, item.target) in targets:
            s.problems.add(f"{path}.target", f"{item.namespace}/{item.target} is already the target of externalSecrets[{targets[(item.namespace, item.target)]}]")
        targets.setdefault((item.namespace, item.target), i)
    gate = s.section("gate", GateKeys, default={})
    timeout = gate.integer("timeoutSeconds", 30, 7200, default=600)
    interval = gate.integer("forceSyncIntervalSeconds", 10, 3600, default=30)
    manifests = gate.value("manifests", _string_list, "a list of manifest file paths", default=[])
    if s.problems.count() > before or not s.ok:
        return None
    return SecretsConfig(True, bool(install), chart_version, repository, op_ns, store, token_secret, project, config,  # type: ignore[arg-type]
                         tuple(i for i in items if i), timeout, interval, tuple(manifests or ()))  # type: ignore[arg-type]


def _external_secret(s: Section) -> ExternalSecretConfig | None:
    before = s.problems.count()
    name = s.value("name", _k8s_name, "a Kubernetes object name (lowercase, digits, '-', '.')")
    namespace = s.value("namespace", _k8s_label, "a Kubernetes namespace name (lowercase, digits, '-')")
    target = s.value("target", _k8s_name, "a Kubernetes Secret name", default=None)
    data = s.value("data", _key_mapping, "a mapping of Doppler key -> Secret key", default={})
    refresh = s.value("refreshInterval", _duration, "a duration such as 1h or 15m", default="1h")
    critical = s.boolean("critical", default=False)
    if critical and not data and s.problems.count() == before:
        s.problems.add(s.key_path("data"), "a critical secret needs at least one key: the gate checks that every key is there")
    if s.problems.count() > before or not s.ok:
        return None
    return ExternalSecretConfig(name, namespace, target or name, tuple((data or {}).items()), refresh, bool(critical))  # type: ignore[arg-type]


def _k8s_name(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 253 or not K8S_NAME.match(value):
        raise ValueError("")
    return value


def _k8s_label(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 63 or not K8S_LABEL.match(value):
        raise ValueError("")
    return value


def _key_mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValueError("")
    bad = [v for v in value.values() if not isinstance(v, str) or not SECRET_DATA_KEY.match(v)]
    if bad:
        raise ValueError(f"invalid Secret keys: {bad}")
    return value


def _duration(value: Any) -> str:
    if not isinstance(value, str) or not DURATION.match(value):
        raise ValueError("")
    return value


def _semver(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^v?\d+\.\d+\.\d+([-+][\w.]+)?$", value):
        raise ValueError("")
    return value


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
        path = _node_path(nodes, i, "ip")
        if node.ip not in network.subnet:
            problems.add(path, f"{node.ip} is outside network.subnet {network.subnet}; pick an address inside it")
        elif node.ip == network.gateway:
            problems.add(path, f"{node.ip} is the gateway's address (network.gateway); pick another")
        elif node.ip in (network.subnet.network_address, network.subnet.broadcast_address):
            problems.add(path, f"{node.ip} is the subnet's network or broadcast address; pick a host address")


def _node_path(nodes: list[NodeConfig], index: int, key: str) -> str:
    """Cluster nodes are `nodes[i]`; the mirror VM checked alongside them is `mirror`."""
    return f"mirror.{key}" if nodes[index].role == "mirror" else f"nodes[{index}].{key}"


def _check_nodes_unique(nodes: list[NodeConfig], problems: Problems) -> None:
    for attr, key in (("name", "name"), ("vm_id", "vmId"), ("ip", "ip")):
        seen: dict[Any, int] = {}
        for i, node in enumerate(nodes):
            value = getattr(node, attr)
            if value in seen:
                problems.add(_node_path(nodes, i, key), f"{value} is already used by {_node_path(nodes, seen[value], '')[:-1]}; each VM needs its own")
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
