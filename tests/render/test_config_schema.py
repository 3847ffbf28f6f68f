"""The stack file's JSON Schema and config reference: generated from the models, committed, and usable."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.config.schema import config_reference, schema_text

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "stacks/Pulumi.homelab.yaml"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((ROOT / "stacks/netstab.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one():
    assert (ROOT / "stacks/netstab.schema.json").read_text() == schema_text(), "run `make schema`"


def test_the_committed_reference_is_the_generated_one():
    assert (ROOT / "stacks/README.md").read_text() == config_reference(), "run `make schema`"


def test_every_stack_file_points_editors_at_the_schema():
    for path in (ROOT / "stacks").glob("Pulumi.*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=netstab.schema.json\n"), path.name


def test_the_homelab_stack_file_matches_the_schema(validator):
    assert list(validator.iter_errors(yaml.safe_load(STACK.read_text()))) == []


@pytest.mark.parametrize("edit,where", [
    pytest.param(lambda c: c["netstab:network"].update(mut=1400), ["config", "netstab:network"], id="unknown_key"),
    pytest.param(lambda c: c["netstab:network"].update(mtu=9216), ["config", "netstab:network", "mtu"], id="mtu_out_of_range"),
    pytest.param(lambda c: c["netstab:nodes"][0].update(role="worker"), ["config", "netstab:nodes", 0, "role"], id="bad_role"),
    pytest.param(lambda c: c.update({"netstab:k3sToken": "hunter2"}), ["config", "netstab:k3sToken"], id="secret_in_plain_text"),
    pytest.param(lambda c: c.update({"netstab:netwrok": {}}), ["config"], id="unknown_section"),
    pytest.param(lambda c: c.pop("netstab:nodes"), ["config"], id="missing_section"),
])
def test_the_schema_flags_what_validation_refuses(validator, edit, where):
    document = yaml.safe_load(STACK.read_text())
    edit(document["config"])
    assert [list(e.absolute_path) for e in validator.iter_errors(document)] == [where]


def test_other_namespaces_are_left_alone(validator):
    document = yaml.safe_load(STACK.read_text())
    document["config"]["proxmoxve:endpoint"] = "https://pve.lan:8006/"
    assert list(validator.iter_errors(document)) == []


def test_descriptions_are_the_field_docs():
    network = json.loads(schema_text())["$defs"]["NetworkConfig"]
    assert network["properties"]["mtu"]["description"] == "MTU of every NIC and guest interface (the plan's 1400)."
    assert network["description"] == "The VM subnet every node and the mirror live on."


def test_the_reference_has_one_row_per_key_with_type_default_and_meaning():
    rows = {line.split(" | ")[0].strip("| `"): line for line in config_reference().splitlines() if line.startswith("| `")}
    assert rows["network.mtu"] == "| `network.mtu` | integer in 576..9000 | required | MTU of every NIC and guest interface (the plan's 1400). |"
    assert rows["k3s.readyTimeoutSeconds"] == "| `k3s.readyTimeoutSeconds` | integer in 30..7200 | `600` | How long to wait for every node Ready. |"
    assert rows["nodes[].role"] == "| `nodes[].role` | one of server, agent | required | server (the control plane: one, or an odd number >= 3 behind k3s.vip) or agent. |"
    assert rows["netstab:dopplerToken"] == ("| `netstab:dopplerToken` | when secrets.enabled | "
                                            "Doppler service token the ClusterSecretStore reads |")


def test_every_table_line_of_the_reference_is_a_whole_row():
    """A field doc wrapped over lines must not split its row."""
    lines = config_reference().splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        if before.startswith("| `"):
            assert before.endswith(" |"), before
            assert line.startswith("|") or not line.strip() or line.startswith("#"), f"a row spills over: {line!r}"
