"""The parts of a kubeconfig a plain HTTPS client needs: server, CA, and a token or client cert.
Pure; the secret parts are returned to the caller and never logged."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import yaml


class KubeconfigError(ValueError):
    pass


@dataclass(frozen=True)
class ApiAccess:
    server: str
    ca_pem: bytes | None
    insecure: bool
    token: str | None
    cert_pem: bytes | None
    key_pem: bytes | None

    def __repr__(self) -> str:  # never print credentials
        return f"ApiAccess(server={self.server!r}, token={'set' if self.token else None}, client_cert={'set' if self.cert_pem else None})"


def _b64(value: str | None) -> bytes | None:
    return base64.b64decode(value) if value else None


def parse(text: str) -> ApiAccess:
    try:
        doc: dict[str, Any] = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"the kubeconfig is not valid YAML ({exc.__class__.__name__})") from None
    current = doc.get("current-context")
    contexts = {c["name"]: c["context"] for c in doc.get("contexts") or []}
    context = contexts.get(current) if current else next(iter(contexts.values()), None)
    if not context:
        raise KubeconfigError("the kubeconfig has no usable context")
    clusters = {c["name"]: c["cluster"] for c in doc.get("clusters") or []}
    users = {u["name"]: u["user"] for u in doc.get("users") or []}
    cluster, user = clusters.get(context.get("cluster")), users.get(context.get("user"), {})
    if not cluster or not cluster.get("server"):
        raise KubeconfigError("the kubeconfig's context names no cluster with a server")
    access = ApiAccess(
        server=str(cluster["server"]).rstrip("/"),
        ca_pem=_b64(cluster.get("certificate-authority-data")),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token"),
        cert_pem=_b64(user.get("client-certificate-data")),
        key_pem=_b64(user.get("client-key-data")),
    )
    if not access.token and not (access.cert_pem and access.key_pem):
        raise KubeconfigError("the kubeconfig's user has neither a token nor client-certificate-data/client-key-data")
    return access
