"""The stack file's JSON Schema and its reference table, both generated from the models.

`python -m components schema` prints the schema (stacks/netstab.schema.json, which editors with
yaml-language-server use through the modeline in each stack file); `--markdown` prints
stacks/README.md. Tests check that both committed files equal what these functions generate.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import yaml
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from components.config.base import Section, section_of
from components.config.fields import Check
from components.config.stack import NAMESPACE, SECRETS, StackConfig, secret_hint

SCHEMA_FILE = "stacks/netstab.schema.json"


class _WithoutFieldTitles(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Vmid" and friends: the key itself is the title


def stack_schema() -> dict[str, Any]:
    """JSON Schema of a whole stack file: `config:` with the `netstab:<section>` keys and the secrets."""
    config = StackConfig.model_json_schema(by_alias=True, schema_generator=_WithoutFieldTitles)
    properties = {f"{NAMESPACE}:{key}": value for key, value in config["properties"].items()}
    for key, (when, doc) in SECRETS.items():
        properties[f"{NAMESPACE}:{key}"] = {
            "description": f"{doc}; needed {when}. A secret: {secret_hint(key).removeprefix('set it with: ')}",
            "type": "object",
            "properties": {"secure": {"type": "string"}},
            "required": ["secure"],
            "additionalProperties": False,
        }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "netstab stack file (stacks/Pulumi.<stack>.yaml)",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{NAMESPACE}:{key}" for key in config["required"]],
                # other namespaces are other programs' business; a key of ours must be one we know, and a key
                # without a namespace (`ssh:` for `netstab:ssh:`) is refused, as Pulumi refuses it
                "propertyNames": {"anyOf": [{"enum": list(properties)},
                                            {"allOf": [{"not": {"pattern": f"^{NAMESPACE}:"}}, {"pattern": "^[^:]+:[^:]"}]}]},
            },
        },
        "required": ["config"],
        "$defs": config["$defs"],
    }


def schema_text() -> str:
    return json.dumps(stack_schema(), indent=2) + "\n"


README_HEAD = f"""<!-- Generated from components/config by `make schema`; edit the models, not this file. -->
# Stack files

A stack file, `stacks/Pulumi.<stack>.yaml`, holds one stack's settings under `config:`, each
section as a `{NAMESPACE}:<section>` key (`{NAMESPACE}:network`, `{NAMESPACE}:nodes`, ...). Keys are
camelCase; unknown keys are errors, so typos never pass silently.

Check a stack offline with `make render STACK=<stack>` (or `python -m components render <stack>`):
validation runs before anything is declared or written and lists every problem at once, one
`key.path: message` per line, then exits 2. The same validation runs under `pulumi up`.

Editors with yaml-language-server (VS Code's YAML extension, Neovim, Helix, ...) complete and check
stack files from `netstab.schema.json`, found either way:

- the modeline on each file's first line (it works only as the file's first comment, and
  `pulumi stack select --create` may write `encryptionsalt:` above it: move it back to the top):

  ```yaml
  # yaml-language-server: $schema=netstab.schema.json
  ```

- or a schema mapping by file name, which needs no modeline: VS Code reads the repo's
  `.vscode/settings.json` (`"yaml.schemas": {{"./stacks/netstab.schema.json": ["stacks/Pulumi.*.yaml"]}}`);
  other editors take the same glob in their yaml-language-server settings (`yaml.schemas`).
"""


def config_reference() -> str:
    """stacks/README.md: the prose above, then one table row per key."""
    lines = [README_HEAD, "## Keys", "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in StackConfig.model_fields.items():
        lines += _rows(info.alias or name, info)
    lines += ["", "## Secrets", "",
              f"Set with `pulumi config set --secret {NAMESPACE}:<key>`, which prompts for the value, or with the value on",
              f"stdin (`pulumi config set --secret {NAMESPACE}:sshPrivateKey < ~/.ssh/id_ed25519`), never as an argument:",
              "a command line lands in shell history and in `ps`. They are stored encrypted and are never part of the",
              "config above, of rendered files or of command text.", "",
              "| key | needed | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{NAMESPACE}:{key}` | {when} | {doc} |" for key, (when, doc) in SECRETS.items()]
    lines += ["", "## Long defaults", ""]
    for key, value in _long_defaults():
        lines += [f"`{key}`:", "", "```yaml", yaml.safe_dump(value, sort_keys=False, width=120).rstrip(), "```", ""]
    return "\n".join(lines)


def _rows(key: str, info: FieldInfo) -> list[str]:
    section, many = section_of(info.annotation)
    if section is not None:
        kind = "list of mappings" if many else "mapping"
        rows = [_row(key, kind, info, _first_paragraph(info.description or section.__doc__))]
        prefix = f"{key}[]." if many else f"{key}."
        for name, sub in section.model_fields.items():
            rows += _rows(prefix + (sub.alias or name), sub)
        return rows
    return [_row(key, _type_text(info), info, info.description or "")]


def _row(key: str, kind: str, info: FieldInfo, meaning: str) -> str:
    one_line = " ".join(meaning.split())  # a docstring wrapped over lines would break the table row
    return f"| `{key}` | {kind} | {_default_text(key, info)} | {one_line} |"


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").split("\n\n")[0].split())


def _type_text(info: FieldInfo) -> str:
    for check, many in _checks(info.annotation, info.metadata):
        text = check.expected.removeprefix("a ").removeprefix("an ")
        return f"list; each {check.expected}" if many else text
    raise TypeError(f"{info} has no Check: every config field type names what it expects")


def _checks(annotation: Any, metadata: list[Any], many: bool = False) -> typing.Iterator[tuple[Check, bool]]:
    for item in metadata:
        if isinstance(item, Check):
            yield item, many
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _checks(annotation.__origin__, list(annotation.__metadata__), many)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            yield from _checks(arg, [], many)
    elif origin is tuple:
        yield from _checks(typing.get_args(annotation)[0], [], True)


LONG = 40


def _default_text(key: str, info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "—"
    text = json.dumps(value)
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = str(value).lower()
    return f"`{text}`" if len(text) <= LONG else "see Long defaults"


def _long_defaults() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []

    def walk(prefix: str, section: type[Section]) -> None:
        for name, info in section.model_fields.items():
            key = prefix + (info.alias or name)
            if not info.is_required() and len(json.dumps(info.get_default(call_default_factory=True))) > LONG:
                found.append((key, info.get_default(call_default_factory=True)))
            nested, many = section_of(info.annotation)
            if nested is not None:
                walk(f"{key}[]." if many else f"{key}.", nested)

    walk("", StackConfig)
    return found
