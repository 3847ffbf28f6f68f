"""The whole program: validated config -> components -> exports. `__main__.py` only calls `main()`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_proxmoxve as proxmox

from components.cluster import K3sCluster, K3sClusterArgs
from components.clusteridentity import ClusterIdentity
from components.config import ConfigError, StackConfig, placeholder_problem, placeholders
from components.gateway import GatewayFirewall, GatewayFirewallArgs
from components.mirror import NodeRegistries, NodeRegistriesArgs, RegistryMirror, RegistryMirrorArgs
from components.monitoring import ContinuousProbes, ContinuousProbesArgs
from components.mss import mss_from_path_mtu
from components.nodes import ClusterNodes, ClusterNodesArgs, Rolling, proxmox_connection
from components.render.bundle import Artifacts, render_artifacts
from components.secrets import SecretsLayer, SecretsLayerArgs
from components.stack import Secrets, load_pulumi_config
from components.validation import NetworkValidation, NetworkValidationArgs, network_digest
from components.vm import BootImage, volume_id
from probes import agent_source


@dataclass
class Program:
    cluster: K3sCluster
    gateway: GatewayFirewall | None
    mirror: RegistryMirror | None
    secrets: SecretsLayer | None
    validation: NetworkValidation | None


def proxmox_provider(config: StackConfig, secrets: Secrets, after: pulumi.Resource | None = None) -> proxmox.Provider:
    px = config.proxmox
    # every Proxmox node a VM is placed on: the provider uploads each VM's snippets over SSH to its node
    names = [px.node, *(n.name for n in px.nodes if n.name != px.node)]
    return proxmox.Provider(
        "proxmox",
        endpoint=px.endpoint,
        api_token=secrets.proxmox_api_token,
        insecure=px.insecure,
        # Snippet uploads (cloud-init files) go over SSH to the Proxmox node.
        ssh=proxmox.ProviderSshArgs(
            username=px.ssh_user,
            private_key=secrets.ssh_private_key,
            nodes=[proxmox.ProviderSshNodeArgs(name=name, address=px.placement(name)[0]) for name in names],
        ),
        opts=pulumi.ResourceOptions(depends_on=[after] if after is not None else None),
    )


# The type the cloud image was declared as before download.File (issue 23): its alias.
LEGACY_DOWNLOAD = "proxmoxve:download/fileLegacy:FileLegacy"


def boot_image(config: StackConfig, provider: proxmox.Provider, node: str | None = None) -> BootImage | None:
    """The cloud image the VMs boot from, downloaded to a Proxmox node (None: VMs clone a template).
    `node`: another Proxmox node that runs VMs gets its own copy (its own resource, `cloud-image-<node>`).

    Its file name is fixed, so a new URL with the same name is replaced delete-first: create-first
    would fail on the existing file (or, allowed to overwrite it, lose it to the old delete).

    download.File (proxmox_download_file) is the code of the deprecated download.FileLegacy under its new name
    (bpg fwprovider/nodes/resource_download_file_short.go @v0.111.1 embeds downloadFileResource and only drops
    its deprecation): the same inputs, replaces and id. The alias keeps a stack deployed with FileLegacy on
    the same resource; without it the engine would create the new type first and fail on the existing file.
    """
    image = config.image
    if not image.url or not image.file_name:
        return None
    target = node or config.proxmox.node
    download = proxmox.download.File(
        "cloud-image" if target == config.proxmox.node else f"cloud-image-{target}",
        proxmox.download.FileArgs(
            content_type="iso",
            datastore_id=config.proxmox.image_datastore,
            node_name=target,
            url=image.url,
            file_name=image.file_name,
            overwrite=False,
        ),
        opts=pulumi.ResourceOptions(provider=provider, delete_before_replace=True, aliases=[pulumi.Alias(type_=LEGACY_DOWNLOAD)]),
    )
    return BootImage(volume_id(config.proxmox.image_datastore, "iso", image.file_name), download)


def boot_images(config: StackConfig, provider: proxmox.Provider, first: BootImage | None) -> dict[str, BootImage]:
    """Proxmox node -> the image its VMs boot from: `first` on proxmox.node, a download on every other node that runs a VM."""
    images = {config.proxmox.node: first} if first is not None else {}
    for node in sorted({config.proxmox_node_of(n) for n in config.nodes} - {config.proxmox.node}):
        image = boot_image(config, provider, node)
        if image is not None:
            images[node] = image
    return images


def gateway_mss(config: StackConfig, gateway: GatewayFirewall | None) -> pulumi.Input[int] | None:
    """The IPv4 MSS the gateway clamps to (measured, from a path MTU, or set), for the gate to compare
    with what the nodes measure; None in pmtu mode, where the gateway's route decides."""
    if gateway is not None and gateway.path_mtu is not None:
        return gateway.path_mtu.apply(lambda path_mtu: mss_from_path_mtu(path_mtu, ipv6=False))
    fixed = config.gateway.fixed_path_mtu
    return mss_from_path_mtu(fixed, ipv6=False) if fixed is not None else config.gateway.mss


def build(config: StackConfig, secrets: Secrets, artifacts: Artifacts | None = None) -> Program:
    """Declare every resource. `artifacts` is everything rendered from `config`, once (rendered here when not given)."""
    artifacts = artifacts or render_artifacts(config, agent_source(), pulumi.get_stack())
    for warning in config.warnings():  # allowed, but it defeats what the config asks for (every server on one Proxmox node)
        pulumi.log.warn(warning)
    # First: a change no up can carry out (a role swap, a vmId passed to another name) fails the preview here.
    identity = ClusterIdentity("cluster-identity", config)
    provider = proxmox_provider(config, secrets, after=identity)  # nothing on Proxmox before the identity's check
    with_provider = pulumi.ResourceOptions(providers=[provider])
    image = boot_image(config, provider)

    # The egress fix first: nodes come up with the clamp already in place on their path.
    gateway = None
    if config.gateway.manage:
        gateway = GatewayFirewall("gateway", GatewayFirewallArgs(config.gateway, config.network, artifacts.gateway, artifacts.agent,
                                                                 secrets.ssh_private_key))
        pulumi.export("gatewayVerified", gateway.verified)
        if gateway.path_mtu is not None:
            pulumi.export("gatewayPathMtu", gateway.path_mtu)
    else:
        message = "gateway.manage is false: netstab does not touch the gateway; apply gateway/MANUAL.md (python -m components render) by hand"
        pulumi.log.warn(message)
        pulumi.export("gatewayWarning", message)

    # a change that restarts nodes goes one node at a time, servers first (docs/lifecycle.md)
    rolling = Rolling(artifacts.cluster.order)
    nodes = ClusterNodes(
        "nodes",
        ClusterNodesArgs(config, artifacts.cluster, secrets.ssh_private_key, image=image, images=boot_images(config, provider, image),
                         after=[identity, *([gateway] if gateway else [])], rolling=rolling),
        opts=with_provider,
    )
    vms = {n: vm.vm for n, vm in nodes.vms.items()}
    before_install: dict[str, list[pulumi.Resource]] = {}
    mirror = None
    if artifacts.mirror is not None and artifacts.registries is not None:
        # mirror VM healthy -> registries.yaml on each node -> K3s install
        mirror = RegistryMirror("mirror", RegistryMirrorArgs(config, artifacts.mirror, artifacts.agent, secrets.ssh_private_key, image,
                                                              secrets.mirror_credentials, after=[gateway] if gateway else ()), opts=with_provider)
        registries = NodeRegistries("registries", NodeRegistriesArgs(config, artifacts.registries, nodes.connections, nodes.booted,
                                                                      vms, mirror.healthy))
        before_install = {node: [written] for node, written in registries.written.items()}
        pulumi.export("mirrorHealth", mirror.health)
        pulumi.export("mirrorWarmup", mirror.warmup)
    cluster = K3sCluster(
        "k3s",
        K3sClusterArgs(config, artifacts.cluster, nodes.connections, secrets.k3s_token, booted=nodes.booted,
                       vms=vms, before_install=before_install, rolling=rolling,
                       # the ready, member and forget steps run inside a server VM, through its Proxmox node's guest agent
                       proxmox_for=lambda server: proxmox_connection(config.proxmox, secrets.ssh_private_key, config.proxmox_node_of(server))),
    )
    secrets_layer = None
    if artifacts.secrets is not None:
        assert secrets.doppler_token is not None, "load_pulumi_config requires netstab:dopplerToken when secrets are enabled"
        secrets_layer = SecretsLayer("secrets", SecretsLayerArgs(config.secrets, artifacts.secrets, cluster.kubeconfig, cluster.kubeconfig_step.id,
                                                                 secrets.doppler_token))
        if secrets_layer.gate_result is not None:
            pulumi.export("secretGate", secrets_layer.gate_result)
    validation = None
    if artifacts.validation is not None:
        # after the gateway fix, registries.yaml and K3s Ready; nothing but exports waits on it
        after = [*([gateway.verify] if gateway else []), *(w for ws in before_install.values() for w in ws), cluster.ready]
        validation = NetworkValidation("validation", NetworkValidationArgs(
            config, artifacts.validation, artifacts.agent, nodes.connections, secrets.ssh_private_key, cluster.kubeconfig, vms, after,
            gateway_mss=gateway_mss(config, gateway), network=network_digest(artifacts)))
        pulumi.export("networkVerdict", validation.network_verdict)
        pulumi.export("clusterVerdict", validation.cluster_verdict)
    if artifacts.monitoring is not None:
        # the timer on every node, the mirror VM and the Proxmox host, once the nodes booted (and the mirror is healthy)
        connections, machines = dict(nodes.connections), dict(vms)
        if mirror is not None and config.mirror.vm is not None:
            connections[config.mirror.vm.name], machines[config.mirror.vm.name] = mirror.connection, mirror.vm
        ContinuousProbes("monitoring", ContinuousProbesArgs(
            config, artifacts.monitoring, artifacts.agent, connections, machines, secrets.ssh_private_key,
            after=[*nodes.booted.values(), *([mirror.healthy] if mirror is not None else [])]))
    pulumi.export("nodeIps", cluster.node_ips)
    pulumi.export("apiAddress", config.api_address)  # the VIP with several servers: what the kubeconfig and agents dial
    pulumi.export("mtu", config.network.mtu)
    pulumi.export("nodesReady", cluster.nodes_ready)
    pulumi.export("kubeconfig", cluster.kubeconfig)
    return Program(cluster=cluster, gateway=gateway, mirror=mirror, secrets=secrets_layer, validation=validation)


# The oldest Pulumi CLI the program runs on: `replace_with` (engine 3.207.0, pulumi#20693) rebuilds each VM's steps with it.
# docs/prerequisites.md states it (a test holds the two together); docs/lifecycle.md says what 3.260 adds.
MIN_PULUMI_CLI = "3.207.0"


def require_engine() -> None:
    """Refuse an older CLI before anything is declared (the SDK itself would only fail at the first resource using replace_with)."""
    try:
        pulumi.require_pulumi_version(f">={MIN_PULUMI_CLI}")
    except Exception as exc:  # the engine's refusal, or an engine too old to answer the question
        raise SystemExit(f"netstab needs Pulumi CLI {MIN_PULUMI_CLI} or newer (docs/prerequisites.md); `pulumi version` "
                         f"shows yours, https://www.pulumi.com/docs/install/ updates it ({exc})") from None


def main() -> None:
    require_engine()
    try:
        config, secrets = load_pulumi_config()
    except ConfigError as exc:
        # One line per problem, then stop before any resource is declared.
        raise SystemExit("netstab: the stack config has problems:\n  " + "\n  ".join(exc.problems)) from None
    found = placeholders(config)
    if found:
        # Refused before any resource, preview included (the offline render is the way to review such a stack):
        # a pinned placeholder host key would fail every SSH step only after the VMs exist.
        raise SystemExit(f"netstab: the stack config has problems:\n  {placeholder_problem(found)}")
    build(config, secrets)
