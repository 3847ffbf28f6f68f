"""Where config comes from: a stack file on disk (offline render) or the Pulumi engine.

Both paths hand the same raw mapping to `parse_config`, so a stack that renders is a stack
that deploys.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
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
    misspelt_namespace,
    needed_secrets,
    parse_config,
    secret_hint,
)
from components.config.mirror import REGISTRY_NAME

if TYPE_CHECKING:
    import pulumi

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"


def stack_file(stack: str, stacks_dir: Path = STACKS_DIR) -> Path:
    return stacks_dir / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> tuple[dict[str, Any], frozenset[str]]:
    """The `netstab:` keys of a stack file (and keys of a misspelt namespace, whole), and which hold encrypted (secure) values."""
    if not path.is_file():
        raise ConfigError([f"{path}: no such stack file; create it or pick one of {_known_stacks(path.parent)}"])
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: is not UTF-8 text (undecodable byte at offset {exc.start}); save it as UTF-8"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read ({exc.strerror})"]) from None
    document = _load_yaml(path, text)
    if not isinstance(document, dict) or "config" not in document:
        raise ConfigError([f"{path}: {_no_config(document)}"])
    config = document["config"]
    if not isinstance(config, dict):
        raise ConfigError([f"{path}: expected a top-level 'config:' mapping"])
    not_text = [key for key in config if not isinstance(key, str)]
    if not_text:
        raise ConfigError([f"{path}: config key {key!r} is not text (YAML reads yes/no/on/off as booleans and bare numbers as numbers); "
                           f"stack keys are {NAMESPACE}:<section>" for key in not_text])
    raw: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, colon, key = full_key.partition(":")
        if not colon:
            raw[f":{full_key}"] = value  # no namespace (Pulumi refuses the file): parse_config names it
        elif namespace == NAMESPACE:
            raw[key] = value
        elif misspelt_namespace(namespace):
            raw[full_key] = value  # parse_config names it
    secure = frozenset(k for k, v in raw.items() if isinstance(v, dict) and set(v) == {"secure"})
    return raw, secure


def _no_config(document: Any) -> str:
    """What a stack file without its `config:` mapping is, in one line."""
    where = "a top-level `config:` mapping, each section a `netstab:<section>` key under it (stacks/README.md)"
    if document is None:
        return f"is empty; a stack file holds its settings under {where}"
    if not isinstance(document, dict):
        return f"is a YAML {type(document).__name__}, not a mapping; a stack file holds its settings under {where}"
    ours = [str(k) for k in document if str(k).startswith(f"{NAMESPACE}:") or str(k) in SECTIONS]
    if ours:
        return f"{', '.join(ours)} sit at the top level; put them under a top-level `config:` line, indented"
    return f"has no top-level `config:` (found: {', '.join(map(str, document)) or 'nothing'}); a stack file holds its settings under {where}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, noting every key repeated within one mapping (YAML itself keeps the last one silently)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.repeated: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` may be overridden by the keys beside it
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if not isinstance(key, Hashable):
                continue  # the safe loader refuses it below
            if key in lines:
                self.repeated.append(f"line {line}: key {key!r} is already on line {lines[key]} of the same mapping "
                                     "(YAML would keep only the last); keep one")
            lines.setdefault(key, line)
        return super().construct_mapping(node, deep)


def _load_yaml(path: Path, text: str) -> Any:
    loader = _UniqueKeyLoader(text)
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    finally:
        loader.dispose()
    if loader.repeated:
        raise ConfigError([f"{path}: {repeated}" for repeated in loader.repeated])
    return document


def load_stack_file(path: Path) -> StackConfig:
    raw, secure = read_stack_file(path)
    return parse_config(raw, secure)


def _known_stacks(directory: Path) -> str:
    names = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))
    return ", ".join(names) or "(none found)"


def _engine_sections(cfg: pulumi.Config) -> dict[str, Any]:
    import pulumi

    raw: dict[str, Any] = {}
    for key in SECTIONS:
        try:
            value = cfg.get_object(key)
        except pulumi.ConfigTypeError:
            value = cfg.get(key)  # not JSON (`pulumi config set netstab:network 10.27.27.0/24`): validation names it
        if value is not None:
            raw[key] = value
    return raw


def _engine_value(text: str | None) -> Any:
    """A config value as pulumi.Config.get_object reads it: JSON when it parses, else the text."""
    try:
        return json.loads(text) if text is not None else None
    except json.JSONDecodeError:
        return text


CREDENTIALS_SHAPE = 'expected {"<registry>": {"username": "...", "password": "..."}}'


def credentials_problems(text: str) -> list[str]:
    """What is wrong with the shape of netstab:mirrorCredentials, said without quoting any of it (it is a secret)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:  # its msg is a fixed phrase; the document stays out of it
        return [f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {CREDENTIALS_SHAPE}"]
    if not isinstance(value, dict):
        return [f"is not a JSON object; {CREDENTIALS_SHAPE}"]
    # the key is checked too: the mirror reads one `registry user password` record per line, so a key
    # with a space or a newline would split into records for another registry's instance
    return [f"entry {i} is not keyed by a registry host name such as docker.io; {CREDENTIALS_SHAPE}"
            for i, registry in enumerate(value, 1) if not REGISTRY_NAME.fullmatch(registry)] + [
            f"entry {i} needs exactly a username and a password, each non-empty text; {CREDENTIALS_SHAPE}"
            for i, entry in enumerate(value.values(), 1)
            if not (isinstance(entry, dict) and set(entry) == {"username", "password"} and all(isinstance(v, str) and v for v in entry.values()))]


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
    raw = _engine_sections(cfg)
    # pulumi.Config cannot list keys, so typos (netstab:netwrok, netsatb:k3s) are found in the engine's config map.
    for full_key in set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env()):
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE and key not in SECTIONS + SECRET_KEYS + OPTIONAL_SECRET_KEYS:
            raw[key] = "<set>"
        elif misspelt_namespace(namespace):
            # a section is checked where it was meant to be (parse_config); any other key is only named
            raw[full_key] = _engine_value(runtime_config.get_config(full_key)) if key in SECTIONS else "<set>"
    # The secrets' plain text, looked at here (set? empty? well formed?) and never put in a message.
    values = {k: runtime_config.get_config(f"{NAMESPACE}:{k}") for k in SECRET_KEYS + OPTIONAL_SECRET_KEYS}
    given = {k: v for k, v in values.items() if v is not None}
    secret_set = frozenset(k for k in given if runtime_config.is_config_secret(f"{NAMESPACE}:{k}"))
    raw.update({k: {"secure": "<engine>"} if k in secret_set else "<plain>" for k in given})

    problems: list[str] = []
    needed = SECRET_KEYS
    try:
        config = parse_config(raw, secret_set)
        needed = needed_secrets(config)
    except ConfigError as exc:
        problems.extend(exc.problems)  # dopplerToken is asked for once secrets.enabled can be read
    problems.extend(f"{NAMESPACE}:{k}: missing secret; {secret_hint(k)}" for k in needed if k not in given)
    problems.extend(f"{NAMESPACE}:{k}: is empty; {secret_hint(k)}" for k, v in given.items() if not v.strip())
    if given.get("mirrorCredentials", "").strip():
        problems.extend(f"{NAMESPACE}:mirrorCredentials: {p}" for p in credentials_problems(given["mirrorCredentials"]))
    if problems:
        raise ConfigError(problems)
    secrets = Secrets(
        proxmox_api_token=cfg.require_secret("proxmoxApiToken"),
        ssh_private_key=cfg.require_secret("sshPrivateKey"),
        k3s_token=cfg.require_secret("k3sToken"),
        mirror_credentials=cfg.get_secret_object("mirrorCredentials") if "mirrorCredentials" in given else None,
        doppler_token=cfg.require_secret("dopplerToken") if "dopplerToken" in given else None,
    )
    return config, secrets
