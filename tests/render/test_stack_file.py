"""Broken stack files, as the YAML reaches netstab: each refused with one exact line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import ConfigError
from components.stack import load_stack_file

HOMELAB = (Path(__file__).resolve().parents[2] / "stacks/Pulumi.homelab.yaml").read_text()


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return lines[nth - 1]


def appended(extra: str) -> str:
    return HOMELAB + extra


DUPLICATE_SECTION = appended("  netstab:k3s:\n    version: v1.33.5+k3s1\n")
DUPLICATE_NESTED = HOMELAB.replace("    mtu: 1400\n", "    mtu: 1400\n    mtu: 9000\n")

# (file content, the problem lines it must produce; {path} is the stack file)
BROKEN_FILES = [
    pytest.param(appended("  yes: true\n"),
                 ["{path}: config key True is not text (YAML reads yes/no/on/off as booleans and bare numbers as numbers); "
                  "stack keys are netstab:<section>"], id="boolean_top_level_key"),
    pytest.param(appended("  1400: mtu\n"),
                 ["{path}: config key 1400 is not text (YAML reads yes/no/on/off as booleans and bare numbers as numbers); "
                  "stack keys are netstab:<section>"], id="numeric_top_level_key"),
    pytest.param(HOMELAB.encode("utf-16"), ["{path}: is not UTF-8 text (undecodable byte at offset 0); save it as UTF-8"], id="utf16_file"),
    pytest.param(("# café\n" + HOMELAB).encode("latin-1"), ["{path}: is not UTF-8 text (undecodable byte at offset 5); save it as UTF-8"],
                 id="latin1_file"),
    pytest.param(DUPLICATE_SECTION,
                 [f"{{path}}: line {_line_of(DUPLICATE_SECTION, 'netstab:k3s:', 2)}: key 'netstab:k3s' is already on line "
                  f"{_line_of(DUPLICATE_SECTION, 'netstab:k3s:')} of the same mapping (YAML would keep only the last); keep one"],
                 id="duplicate_section"),
    pytest.param(DUPLICATE_NESTED,
                 [f"{{path}}: line {_line_of(DUPLICATE_NESTED, 'mtu: 9000')}: key 'mtu' is already on line "
                  f"{_line_of(DUPLICATE_NESTED, 'mtu: 1400')} of the same mapping (YAML would keep only the last); keep one"],
                 id="duplicate_nested_key"),
    # a section in the wrong namespace is named once, and checked where it was meant to be (no "missing required key")
    pytest.param(HOMELAB.replace("netstab:k3s:", "netsatb:k3s:"),
                 ["netsatb:k3s: the namespace 'netsatb' looks like a misspelling of 'netstab'; rename the key netstab:k3s"],
                 id="misspelt_namespace"),
    pytest.param(HOMELAB.replace("netstab:k3s:", "Netstab:k3s:"),
                 ["Netstab:k3s: the namespace 'Netstab' looks like a misspelling of 'netstab'; rename the key netstab:k3s"],
                 id="capitalised_namespace"),
    pytest.param(HOMELAB.replace("netstab:ssh:", "ssh:"),
                 ["ssh: has no namespace, and Pulumi refuses a stack file with such a key (it reads <namespace>:<key>); "
                  "rename the key netstab:ssh"], id="no_namespace"),
    pytest.param(HOMELAB.replace("netstab:ssh:\n", "ssh:\n    shell: bash\n"),
                 ["ssh: has no namespace, and Pulumi refuses a stack file with such a key (it reads <namespace>:<key>); "
                  "rename the key netstab:ssh", "ssh.shell: unknown key; expected one of: user, publicKeys"], id="no_namespace_and_a_mistake_inside"),
    pytest.param(appended("  ssh:\n    user: ubuntu\n"),
                 ["ssh: has no namespace, and Pulumi refuses a stack file with such a key (it reads <namespace>:<key>); "
                  "netstab:ssh is set too: keep that one and remove this"], id="no_namespace_beside_the_right_one"),
    pytest.param(appended("  region: eu\n"),
                 ["region: has no namespace, and Pulumi refuses a stack file with such a key (it reads <namespace>:<key>); "
                  "stack keys are netstab:<section>, one of: proxmox, network, image, ssh, k3s, nodes, gateway, mirror, secrets, validation, monitoring"],
                 id="unknown_key_without_namespace"),
    pytest.param("config: [netstab:network]\n", ["{path}: expected a top-level 'config:' mapping"], id="config_not_a_mapping"),
    # without its `config:` wrapper: one line saying so, not one "missing required key" per section
    pytest.param(HOMELAB.replace("config:\n", "").replace("\n  ", "\n"),
                 ["{path}: netstab:proxmox, netstab:network, netstab:image, netstab:ssh, netstab:k3s, netstab:nodes, netstab:gateway, "
                  "netstab:mirror, netstab:secrets, netstab:monitoring sit at the top level; put them under a top-level `config:` line, indented"],
                 id="no_config_wrapper"),
    pytest.param("# yaml-language-server: $schema=netstab.schema.json\n",
                 ["{path}: is empty; a stack file holds its settings under a top-level `config:` mapping, each section a "
                  "`netstab:<section>` key under it (stacks/README.md)"], id="empty_file"),
    pytest.param("encryptionsalt: v1:abc\nconfg:\n  netstab:k3s: {}\n",
                 ["{path}: has no top-level `config:` (found: encryptionsalt, confg); a stack file holds its settings under a "
                  "top-level `config:` mapping, each section a `netstab:<section>` key under it (stacks/README.md)"], id="config_misspelt"),
]


@pytest.mark.parametrize("content,expected", BROKEN_FILES)
def test_a_broken_stack_file_is_refused_with_every_problem(tmp_path, content, expected):
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError) as caught:
        load_stack_file(path)
    assert caught.value.problems == [line.format(path=path) for line in expected]


def test_other_namespaces_are_left_to_their_programs(tmp_path):
    path = tmp_path / "Pulumi.ok.yaml"
    path.write_text(HOMELAB + "  proxmoxve:endpoint: https://pve.lan:8006/\n  pulumi:tags: {team: lab}\n")
    assert load_stack_file(path).network.mtu == 1400


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "Pulumi.merge.yaml"
    text = HOMELAB.replace("  netstab:k3s:\n    version: v1.33.5+k3s1\n",
                           "  netstab:k3s:\n    <<: &k3s {version: v1.30.0+k3s1}\n    version: v1.33.5+k3s1\n")
    path.write_text(text)
    assert load_stack_file(path).k3s.version == "v1.33.5+k3s1"
