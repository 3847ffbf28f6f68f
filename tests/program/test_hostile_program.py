"""The hostile-config property test (tests/render/test_hostile_config.py) over what the Pulumi
program itself sends, under mocks: every remote command's create/update/delete text (parsed with
shfmt, through its `sh -c` and here-documents), every snippet (YAML), and every plain input.

Config: one program run per string field that accepts a payload from the fragment table (the
rest are refused before the program declares anything), with that payload in it. Secrets: hostile
values in every secret, which must reach no command text, no snippet and no plain input at all.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, parse_config
from components.sdkvalues import unwrap
from tests.conftest import COMMAND, SNIPPET
from tests.program.harness import DUMMY_SECRETS, Recording, run_program
from tests.render.hostile import MARKER, shell_problems, yaml_problems
from tests.render.test_hostile_config import FRAGMENTS, FULL, PLACES, SLOTS, _name, with_payload


def _accepted() -> dict[str, tuple[dict[str, Any], str]]:
    """Per field: the first table case that validation accepts with the marker in it."""
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for slot in SLOTS:
        for payload in FRAGMENTS:
            for place in PLACES:
                raw, value = with_payload(FULL, slot, payload, place)
                if MARKER not in value or _name(slot) in found:
                    continue
                try:
                    parse_config(raw)
                except ConfigError:
                    continue
                found[_name(slot)] = (raw, value)
    return found


ACCEPTED = _accepted()


def texts(recording: Recording) -> dict[str, tuple[str, str]]:
    """resource name and input -> (language, text) for every command text and snippet."""
    out: dict[str, tuple[str, str]] = {}
    for command in recording.of_type(COMMAND):
        for key in ("create", "update", "delete"):
            text = unwrap(command.inputs.get(key))
            if isinstance(text, str) and text:
                out[f"{command.name}.{key}"] = ("shell", text)
    for snippet in recording.of_type(SNIPPET):
        out[f"{snippet.name}.data"] = ("yaml", unwrap(snippet.inputs["sourceRaw"]["data"]))
    return out


def program_problems(recording: Recording, baseline: dict[str, tuple[str, str]], value: str | None) -> list[str]:
    problems: list[str] = []
    for name, (language, text) in texts(recording).items():
        if baseline.get(name) == (language, text):
            continue
        problems += shell_problems(text, name, value=value) if language == "shell" else yaml_problems(text, name, value)
    return problems


@pytest.fixture(scope="module")
def baseline() -> dict[str, tuple[str, str]]:
    return texts(run_program(FULL))


def test_some_payloads_reach_the_program():
    # pinned from both sides: the fields whose grammar lets a marker word through (URL paths, key comments, group names)
    assert sorted(ACCEPTED) == ["gateway.hostKey", "image.url", "mirror.warmup.groups[*]", "monitoring.endpoints[0]", "proxmox.endpoint",
                                "proxmox.nodes[0].sshHostKey", "proxmox.sshHostKey", "ssh.publicKeys[0]", "validation.endpoints[0]"]


@pytest.mark.parametrize("field", sorted(ACCEPTED))
def test_an_accepted_payload_stays_data_in_every_remote_command(field, baseline):
    raw, value = ACCEPTED[field]
    assert program_problems(run_program(raw), baseline, value) == []


HOSTILE = f"'\"$({MARKER})`{MARKER}`;{MARKER}\n{MARKER}: x\n- {MARKER}\\"


def test_hostile_secret_values_reach_no_text_a_command_or_a_file_shows(baseline):
    secrets = {key: value + HOSTILE for key, value in DUMMY_SECRETS.items()}
    secrets["mirrorCredentials"] = json.dumps({"docker.io": {"username": "u" + HOSTILE, "password": "p" + HOSTILE}})
    raw = json.loads(json.dumps(FULL))
    raw["mirror"]["credentialsOpenToSubnet"] = True
    recording = run_program(raw, secrets=secrets)
    assert program_problems(recording, baseline, None) == []
    for resource in recording.resources:
        assert MARKER not in resource.plain_text(), resource.urn
    for command in recording.of_type(COMMAND):
        for key in ("create", "update", "delete"):
            assert MARKER not in json.dumps(command.inputs.get(key)), f"{command.urn}.{key} carries a secret"
    assert recording.named("mirror-credentials").inputs["stdin"]  # the credentials went, on stdin, as a secret
