"""Render once: every script the program runs over SSH is a file of the offline render, and no
component imports a renderer (they receive `Artifacts`)."""

from __future__ import annotations

import ast
import json
import shlex
from pathlib import Path

from components.config import parse_config
from components.render.cloudinit import HOST_KEY_PRIVATE, HOST_KEY_PUBLIC
from components.sdkvalues import unwrap
from tests.conftest import COMMAND, SNIPPET
from tests.program.harness import run_program, with_stand_ins
from tests.render.files import files_of

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
# What a component may take from components.render: the Artifacts types, the command wrappers, and
# transforms of runtime values that cannot be rendered ahead (a secret, a fetched kubeconfig).
ALLOWED = {
    "components.render.bundle": None,
    "components.render.shell": None,
    "components.render.mirror": {"credentials_stdin"},
    "components.render.k3s": {"rewrite_kubeconfig"},
    "components.render.cloudinit": {"install_host_key"},
    "components.render.gateway_measure": {"measured_path_mtu", "MeasureError"},
    "components.render.secrets": {"TOKEN_KEY"},
}


def _script(command_text: str) -> str:
    """`sudo -n sh -c '<script>'` -> the script."""
    words = shlex.split(command_text)
    assert words[-3:-1] == ["sh", "-c"], command_text[:80]
    return words[-1]


def test_every_remote_script_and_snippet_is_a_rendered_file(homelab_raw):
    recording = run_program(homelab_raw)
    # the harness runs stack "test", and its gateway measurement finds a clean path: the node MTU, 1400
    rendered = set(files_of(parse_config(with_stand_ins(homelab_raw)), stack="test", path_mtu=1400).values())
    commands = recording.of_type(COMMAND)
    assert len(commands) > 10
    for cmd in commands:
        for field in ("create", "delete"):
            if cmd.inputs.get(field):
                assert _script(cmd.inputs[field]) in rendered, f"{cmd.urn} {field} runs a script that `render` does not write"
    for snippet in recording.of_type(SNIPPET):
        data = unwrap(snippet.inputs["sourceRaw"]["data"])
        host = snippet.inputs["sourceRaw"]["fileName"].rsplit("-", 2)[0]
        # user-data: the rendered text with the VM's generated host key in place of its markers
        data = data.replace(json.dumps(f"PRIVATE-HOST-KEY-{host}"), HOST_KEY_PRIVATE).replace(json.dumps(f"ssh-ed25519 AAAAC3Nz {host}"),
                                                                                           HOST_KEY_PUBLIC)
        assert data in rendered, f"{snippet.urn} uploads text that `render` does not write"


def test_components_import_no_renderer():
    for path in sorted(p for p in COMPONENTS.glob("*.py") if p.name != "__main__.py"):  # the CLI renders
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components.render"):
                assert node.module in ALLOWED, f"{path.name} imports {node.module}: components take rendered Artifacts"
                allowed = ALLOWED[node.module]
                names = {alias.name for alias in node.names}
                assert allowed is None or names <= allowed, f"{path.name} imports {names - (allowed or set())} from {node.module}"
            if isinstance(node, ast.ImportFrom) and node.module == "components" and any(a.name == "render" for a in node.names):
                raise AssertionError(f"{path.name} imports the render package")
