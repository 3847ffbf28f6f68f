"""The whole stack: every section, the rules that span sections, and `parse_config`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from components.config.base import ConfigError, Partial, Problems, Section, default, has, path, problem_lines, rule
from components.config.gateway import GatewayConfig
from components.config.image import ImageConfig
from components.config.k3s import K3sConfig
from components.config.mirror import MirrorConfig
from components.config.monitoring import MonitoringConfig, cycle_bound
from components.config.network import NetworkConfig
from components.config.nodes import NodeConfig, Vm, server_count, unique
from components.config.proxmox import ProxmoxConfig
from components.config.secrets import SecretsConfig
from components.config.ssh import SshConfig
from components.config.validation import PROXMOX, ValidationConfig
from components.mss import MssError, clamp_values

NAMESPACE = "netstab"

# Secret config keys: set only with `pulumi config set --secret`, never read into these models.
# key -> (when a deploy needs it, what it is)
SECRETS = {
    "proxmoxApiToken": ("always", "Proxmox API token, `user@realm!tokenid=uuid`"),
    "sshPrivateKey": ("always", "SSH private key matching ssh.publicKeys; also opens the Proxmox node as proxmox.sshUser"),
    "k3sToken": ("always", "K3s cluster token, e.g. `openssl rand -hex 32`"),
    "mirrorCredentials": ("optional", 'Upstream registry credentials for the mirror, JSON `{"docker.io": {"username": ..., "password": ...}}`'),
    "dopplerToken": ("when secrets.enabled", "Doppler service token the ClusterSecretStore reads"),
}
SECRET_KEYS = tuple(key for key, (when, _) in SECRETS.items() if when == "always")
OPTIONAL_SECRET_KEYS = tuple(key for key in SECRETS if key not in SECRET_KEYS)


class StackConfig(Section):
    """The `netstab:` keys of a stack (namespace stripped), secrets aside."""

    proxmox: ProxmoxConfig
    network: NetworkConfig
    image: ImageConfig
    ssh: SshConfig
    k3s: K3sConfig
    nodes: tuple[NodeConfig, ...]
    """The cluster's VMs: one server, or an odd number >= 3 (the first founds the cluster), any number of agents."""
    gateway: GatewayConfig = default({"pathMtu": 1400})
    mirror: MirrorConfig = default({"enabled": False})
    secrets: SecretsConfig = default({"enabled": False})
    validation: ValidationConfig = default({})
    monitoring: MonitoringConfig = default({})

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return super().keys() + SECRET_KEYS + OPTIONAL_SECRET_KEYS

    @property
    def server(self) -> NodeConfig:
        return next(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[NodeConfig, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")

    @rule("nodes[]", "validation.vantage_points")
    def _vantage_points_are_known(self) -> Problems:
        if not all(has(n, "name") for n in self.nodes):
            return  # a node whose name is wrong may be the one meant
        names = {n.name for n in self.nodes}
        for i, name in enumerate(self.validation.vantage_points):
            if name != PROXMOX and name not in names:
                yield ("validation", "vantagePoints", i), f"{name} is neither a node nor {PROXMOX}; use one of: {PROXMOX}, {', '.join(sorted(names))}"

    @property
    def vantage_points(self) -> tuple[str, ...]:
        """Where the gate probes from: as configured, or the Proxmox host, the server and the first agent."""
        return self.validation.vantage_points or (PROXMOX, self.server.name, *(a.name for a in self.agents[:1]))

    @property
    def monitoring_endpoints(self) -> tuple[str, ...]:
        """What the continuous probes request: as configured, or the gate's endpoints."""
        return self.monitoring.endpoints or self.validation.endpoints

    @property
    def monitoring_images(self) -> tuple[str, ...]:
        return self.monitoring.images or self.validation.images

    @rule("monitoring", "validation", "mirror")
    def _interval_fits_a_run(self) -> Problems:
        m = self.monitoring
        if not m.enabled:
            return
        # (a rule may run on a partial stack, which has fields but not this class's properties)
        endpoints, images = m.endpoints or self.validation.endpoints, m.images or self.validation.images
        bound = cycle_bound(m, len(endpoints), len(images), self.mirror.enabled)
        if m.interval_seconds < bound:
            yield ("monitoring", "intervalSeconds"), (
                f"{m.interval_seconds} s is shorter than one run can take with these settings ({bound:g} s when every request "
                "times out); raise it, or lower repeats, timeoutSeconds, maxSweeps or sweepBudgetSeconds")

    @rule("nodes[]")
    def _server_count(self) -> Problems:
        return server_count(self.nodes)

    @rule("nodes[]", "k3s.vip")
    def _vip_with_many_servers(self) -> Problems:
        servers = sum(has(n, "role") and n.role == "server" for n in self.nodes)
        if servers > 1 and self.k3s.vip is None:
            yield ("k3s", "vip"), (f"missing: with {servers} servers the API needs one address that moves between them; "
                                   "set k3s.vip to a free host address of network.subnet (kube-vip announces it)")

    @rule("nodes[]", "k3s.vip", "network.subnet", "network.gateway")
    def _vip_is_a_free_host_of_the_subnet(self) -> Problems:
        vip, network = self.k3s.vip, self.network
        if vip is None:
            return
        if vip not in network.subnet:
            yield ("k3s", "vip"), f"{vip} is outside network.subnet {network.subnet}; kube-vip answers ARP on the VM subnet only: pick a free address inside it"
        elif vip in (network.subnet.network_address, network.subnet.broadcast_address):
            yield ("k3s", "vip"), f"{vip} is the subnet's network or broadcast address; pick a free host address"
        elif vip == network.gateway:
            yield ("k3s", "vip"), f"{vip} is the gateway's address (network.gateway); pick a free host address"
        else:
            for loc, vm in _vms(self):
                if has(vm, "ip") and vm.ip == vip:
                    yield ("k3s", "vip"), f"{vip} is already the address of {path(loc)}; the VIP must be an address no VM holds"

    @rule("nodes[]", "proxmox.node", "proxmox.nodes[]")
    def _vms_are_on_known_proxmox_nodes(self) -> Problems:
        listed = {n.name for n in self.proxmox.nodes if has(n, "name")}
        if len(listed) < len(self.proxmox.nodes):
            return  # a listed node whose name is wrong may be the one meant
        for i, node in enumerate(self.nodes):
            where = getattr(node, "proxmox_node", None) if has(node, "proxmox_node") else None
            if where is not None and where != self.proxmox.node and where not in listed:
                known = ", ".join(sorted({self.proxmox.node, *listed}))
                yield ("nodes", i, "proxmoxNode"), (f"{where} is not in proxmox.nodes; add it there with its address and sshHostKey "
                                                    f"(the steps on it connect over SSH), or use one of: {known}")

    def proxmox_node_of(self, node: NodeConfig) -> str:
        """The Proxmox node a VM runs on."""
        return node.proxmox_node or self.proxmox.node

    @property
    def servers(self) -> tuple[NodeConfig, ...]:
        """The servers in nodes[] order: the first founds an HA cluster (once: components/cluster.py), every server joins it through the VIP."""
        return tuple(n for n in self.nodes if n.role == "server")

    def kube_peer(self, node: NodeConfig) -> NodeConfig:
        """The server whose K3s (through its guest agent) runs every kubectl step about `node` (drain, ready,
        removal, an old etcd member forgotten): the first server, or for the first server of an HA cluster
        the second. So a server never drains or removes itself, and its drain reaches it at its old VM
        (the peer's VM id and Proxmox node do not change when `node` is rebuilt or moved). A single
        server is its own peer."""
        return next((s for s in self.servers if s != node), self.server)

    @property
    def ha(self) -> bool:
        return len(self.servers) > 1

    @property
    def api_address(self) -> str:
        """The address every client of the API dials: the VIP with several servers, else the server's own."""
        return str(self.k3s.vip) if self.ha and self.k3s.vip is not None else str(self.server.ip)

    def warnings(self) -> list[str]:
        """What is allowed but defeats a goal of the config."""
        hosts = {self.proxmox_node_of(n) for n in self.servers}
        if self.ha and len(hosts) == 1:
            return [f"nodes: every server ({', '.join(n.name for n in self.servers)}) runs on Proxmox node {hosts.pop()}: losing that "
                    "node stops the whole control plane, which defeats HA; spread the servers with nodes[].proxmoxNode"]
        return []

    @rule("nodes[]")
    def _vms_are_distinct(self) -> Problems:
        return unique(_vms(self))

    @rule("nodes[]", "network.subnet", "network.gateway")
    def _vms_are_hosts_of_the_subnet(self) -> Problems:
        network = self.network
        for loc, vm in _vms(self):
            if not has(vm, "ip"):
                continue
            if vm.ip not in network.subnet:
                yield (*loc, "ip"), f"{vm.ip} is outside network.subnet {network.subnet}; pick an address inside it"
            elif vm.ip == network.gateway:
                yield (*loc, "ip"), f"{vm.ip} is the gateway's address (network.gateway); pick another"
            elif vm.ip in (network.subnet.network_address, network.subnet.broadcast_address):
                yield (*loc, "ip"), f"{vm.ip} is the subnet's network or broadcast address; pick a host address"

    @rule("gateway.mss", "gateway.path_mtu", "gateway.pmtu", "gateway.ipv6_subnet", "network.subnet", "network.mtu")
    def _mss_fits_the_mtu(self) -> Problems:
        gw, network = self.gateway, self.network
        if sum((gw.mss is not None, gw.path_mtu is not None, gw.pmtu)) != 1 or gw.path_mtu == "auto":
            return  # the gateway's own rule says so; a measured value is checked when it is measured
        try:
            clamp_values([network.subnet, *([gw.ipv6_subnet] if gw.ipv6_subnet else [])],
                         mss=gw.mss, path_mtu=gw.path_mtu if isinstance(gw.path_mtu, int) else None, pmtu=gw.pmtu, mtu=network.mtu)
        except MssError as exc:
            key = ("mss",) if gw.mss is not None else ("pathMtu",) if gw.path_mtu is not None else ()
            yield ("gateway", *key), f"{exc} (network.mtu is {network.mtu})"


def _vms(stack: Any) -> list[Vm]:
    """The cluster nodes, and the mirror VM when it is enabled (with its valid fields when others are not)."""
    vms: list[Vm] = [(("nodes", i), node) for i, node in enumerate(stack.nodes)]
    mirror = vars(stack).get("mirror") if isinstance(stack, Partial) else stack.mirror
    if isinstance(mirror, Partial):
        if getattr(mirror, "enabled", False) and getattr(mirror, "vm_id", None) is not None and getattr(mirror, "ip", None) is not None:
            vms.append((("mirror",), Partial({k: v for k, v in vars(mirror).items() if k in ("name", "vm_id", "ip")})))
    elif mirror is not None and mirror.vm is not None:
        vms.append((("mirror",), mirror.vm))
    return vms


SECTIONS = tuple(StackConfig.model_fields)


def parse_config(raw: Mapping[str, Any], secret_keys_present: frozenset[str] | None = None) -> StackConfig:
    """Validate the `netstab:` keys of a stack (namespace already stripped).

    `secret_keys_present`, when given, names the secret keys that are set *as secrets*;
    a secret key with a plain value is an error either way.
    Raises ConfigError listing every problem.
    """
    secret_keys = SECRET_KEYS + OPTIONAL_SECRET_KEYS
    problems = [f"{NAMESPACE}:{key}: is stored in plain text; {secret_hint(key)}" for key in secret_keys
                if key in raw and not (secret_keys_present and key in secret_keys_present) and not _looks_secure(raw[key])]
    misnamed = [key for key in raw if ":" in key and (key.startswith(":") or misspelt_namespace(key.partition(":")[0]))]
    sections = {k: v for k, v in raw.items() if k not in secret_keys and k not in misnamed}
    for key in misnamed:
        problems.append(_misnamed(key, sections))
        name = key.partition(":")[2]
        if name in SECTIONS and name not in sections:
            sections[name] = raw[key]  # checked where it was meant to be: its own mistakes now, and no "missing" for it
    try:
        config = StackConfig.model_validate(sections, by_alias=True, by_name=False)
    except ValidationError as exc:
        raise ConfigError(problems + problem_lines(exc)) from None
    problems += _credentials_exposure(raw, config)
    if problems:
        raise ConfigError(problems)
    return config


def _misnamed(key: str, sections: Mapping[str, Any]) -> str:
    """A key in the wrong namespace: none at all (`ssh:`, read_stack_file passes it as `:ssh`) or a misspelt one."""
    namespace, _, name = key.partition(":")
    known = name in SECTIONS or name in SECRETS
    rename = f"rename the key {NAMESPACE}:{name}" if known else f"stack keys are {NAMESPACE}:<section>, one of: {', '.join(SECTIONS)}"
    if name in sections:
        rename = f"{NAMESPACE}:{name} is set too: keep that one and remove this"
    if not namespace:
        return f"{name}: has no namespace, and Pulumi refuses a stack file with such a key (it reads <namespace>:<key>); {rename}"
    return f"{key}: the namespace '{namespace}' looks like a misspelling of '{NAMESPACE}'; {rename}"


def _credentials_exposure(raw: Mapping[str, Any], config: StackConfig) -> list[str]:
    """Upstream credentials on an unauthenticated mirror serve that account's images to the whole subnet: refused unless accepted."""
    if "mirrorCredentials" not in raw or not config.mirror.enabled or config.mirror.credentials_open_to_subnet:
        return []
    return [f"{NAMESPACE}:mirrorCredentials: the mirror has no authentication, so every client on {config.network.subnet} (every pod "
            "included) could pull through it whatever these credentials can, that account's private images too. Use an account "
            "without private images and set mirror.credentialsOpenToSubnet: true, or remove the secret "
            f"(pulumi config rm {NAMESPACE}:mirrorCredentials)"]


def misspelt_namespace(namespace: str) -> bool:
    """`netsatb`, `Netstab`, `netstb`: within two edits (a swap counts as one) of ours, and not ours."""
    return namespace != NAMESPACE and _edit_distance(namespace.lower(), NAMESPACE) <= 2


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def needed_secrets(config: StackConfig) -> tuple[str, ...]:
    """The secret keys a deploy of this config cannot do without."""
    return SECRET_KEYS + (("dopplerToken",) if config.secrets.enabled else ())


def secret_hint(key: str) -> str:
    """How to set a secret without putting it on a command line (shell history, ps): Pulumi prompts for it, or reads stdin."""
    source = "< ~/.ssh/id_ed25519" if key == "sshPrivateKey" else "< FILE" if key == "mirrorCredentials" else None
    if source:
        return f"set it with: pulumi config set --secret {NAMESPACE}:{key} {source} (read from the file, never on the command line)"
    return f"set it with: pulumi config set --secret {NAMESPACE}:{key} (it prompts for the value; never put it on the command line)"


# What the shipped example marks its stand-in keys with (`...ReplaceWithYourSshKeyscanOutput00`): they
# pass the key grammar, so only this mark tells them from real ones.
PLACEHOLDER_MARK = "ReplaceWith"


def placeholders(config: StackConfig) -> list[str]:
    """The key paths whose value is still one of the example's placeholders (host keys, public keys)."""
    found: list[str] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str) and PLACEHOLDER_MARK in value:
            found.append(where)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}.{key}" if where else str(key))
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

    walk(config.model_dump(mode="json", by_alias=True), "")
    return found


def placeholder_problem(found: list[str]) -> str:
    return (f"still the example's placeholders (replace each with the real key: ssh-keyscan -t ed25519 HOST for a host key, "
            f"your own public key for ssh.publicKeys): {', '.join(found)}")


def _looks_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}
