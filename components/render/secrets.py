"""Kubernetes manifests of the secrets layer: the Doppler token Secret, the ClusterSecretStore and
the ExternalSecrets. Plain dicts; the component hands them to Kubernetes resources unchanged.

Neither the store nor the ExternalSecrets are awaited (`pulumi.com/skipAwait`): Doppler being slow
or down must not stall the deploy; the SecretGate checks only the critical generated Secrets.
"""

from __future__ import annotations

from typing import Any

from components.config import ExternalSecretConfig, SecretsConfig
from components.render.quote import for_person

ESO_API = "external-secrets.io/v1"
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
TOKEN_KEY = "dopplerToken"
REDACTED = "<redacted: netstab:dopplerToken>"
CRITICAL_LABEL = "netstab.io/critical"


def namespaces(cfg: SecretsConfig) -> list[str]:
    return sorted({cfg.operator_namespace, *(e.namespace for e in cfg.external_secrets)})


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def token_secret(cfg: SecretsConfig, token: Any = REDACTED) -> dict[str, Any]:
    """The Doppler service token as a Secret; `token` is a Pulumi secret in the program, redacted in render."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": cfg.token_secret, "namespace": cfg.operator_namespace},
        "type": "Opaque",
        "stringData": {TOKEN_KEY: token},
    }


def cluster_secret_store(cfg: SecretsConfig) -> dict[str, Any]:
    doppler: dict[str, Any] = {
        "auth": {"secretRef": {"dopplerToken": {"name": cfg.token_secret, "key": TOKEN_KEY, "namespace": cfg.operator_namespace}}}
    }
    if cfg.doppler_project:
        doppler["project"] = cfg.doppler_project
    if cfg.doppler_config:
        doppler["config"] = cfg.doppler_config
    return {
        "apiVersion": ESO_API,
        "kind": "ClusterSecretStore",
        "metadata": {"name": cfg.store_name, "annotations": dict(SKIP_AWAIT)},
        "spec": {"provider": {"doppler": doppler}},
    }


def external_secret(cfg: SecretsConfig, es: ExternalSecretConfig) -> dict[str, Any]:
    return {
        "apiVersion": ESO_API,
        "kind": "ExternalSecret",
        "metadata": {
            "name": es.name,
            "namespace": es.namespace,
            "annotations": dict(SKIP_AWAIT),
            "labels": {CRITICAL_LABEL: "true" if es.critical else "false"},
        },
        "spec": {
            "refreshInterval": es.refresh_interval,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": cfg.store_name},
            "target": {"name": es.target, "creationPolicy": "Owner"},
            "data": [{"secretKey": key, "remoteRef": {"key": remote}} for remote, key in es.data],
        },
    }


def chart_values() -> dict[str, Any]:
    return {"installCRDs": True}


def doppler_probe_hint(user: str, node_ip: str) -> str:
    """The command a person runs to check Doppler reachability from a node (quoted in gate failures)."""
    # a person pastes it: every argument one shell word, so a user name runs nothing on their machine
    return for_person("ssh", f"{user}@{node_ip}", "python3 - http https://api.doppler.com/v3/projects --repeat 10") + " < probes/agent.py"


def gate_spec(cfg: SecretsConfig, probe_hint: str) -> dict[str, Any]:
    """Plain JSON for the SecretGate: which generated Secrets bootstrap needs, and how long to wait."""
    return {
        "critical": [{"namespace": e.namespace, "name": e.name, "target": e.target, "keys": list(e.secret_keys)} for e in cfg.critical],
        "store": cfg.store_name,
        "timeout_s": cfg.gate_timeout_s,
        "force_sync_interval_s": cfg.force_sync_interval_s,
        "probe_hint": probe_hint,
    }
