"""Every artifact the program pushes, rendered once into one frozen `Artifacts` value.

The program hands parts of it to each component; `render_files` only serializes it for
`python -m components render`, so `out/` is by construction what the program pushes.
`Artifacts` holds no secret: the Doppler token, the K3s token and the mirror's credentials
are added by the components from config, on stdin or as Pulumi secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from components.config import NetworkConfig, NodeConfig, StackConfig
from components.render import cloudinit, guest, k3s, kubevip, validation
from components.render import mirror as mirror_render
from components.render import secrets as secrets_render
from components.render.disk import grow_root_script
from components.render.gateway import ACTIONS, GatewayRules, gateway_script
from components.render.gateway_measure import measure_script
from components.render.manual import manual
from components.render.monitoring import HostProbe, render_monitoring
from components.render.quote import file_name
from components.render.rolling import RollingSteps, rolling_order, rolling_steps
from components.render.sshkeys import USER_WAIT_S, authorized_keys_script


@dataclass(frozen=True)
class GuestNetwork:
    """Run on the Proxmox host, inside the VM through its guest agent (render/guest.py)."""

    check: str  # first boot: cloud-init applied the rendered network
    converge: str  # any later change: bring the running guest to it


@dataclass(frozen=True)
class NodeArtifacts:
    network_config: str
    user_data: str
    guest_network: GuestNetwork
    k3s_install: str
    rolling: RollingSteps  # drain before a restart, ready (and uncordon) after: render/rolling.py
    authorized_keys: str  # on the Proxmox host: the login user's keys kept to ssh.publicKeys (render/sshkeys.py)
    grow_root: str  # on the Proxmox host: the root partition and filesystem grown to the disk (render/disk.py)


@dataclass(frozen=True)
class ClusterArtifacts:
    nodes: dict[str, NodeArtifacts]
    order: tuple[str, ...]  # the rolling order: servers first, then agents
    cloud_init_wait: str
    nodes_ready: str
    fetch_kubeconfig: str
    kube_vip: str | None = None  # HA: the kube-vip manifest the first server's install places (inside its k3s_install)
    found_cluster: str | None = None  # HA: the one-time install with cluster-init on the first server (components/cluster.py)


@dataclass(frozen=True)
class GatewayArtifacts:
    scripts: dict[str, str]  # action (apply, remove, verify, inspect) -> script; Linux gateways only
    manual: str | None  # gateway/MANUAL.md when netstab does not manage the gateway
    # gateway.pathMtu: auto: the measurement to run on the gateway first, and the apply and verify
    # scripts for the path MTU it measures (`scripts` then holds only what does not depend on it)
    measure: str | None = None
    measure_again: str | None = None  # the measure step's update: prints the kept measurement
    for_path_mtu: Callable[[int], dict[str, str]] | None = None


@dataclass(frozen=True)
class MirrorArtifacts:
    network_config: str
    user_data: str
    guest_network: GuestNetwork
    instance_configs: dict[str, str]  # upstream registry -> docker-registry config (inside user_data)
    firewall: str  # the host firewall (inside user_data)
    health: str
    warmup: str
    credentials: str  # reads the credentials on stdin; the values never appear in any artifact


@dataclass(frozen=True)
class RegistriesArtifacts:
    """K3s registries.yaml, the same for every node, and the script that installs it safely."""

    content: str
    update: str
    remove: str  # when the mirror is disabled


@dataclass(frozen=True)
class SecretsArtifacts:
    namespaces: tuple[str, ...]
    token_secret: dict[str, Any]  # the Doppler token's value is a placeholder here
    store: dict[str, Any]
    external_secrets: dict[str, dict[str, Any]]  # ExternalSecret name -> manifest
    chart: dict[str, Any] | None  # the External Secrets Operator chart pin, when netstab installs it
    gate_spec: dict[str, Any] | None  # the SecretGate's input, when any ExternalSecret is critical


@dataclass(frozen=True)
class ValidationArtifacts:
    probe_runs: dict[str, str]  # vantage point (proxmox or a node name) -> its probe run, the agent on stdin


@dataclass(frozen=True)
class Artifacts:
    cluster: ClusterArtifacts
    gateway: GatewayArtifacts
    mirror: MirrorArtifacts | None
    registries: RegistriesArtifacts | None
    secrets: SecretsArtifacts | None
    validation: ValidationArtifacts | None
    agent: str  # probes/agent.py, fed to `python3 -` on the nodes
    monitoring: dict[str, HostProbe] | None = None  # host -> its continuous probe (monitoring.enabled)


MEASURED_NOTE = """# The gateway's MSS is measured at deploy time

`gateway.pathMtu` is `auto`: `pulumi up` first runs `measure.sh` on the gateway (the probe agent's
mss-sweep against the plan's endpoints, from the gateway's address on the VM subnet), then applies
the clamp for the path MTU it measured. So `apply.sh` and `verify.sh` are not written here.

To review the scripts for a value, render with it: `python -m components render STACK --path-mtu 1280`.
The measured value is exported as `gatewayPathMtu`; raise `gateway.remeasure` to measure again.
"""


def render_artifacts(config: StackConfig, agent: str, stack: str, path_mtu: int | None = None) -> Artifacts:
    """`stack` is the Pulumi stack's name: the gateway rules carry it, so stacks sharing a gateway
    never touch each other's rules. `path_mtu`: see `render_gateway`."""
    return Artifacts(
        cluster=render_cluster(config),
        gateway=render_gateway(config, stack, path_mtu),
        mirror=render_mirror(config),
        registries=render_registries(config),
        secrets=render_secrets(config),
        validation=render_validation(config),
        agent=agent,
        monitoring=render_monitoring(config),
    )


def render_guest_network(vm: NodeConfig, network: NetworkConfig) -> GuestNetwork:
    return GuestNetwork(
        check=guest.via_guest_agent(vm.vm_id, guest.network_check_script(vm, network)),
        converge=guest.via_guest_agent(vm.vm_id, guest.network_converge_script(vm, network)),
    )


def render_cluster(config: StackConfig) -> ClusterArtifacts:
    nodes = {
        node.name: NodeArtifacts(
            network_config=cloudinit.network_config(node, config.network),
            user_data=cloudinit.user_data(node, config.ssh),
            guest_network=render_guest_network(node, config.network),
            k3s_install=k3s.install_script(config, node),
            rolling=rolling_steps(config, node),
            authorized_keys=guest.via_guest_agent(node.vm_id, authorized_keys_script(config.ssh.user, config.ssh.public_keys),
                                                  timeout_s=USER_WAIT_S + 60),
            grow_root=guest.via_guest_agent(node.vm_id, grow_root_script(node.name, node.disk_gb)),
        )
        for node in config.nodes
    }
    return ClusterArtifacts(
        nodes=nodes,
        order=rolling_order(config),
        cloud_init_wait=k3s.cloud_init_wait_script(),
        nodes_ready=k3s.ha_ready_script(config) if config.ha else k3s.nodes_ready_script(config),
        fetch_kubeconfig=k3s.fetch_kubeconfig_script(),
        kube_vip=kubevip.manifest_text(config) if config.ha else None,
        found_cluster=k3s.found_cluster_script(config) if config.ha else None,
    )


def render_gateway(config: StackConfig, stack: str, path_mtu: int | None = None) -> GatewayArtifacts:
    """`path_mtu`: with gateway.pathMtu: auto, render the rules for this value (offline render's --path-mtu)."""
    gateway, network = config.gateway, config.network
    if gateway.kind != "linux":
        return GatewayArtifacts(scripts={}, manual=manual(gateway, network))

    def scripts_for(measured: int | None, actions: Sequence[str] = ACTIONS) -> dict[str, str]:
        rules = GatewayRules.for_stack(stack, gateway, network, measured)
        return {action: gateway_script(action, gateway.flavor, rules) for action in actions}

    text = None if gateway.manage else manual(gateway, network)
    if not gateway.measured:
        return GatewayArtifacts(scripts=scripts_for(None), manual=text)
    # remove and inspect do not depend on the MSS: rendered for any valid value
    scripts = scripts_for(network.mtu, ("remove", "inspect")) | (scripts_for(path_mtu, ("apply", "verify")) if path_mtu else {})
    slug = GatewayRules.for_stack(stack, gateway, network, network.mtu).slug
    return GatewayArtifacts(scripts=scripts, manual=text, measure=measure_script(network, config.validation.endpoints, slug, reuse=False),
                            measure_again=measure_script(network, config.validation.endpoints, slug, reuse=True),
                            for_path_mtu=lambda measured: scripts_for(measured, ("apply", "verify")))


def render_mirror(config: StackConfig) -> MirrorArtifacts | None:
    mirror = config.mirror
    if not mirror.enabled or mirror.vm is None:
        return None
    return MirrorArtifacts(
        network_config=cloudinit.network_config(mirror.vm, config.network),
        user_data=mirror_render.user_data(mirror, config.network, config.ssh),
        guest_network=render_guest_network(mirror.vm, config.network),
        instance_configs=mirror_render.instance_configs(mirror),
        firewall=mirror_render.firewall(mirror, config.network),
        health=mirror_render.health_script(mirror),
        warmup=mirror_render.warmup_script(mirror, config.k3s.version),
        credentials=mirror_render.credentials_script(mirror),
    )


def render_registries(config: StackConfig) -> RegistriesArtifacts | None:
    if not config.mirror.enabled or config.mirror.vm is None:
        return None
    content = mirror_render.registries_yaml(config.mirror)
    return RegistriesArtifacts(content=content, update=mirror_render.registries_update_script(content),
                               remove=mirror_render.registries_remove_script())


def render_secrets(config: StackConfig) -> SecretsArtifacts | None:
    cfg = config.secrets
    if not cfg.enabled:
        return None
    gate_spec = None
    if cfg.critical:
        hint = secrets_render.doppler_probe_hint(config.ssh.user, str(config.server.ip))
        gate_spec = secrets_render.gate_spec(cfg, hint)
    chart = None
    if cfg.install_operator:
        chart = {"chart": "external-secrets", "repository": cfg.chart_repository, "version": cfg.chart_version,
                 "namespace": cfg.operator_namespace, "values": secrets_render.chart_values()}
    return SecretsArtifacts(
        namespaces=tuple(secrets_render.namespaces(cfg)),
        token_secret=secrets_render.token_secret(cfg),
        store=secrets_render.cluster_secret_store(cfg),
        external_secrets={es.name: secrets_render.external_secret(cfg, es) for es in cfg.external_secrets},
        chart=chart,
        gate_spec=gate_spec,
    )


def render_validation(config: StackConfig) -> ValidationArtifacts | None:
    if not config.validation.enabled:
        return None
    mirror = config.mirror if config.mirror.enabled else None
    nodes = {n.name for n in config.nodes}
    return ValidationArtifacts({point: validation.probe_script(point, config.validation, mirror if point in nodes else None)
                                for point in config.vantage_points})


def render_files(artifacts: Artifacts) -> dict[str, str]:
    """Relative path -> text, for `python -m components render`: a serialization of `artifacts`."""
    files: dict[str, str] = {}
    cluster = artifacts.cluster
    for name, node in cluster.nodes.items():
        files[f"nodes/{file_name(name)}/network-config.yaml"] = node.network_config
        files[f"nodes/{file_name(name)}/user-data.yaml"] = node.user_data
        files[f"nodes/{file_name(name)}/network-check.sh"] = node.guest_network.check
        files[f"nodes/{file_name(name)}/network-converge.sh"] = node.guest_network.converge
        files[f"nodes/{file_name(name)}/k3s-install.sh"] = node.k3s_install
        files[f"nodes/{file_name(name)}/drain-first-up.sh"] = node.rolling.drain_create
        files[f"nodes/{file_name(name)}/drain.sh"] = node.rolling.drain_update
        files[f"nodes/{file_name(name)}/ready.sh"] = node.rolling.ready
        files[f"nodes/{file_name(name)}/authorized-keys.sh"] = node.authorized_keys
        files[f"nodes/{file_name(name)}/member.sh"] = node.rolling.member
        files[f"nodes/{file_name(name)}/grow-root.sh"] = node.grow_root
        files[f"nodes/{file_name(name)}/remove.sh"] = node.rolling.remove
        if node.rolling.forget is not None:
            files[f"nodes/{file_name(name)}/forget-old-member.sh"] = node.rolling.forget
    files["k3s/cloud-init-wait.sh"] = cluster.cloud_init_wait
    files["k3s/nodes-ready.sh"] = cluster.nodes_ready
    files["k3s/fetch-kubeconfig.sh"] = cluster.fetch_kubeconfig
    if cluster.kube_vip is not None:
        files["kubernetes/kube-vip.yaml"] = cluster.kube_vip
    if cluster.found_cluster is not None:
        files["k3s/found-cluster.sh"] = cluster.found_cluster
    files.update({f"gateway/{action}.sh": script for action, script in artifacts.gateway.scripts.items()})
    if artifacts.gateway.manual is not None:
        files["gateway/MANUAL.md"] = artifacts.gateway.manual
    if artifacts.gateway.measure is not None:
        files["gateway/measure.sh"] = artifacts.gateway.measure
        if artifacts.gateway.measure_again is not None:
            files["gateway/measure-kept.sh"] = artifacts.gateway.measure_again
        if "apply" not in artifacts.gateway.scripts:
            files["gateway/MEASURED.md"] = MEASURED_NOTE
    if artifacts.registries is not None:
        files.update({f"nodes/{file_name(name)}/registries.yaml": artifacts.registries.content for name in cluster.nodes})
        files["k3s/registries-update.sh"] = artifacts.registries.update
        files["k3s/registries-remove.sh"] = artifacts.registries.remove
    if artifacts.mirror is not None:
        files.update(_mirror_files(artifacts.mirror))
    if artifacts.secrets is not None:
        files.update(_secrets_files(artifacts.secrets))
    if artifacts.validation is not None:
        files.update({f"validation/probe-{file_name(point)}.sh": script for point, script in artifacts.validation.probe_runs.items()})
    for host, probe in (artifacts.monitoring or {}).items():
        files[f"monitoring/{host}/probe.json"] = probe.config
        files[f"monitoring/{host}/netstab-probe.service"] = probe.service
        files[f"monitoring/{host}/netstab-probe.timer"] = probe.timer
        if probe.listener is not None:
            files[f"monitoring/{host}/netstab-probe-metrics.service"] = probe.listener
        files[f"monitoring/{host}/install.sh"] = probe.install
        files[f"monitoring/{host}/remove.sh"] = probe.remove
    return files


def _mirror_files(mirror: MirrorArtifacts) -> dict[str, str]:
    files = {f"mirror/{file_name(registry)}.yml": text for registry, text in mirror.instance_configs.items()}
    files["mirror/network-config.yaml"] = mirror.network_config
    files["mirror/user-data.yaml"] = mirror.user_data
    files["mirror/network-check.sh"] = mirror.guest_network.check
    files["mirror/network-converge.sh"] = mirror.guest_network.converge
    files["mirror/health.sh"] = mirror.health
    files["mirror/warmup.sh"] = mirror.warmup
    files["mirror/firewall.nft"] = mirror.firewall
    files["mirror/credentials.sh"] = mirror.credentials
    return files


def _secrets_files(secrets: SecretsArtifacts) -> dict[str, str]:
    def dump(document: dict[str, Any]) -> str:
        return yaml.safe_dump(document, sort_keys=False)

    files = {f"kubernetes/namespace-{file_name(n)}.yaml": dump(secrets_render.namespace(n)) for n in secrets.namespaces}
    files["kubernetes/doppler-token-secret.yaml"] = dump(secrets.token_secret)
    files["kubernetes/cluster-secret-store.yaml"] = dump(secrets.store)
    for manifest in secrets.external_secrets.values():
        meta = manifest["metadata"]
        files["kubernetes/" + file_name(f"externalsecret-{meta['namespace']}-{meta['name']}.yaml")] = dump(manifest)
    if secrets.chart is not None:
        files["kubernetes/external-secrets-chart.yaml"] = dump(secrets.chart)
    return files
