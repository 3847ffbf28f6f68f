"""Configuration of a CNCF distribution (Debian `docker-registry`, 2.8) instance.

Facts of 2.8 this is built around: one upstream per instance (`proxy.remoteurl`, optional
username/password); no cache-TTL key; the proxy's expiry needs `storage.delete.enabled: true`;
the process exits at start when a proxy's upstream is unreachable, so its unit must restart on
failure and a health check must not depend on the upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class RegistryInstance:
    listen: str  # host:port
    storage_dir: str
    remote_url: str | None = None  # pull-through cache of this upstream when set
    tls_cert: str | None = None
    tls_key: str | None = None


def registry_config(instance: RegistryInstance) -> str:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": instance.storage_dir},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": instance.listen, "headers": {"X-Content-Type-Options": ["nosniff"]}},
        # Health is the local storage only: it must stay green while an upstream is down.
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    if instance.tls_cert and instance.tls_key:
        config["http"]["tls"] = {"certificate": instance.tls_cert, "key": instance.tls_key}
    if instance.remote_url:
        # Upstream credentials, when any, reach the process as REGISTRY_PROXY_USERNAME and
        # REGISTRY_PROXY_PASSWORD from an environment file: never in this text.
        config["proxy"] = {"remoteurl": instance.remote_url}
    return yaml.safe_dump(config, sort_keys=False)
