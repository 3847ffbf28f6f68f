"""The stack's config as frozen, validated pydantic models, one module per section.

Data flows one way: stack YAML (or `pulumi.Config`) -> `parse_config` -> these models ->
renderers and components. Every problem is reported at once, as `key.path: message`.
Secrets are not part of these models: they stay Pulumi secrets (see `components.stack`).
"""

from components.config.base import ConfigError
from components.config.fields import IPAddress, IPNetwork
from components.config.gateway import FLAVORS, GATEWAY_KINDS, GatewayConfig
from components.config.image import ImageConfig
from components.config.k3s import K3sConfig
from components.config.mirror import MirrorConfig, UpstreamConfig, WarmupConfig
from components.config.monitoring import MonitoringConfig
from components.config.network import GUEST_INTERFACE, MTU_MAX, MTU_MIN, NetworkConfig
from components.config.nodes import ROLES, NodeConfig
from components.config.proxmox import ProxmoxConfig
from components.config.secrets import ExternalSecretConfig, GateConfig, OperatorConfig, SecretsConfig, StoreConfig
from components.config.ssh import SshConfig
from components.config.stack import (
    NAMESPACE,
    OPTIONAL_SECRET_KEYS,
    SECRET_KEYS,
    SECRETS,
    SECTIONS,
    StackConfig,
    misspelt_namespace,
    needed_secrets,
    parse_config,
    placeholder_problem,
    placeholders,
    secret_hint,
)
from components.config.validation import CriteriaConfig, ValidationConfig

__all__ = [
    "FLAVORS", "GATEWAY_KINDS", "GUEST_INTERFACE", "MTU_MAX", "MTU_MIN", "NAMESPACE", "OPTIONAL_SECRET_KEYS", "ROLES", "SECRET_KEYS", "SECRETS",
    "SECTIONS", "ConfigError", "ExternalSecretConfig", "GateConfig", "GatewayConfig", "IPAddress", "IPNetwork", "ImageConfig",
    "K3sConfig", "MirrorConfig", "NetworkConfig", "NodeConfig", "OperatorConfig", "ProxmoxConfig", "SecretsConfig", "SshConfig",
    "StackConfig", "StoreConfig", "UpstreamConfig", "ValidationConfig", "CriteriaConfig", "WarmupConfig", "misspelt_namespace", "needed_secrets",
    "parse_config", "placeholder_problem", "placeholders", "secret_hint", "MonitoringConfig",
]
