"""The `mirror` section and its rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler, field_validator

from components.config.base import Problems, Section, default, rule
from components.config.fields import IP, Bool, Check, between, grammar, hostname, https_url, matching, plain, show, string_list
from components.config.nodes import VM_ID, NodeConfig

REGISTRY_NAME = grammar(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+(:\d+)?$")
IMAGE_REF = grammar(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[\w][\w.-]{0,127}|@sha256:[a-f0-9]{64})$")
# A warm-up group's name: words of letters, digits, '.', '_' and '-', single spaces between them.
GROUP_NAME = grammar(r"^[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*$")

DEFAULT_UPSTREAMS = (
    {"registry": "docker.io", "remote": "https://registry-1.docker.io", "port": 5001},
    # oci.external-secrets.io redirects to ghcr.io/external-secrets with the same repository paths,
    # so the ghcr.io instance serves it (see README: Registry mirror).
    {"registry": "ghcr.io", "port": 5002, "aliases": ["oci.external-secrets.io"]},
    {"registry": "quay.io", "port": 5003},
    {"registry": "registry.k8s.io", "port": 5004},
)

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


REGISTRY = matching("a registry host name such as ghcr.io", REGISTRY_NAME)


def _registry_names(value: Any) -> tuple[str, ...]:
    return tuple(REGISTRY.convert(name) for name in string_list(value))


def _image_groups(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ValueError("")
    groups = {}
    for name, images in value.items():
        if not isinstance(name, str) or not GROUP_NAME.fullmatch(name) or len(name) > 63:
            raise ValueError(f"group name {show(name)} is not words of letters, digits, '.', '_' and '-'")
        refs = string_list(images)
        bad = [r for r in refs if not IMAGE_REF.fullmatch(r) or len(r) > 512]
        if bad:
            raise ValueError(f"group {name!r} has references without an explicit registry and tag: {', '.join(map(plain, bad))}")
        groups[name] = refs
    return groups


IMAGE_GROUPS_SCHEMA = {"type": "object", "propertyNames": {"pattern": GROUP_NAME.pattern, "maxLength": 63},
                       "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": IMAGE_REF.pattern, "maxLength": 512}}}


class UpstreamConfig(Section):
    """One upstream registry and the instance that caches it."""

    registry: Annotated[str, REGISTRY]
    """The registry name images use (docker.io, ghcr.io, ...)."""
    remote: Annotated[str, https_url("an https:// URL")] = default(None)
    """What the instance proxies (default: https://<registry>)."""
    port: Annotated[int, between(1024, 65535)]
    """The instance's port on the mirror VM."""
    aliases: Annotated[tuple[str, ...], Check("a list of registry host names", _registry_names, {"type": "array", "items": REGISTRY.schema})] = default([])
    """Other registry names served from the same instance."""

    @field_validator("remote", mode="wrap")
    @classmethod
    def _defaults_to_the_registry(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        return f"https://{info.data.get('registry')}" if value is None else handler(value)


class WarmupConfig(Section):
    """What to pull through the mirror once it is up."""

    fatal: Bool = False
    """A failed warm-up fails the deploy (default: a warning)."""
    k3s_images: Bool = True
    """Also pull the K3s release's own images."""
    groups: Annotated[dict[str, tuple[str, ...]], Check("a mapping of group name -> list of image references (registry/repo:tag)",
                                                        _image_groups, IMAGE_GROUPS_SCHEMA)] = default(DEFAULT_WARMUP_GROUPS)
    """Group name -> image references, each with its registry and tag."""


class MirrorConfig(Section):
    """A pull-through registry cache VM on the VM subnet, one instance per upstream registry: the nodes pull
    through it first (registries.yaml), the upstreams stay their fallback."""

    enabled: Bool = True
    """Run the mirror VM (no `mirror` section: no mirror)."""
    name: Annotated[str, hostname("a hostname")] = "mirror"
    """The mirror VM's name."""
    vm_id: Annotated[int, VM_ID] | None = None
    """Proxmox VM id; required when enabled."""
    ip: IP | None = None
    """Static address inside network.subnet; required when enabled."""
    cores: Annotated[int, between(1, 64)] = 2
    """CPU cores."""
    memory_mb: Annotated[int, between(512, 262_144)] = 2048
    """Memory in MiB."""
    disk_gb: Annotated[int, between(8, 65_536)] = 100
    """Cache disk size in GiB."""
    upstreams: tuple[UpstreamConfig, ...] = default(DEFAULT_UPSTREAMS)
    """One pull-through instance per upstream registry."""
    warmup: WarmupConfig = default({})
    credentials_open_to_subnet: Bool = False
    """With netstab:mirrorCredentials: accept that the mirror, which has no authentication, serves whatever those credentials
    can pull (that account's private images too) to every client on the VM subnet. Use an account without private images."""

    @property
    def vm(self) -> NodeConfig | None:
        """The mirror VM, when enabled, as the node rules and the VM component see any VM."""
        if not self.enabled or self.vm_id is None or self.ip is None:
            return None
        # built, not validated: its fields were validated here, under the mirror's own ranges and role
        return NodeConfig.model_construct(name=self.name, role="mirror", vm_id=self.vm_id, ip=self.ip,
                                          cores=self.cores, memory_mb=self.memory_mb, disk_gb=self.disk_gb)

    @property
    def warmup_groups(self) -> dict[str, tuple[str, ...]]:
        return self.warmup.groups

    @property
    def warmup_k3s_images(self) -> bool:
        return self.warmup.k3s_images

    @property
    def warmup_fatal(self) -> bool:
        return self.warmup.fatal

    def endpoint(self, upstream: UpstreamConfig) -> str:
        assert self.vm is not None
        return f"http://{self.vm.ip}:{upstream.port}"

    @rule("enabled", "vm_id", "ip")
    def _a_vm_when_enabled(self) -> Problems:
        if not self.enabled:
            return
        for key, value in (("vmId", self.vm_id), ("ip", self.ip)):
            if value is None:
                yield (key,), "missing required key"

    @rule("enabled", "upstreams")
    def _upstreams_are_distinct(self) -> Problems:
        if not self.enabled:
            return
        if not self.upstreams:
            yield ("upstreams",), "needs at least one upstream registry"
        ports: dict[int, str] = {}
        names: dict[str, str] = {}
        for i, u in enumerate(self.upstreams):
            if u.port in ports:
                yield ("upstreams", i, "port"), f"{u.port} is already used by {ports[u.port]}; each instance needs its own port"
            ports.setdefault(u.port, u.registry)
            for name in (u.registry, *u.aliases):
                if name in names:
                    yield ("upstreams", i, "registry"), f"{name} is already served by the {names[name]} instance"
                names.setdefault(name, u.registry)
