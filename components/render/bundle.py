"""Every artifact the program pushes, rendered once: the components and `render` both use this."""

from __future__ import annotations

from dataclasses import dataclass

from components.config import StackConfig
from components.render import cloudinit, k3s
from components.render.gateway import ACTIONS, GatewayRules, gateway_script
from components.render.manual import manual
from components.render.mirror import firewall, health_script, instance_configs, registries_update_script, registries_yaml, warmup_script
from components.render.mirror import user_data as mirror_user_data
from components.render.secrets import render_manifests


@dataclass(frozen=True)
class NodeArtifacts:
    network_config: str
    user_data: str
    k3s_install: str


@dataclass(frozen=True)
class ClusterArtifacts:
    nodes: dict[str, NodeArtifacts]
    cloud_init_wait: str
    nodes_ready: str
    fetch_kubeconfig: str


def render_cluster(config: StackConfig) -> ClusterArtifacts:
    nodes = {
        node.name: NodeArtifacts(
            network_config=cloudinit.network_config(node, config.network),
            user_data=cloudinit.user_data(node, config.ssh),
            k3s_install=k3s.install_script(config, node),
        )
        for node in config.nodes
    }
    return ClusterArtifacts(
        nodes=nodes,
        cloud_init_wait=k3s.cloud_init_wait_script(),
        nodes_ready=k3s.nodes_ready_script(config),
        fetch_kubeconfig=k3s.fetch_kubeconfig_script(),
    )


def render_files(config: StackConfig) -> dict[str, str]:
    """Relative path -> text, for `python -m components render` (secrets are never in these)."""
    cluster = render_cluster(config)
    files: dict[str, str] = {}
    for name, node in cluster.nodes.items():
        files[f"nodes/{name}/network-config.yaml"] = node.network_config
        files[f"nodes/{name}/user-data.yaml"] = node.user_data
        files[f"nodes/{name}/k3s-install.sh"] = node.k3s_install
    files["k3s/cloud-init-wait.sh"] = cluster.cloud_init_wait
    files["k3s/nodes-ready.sh"] = cluster.nodes_ready
    files["k3s/fetch-kubeconfig.sh"] = cluster.fetch_kubeconfig
    files.update(render_gateway_files(config))
    files.update(render_mirror_files(config))
    files.update(render_manifests(config.secrets))
    return files


def render_mirror_files(config: StackConfig) -> dict[str, str]:
    mirror = config.mirror
    if not mirror.enabled or mirror.vm is None:
        return {}
    content = registries_yaml(mirror)
    files = {f"nodes/{node.name}/registries.yaml": content for node in config.nodes}
    files["k3s/registries-update.sh"] = registries_update_script(content)
    files.update({f"mirror/{registry}.yml": text for registry, text in instance_configs(mirror).items()})
    files["mirror/network-config.yaml"] = cloudinit.network_config(mirror.vm, config.network)
    files["mirror/user-data.yaml"] = mirror_user_data(mirror, config.network, config.ssh)
    files["mirror/health.sh"] = health_script(mirror)
    files["mirror/warmup.sh"] = warmup_script(mirror, config.k3s.version)
    files["mirror/firewall.nft"] = firewall(mirror, config.network)
    return files


def render_gateway_files(config: StackConfig) -> dict[str, str]:
    gateway = config.gateway
    files: dict[str, str] = {}
    if gateway.kind == "linux":
        rules = GatewayRules.for_stack(gateway, config.network)
        files = {f"gateway/{action}.sh": gateway_script(action, gateway.flavor, rules) for action in ACTIONS}
    if not gateway.manage:
        files["gateway/MANUAL.md"] = manual(gateway, config.network)
    return files
