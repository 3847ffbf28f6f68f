"""The `secrets` section and its rules."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler, field_validator

from components.config.base import Problems, Section, default, rule
from components.config.fields import Bool, Check, FilePath, between, grammar, https_url, matching, string_list

K8S_NAME = grammar(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
K8S_LABEL = grammar(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_DATA_KEY = grammar(r"^[-._a-zA-Z0-9]+$")
# A Doppler secret name (the key External Secrets reads): letters, digits and '_'.
DOPPLER_KEY = grammar(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A Doppler project or config slug.
DOPPLER_SLUG = grammar(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DURATION = grammar(r"^(\d+(ns|us|ms|s|m|h))+$")
SEMVER = grammar(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z_.]+)?$")


def k8s_name(expected: str) -> Check:
    return matching(expected, K8S_NAME, 253)


def k8s_label(expected: str) -> Check:
    return matching(expected, K8S_LABEL, 63)


def _key_mapping(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
        raise ValueError("")
    bad_keys = [k for k in value if not DOPPLER_KEY.fullmatch(k) or len(k) > 253]
    if bad_keys:
        raise ValueError(f"invalid Doppler keys (letters, digits, '_'): {', '.join(map(repr, bad_keys))}")
    bad = [v for v in value.values() if not isinstance(v, str) or not SECRET_DATA_KEY.fullmatch(v) or len(v) > 253]
    if bad:
        raise ValueError(f"invalid Secret keys: {bad}")
    return tuple(value.items())


KEY_MAPPING_SCHEMA = {"type": "object", "propertyNames": {"pattern": DOPPLER_KEY.pattern, "maxLength": 253},
                      "additionalProperties": {"type": "string", "pattern": SECRET_DATA_KEY.pattern, "maxLength": 253}}


def _manifests(value: Any) -> tuple[str, ...]:
    paths = string_list(value)
    bad = [p for p in paths if not FilePath.fullmatch(p) or len(p) > 4096]
    if bad:
        raise ValueError(f"paths of letters, digits and . _ + - / only: {', '.join(map(repr, bad))}")
    return paths


MANIFESTS_SCHEMA = {"type": "array", "items": {"type": "string", "pattern": FilePath.pattern, "maxLength": 4096}}


class ExternalSecretConfig(Section):
    """One ExternalSecret: Doppler keys copied into a Kubernetes Secret."""

    name: Annotated[str, k8s_name("a Kubernetes object name (lowercase, digits, '-', '.')")]
    """The ExternalSecret's name."""
    namespace: Annotated[str, k8s_label("a Kubernetes namespace name (lowercase, digits, '-')")]
    """Namespace of the ExternalSecret and its Secret."""
    target: Annotated[str, k8s_name("a Kubernetes Secret name")] = default(None)
    """The Kubernetes Secret External Secrets generates (default: the name)."""
    data: Annotated[tuple[tuple[str, str], ...], Check("a mapping of Doppler key -> Secret key", _key_mapping, KEY_MAPPING_SCHEMA)] = default({})
    """Doppler key -> key in the Secret."""
    refresh_interval: Annotated[str, matching("a duration such as 1h or 15m", DURATION)] = "1h"
    """How often External Secrets re-reads Doppler."""
    critical: Bool = False
    """The deploy's gate waits for this Secret and every key in it."""

    @field_validator("target", mode="wrap")
    @classmethod
    def _defaults_to_the_name(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        return info.data.get("name") if value is None else handler(value)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        return tuple(key for _, key in self.data)

    @rule("critical", "data")
    def _critical_needs_keys(self) -> Problems:
        if self.critical and not self.data:
            yield ("data",), "a critical secret needs at least one key: the gate checks that every key is there"
        elif not self.data:
            # External Secrets' admission webhook (v2.1) refuses an ExternalSecret with neither data nor dataFrom
            yield ("data",), "an ExternalSecret needs at least one key: External Secrets' webhook refuses one without data"

    @rule("data")
    def _secret_keys_are_distinct(self) -> Problems:
        seen: dict[str, str] = {}
        for remote, key in self.data:
            if key in seen:
                # the webhook refuses duplicate secretKey values: one would silently overwrite the other
                yield ("data", remote), f"writes Secret key {key}, which {seen[key]} already writes; give each its own key"
            seen.setdefault(key, remote)


class OperatorConfig(Section):
    """The External Secrets operator."""

    install: Bool = True
    """Install the External Secrets operator (Helm chart); false: it is already there."""
    chart_version: Annotated[str, matching("a chart version such as 2.1.0", SEMVER)] = "2.1.0"
    """The operator chart's version."""
    repository: Annotated[str, https_url("an https:// chart repository")] = "https://charts.external-secrets.io"
    """The chart repository."""
    namespace: Annotated[str, k8s_label("a Kubernetes namespace name")] = "external-secrets"
    """The operator's namespace; the Doppler token Secret lives there too."""


class StoreConfig(Section):
    """The Doppler ClusterSecretStore."""

    name: Annotated[str, k8s_name("a Kubernetes object name")] = "doppler"
    """The ClusterSecretStore's name."""
    token_secret: Annotated[str, k8s_name("a Kubernetes Secret name")] = "doppler-token"
    """The Secret holding netstab:dopplerToken."""
    project: Annotated[str, matching("a Doppler project name", DOPPLER_SLUG, 80)] | None = None
    """Doppler project (default: the token's)."""
    config: Annotated[str, matching("a Doppler config name", DOPPLER_SLUG, 80)] | None = None
    """Doppler config (default: the token's)."""


class GateConfig(Section):
    """The gate: what depends on the critical Secrets waits for them, nothing else does."""

    timeout_seconds: Annotated[int, between(30, 7200)] = 600
    """How long the gate waits for the critical Secrets."""
    force_sync_interval_seconds: Annotated[int, between(10, 3600)] = 30
    """How often the gate asks External Secrets to sync again while it waits."""
    manifests: Annotated[tuple[str, ...], Check("a list of manifest file paths", _manifests, MANIFESTS_SCHEMA)] = default([])
    """Manifest files applied only after the gate passes."""


class SecretsConfig(Section):
    """External Secrets with Doppler. Nothing waits on Doppler except the gate, and the gate checks only the critical Secrets."""

    enabled: Bool = True
    """Install the secrets layer (needs the secret netstab:dopplerToken; no `secrets` section: none)."""
    operator: OperatorConfig = default({})
    store: StoreConfig = default({})
    external_secrets: tuple[ExternalSecretConfig, ...] = default([])
    """The ExternalSecrets to create."""
    gate: GateConfig = default({})

    @property
    def critical(self) -> tuple[ExternalSecretConfig, ...]:
        return tuple(e for e in self.external_secrets if e.critical)

    # The flat names the renderers and components read.
    @property
    def install_operator(self) -> bool:
        return self.operator.install

    @property
    def chart_version(self) -> str:
        return self.operator.chart_version

    @property
    def chart_repository(self) -> str:
        return self.operator.repository

    @property
    def operator_namespace(self) -> str:
        return self.operator.namespace

    @property
    def store_name(self) -> str:
        return self.store.name

    @property
    def token_secret(self) -> str:
        return self.store.token_secret

    @property
    def doppler_project(self) -> str | None:
        return self.store.project

    @property
    def doppler_config(self) -> str | None:
        return self.store.config

    @property
    def gate_timeout_s(self) -> int:
        return self.gate.timeout_seconds

    @property
    def force_sync_interval_s(self) -> int:
        return self.gate.force_sync_interval_seconds

    @property
    def gated_manifests(self) -> tuple[str, ...]:
        return self.gate.manifests

    @rule("external_secrets")
    def _external_secrets_are_distinct(self) -> Problems:
        names: dict[tuple[str, str], int] = {}
        targets: dict[tuple[str, str], int] = {}
        for i, item in enumerate(self.external_secrets):
            name, target = (item.namespace, item.name), (item.namespace, item.target)
            if name in names:
                yield ("externalSecrets", i, "name"), f"{item.namespace}/{item.name} is already declared by externalSecrets[{names[name]}]"
            names.setdefault(name, i)
            if target in targets:
                yield ("externalSecrets", i, "target"), f"{item.namespace}/{item.target} is already the target of externalSecrets[{targets[target]}]"
            targets.setdefault(target, i)
