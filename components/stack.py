"""Where config comes from: a stack file on disk (offline render) or the Pulumi engine.

Both paths hand the same raw mapping to `parse_config`, so a stack that renders is a stack
that deploys.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from components.config import (
    NAMESPACE,
    OPTIONAL_SECRET_KEYS,
    SECRET_KEYS,
    SECTIONS,
    ConfigError,
    StackConfig,
    needed_secrets,
    parse_config,
    secret_hint,
)

if TYPE_CHECKING:
    import pulumi

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> tuple[dict[str, Any], frozenset[str]]:
    """The `netstab:` keys of a stack file, and which of them hold encrypted (secure) values."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such stack file; create it or pick one of {_known_stacks(path.parent)}"])
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: expected a top-level 'config:' mapping"])
    raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith(f"{NAMESPACE}:")}
    secure = frozenset(k for k, v in raw.items() if isinstance(v, dict) and set(v) == {"secure"})
    return raw, secure


def load_stack_file(path: Path) -> StackConfig:
    raw, secure = read_stack_file(path)
    return parse_config(raw, secure)


def _known_stacks(directory: Path) -> str:
    names = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))
    return ", ".join(names) or "(none found)"


@dataclass(frozen=True)
class Secrets:
    """Secret config as Pulumi secret Outputs; never unwrapped in program code."""

    proxmox_api_token: pulumi.Output[str]
    ssh_private_key: pulumi.Output[str]
    k3s_token: pulumi.Output[str]
    mirror_credentials: pulumi.Output[Any] | None = None
    doppler_token: pulumi.Output[str] | None = None


def load_pulumi_config() -> tuple[StackConfig, Secrets]:
    """Read and validate the stack through the Pulumi engine; raise ConfigError with every problem."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    cfg = pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in SECTIONS:
        value = cfg.get_object(key)
        if value is not None:
            raw[key] = value
    # pulumi.Config cannot list keys, so typos (netstab:netwrok) are found in the engine's config map.
    set_keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    for full_key in set_keys:
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE and key not in SECTIONS + SECRET_KEYS + OPTIONAL_SECRET_KEYS:
            raw[key] = "<set>"
    all_secret_keys = SECRET_KEYS + OPTIONAL_SECRET_KEYS
    secret_set = frozenset(k for k in all_secret_keys if runtime_config.is_config_secret(f"{NAMESPACE}:{k}"))
    def is_set(key: str) -> bool:
        return runtime_config.get_config(f"{NAMESPACE}:{key}") is not None

    for key in all_secret_keys:
        if is_set(key):
            raw[key] = {"secure": "<engine>"} if key in secret_set else "<plain>"

    problems: list[str] = []
    needed = SECRET_KEYS
    try:
        config = parse_config(raw, secret_set)
        needed = needed_secrets(config)
    except ConfigError as exc:
        problems.extend(exc.problems)  # dopplerToken is asked for once secrets.enabled can be read
    problems.extend(f"{NAMESPACE}:{k}: missing secret; {secret_hint(k)}" for k in needed if not is_set(k))
    if problems:
        raise ConfigError(problems)
    secrets = Secrets(
        proxmox_api_token=cfg.require_secret("proxmoxApiToken"),
        ssh_private_key=cfg.require_secret("sshPrivateKey"),
        k3s_token=cfg.require_secret("k3sToken"),
        mirror_credentials=cfg.get_secret_object("mirrorCredentials") if is_set("mirrorCredentials") else None,
        doppler_token=cfg.require_secret("dopplerToken") if is_set("dopplerToken") else None,
    )
    return config, secrets
