"""What a newcomer stumbled on (issue 23, section 3), each pinned: the schema and validation agree on types, placeholders are
named, hints never put a secret on a command line, editors find the schema, and the repo's small conveniences exist."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.config import ConfigError, parse_config
from components.config.schema import config_reference, stack_schema
from components.stack import read_stack_file, stack_file

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = yaml.safe_load((ROOT / "stacks/Pulumi.homelab.yaml").read_text())


def leaves(value: Any, where: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*where, i))
    else:
        yield where, value


SCALARS = [(where, value) for where, value in leaves(DOCUMENT["config"]) if isinstance(value, int | bool)]


def quoted(where: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(DOCUMENT))
    target = document["config"]
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = str(value).lower() if isinstance(value, bool) else str(value)
    return document


def test_every_number_and_boolean_of_the_stack_is_checked():
    assert len(SCALARS) >= 20 and any(isinstance(v, bool) for _, v in SCALARS)


@pytest.mark.parametrize("where,value", SCALARS, ids=lambda x: ".".join(map(str, x)) if isinstance(x, tuple) else str(x))
def test_a_quoted_number_or_boolean_is_refused_by_the_schema_and_by_validation_alike(where, value):
    """The schema is the contract editors use: what it refuses, validation refuses, at the same key."""
    document = quoted(where, value)
    schema_errors = [list(e.absolute_path) for e in jsonschema.Draft202012Validator(stack_schema()).iter_errors(document)]
    assert schema_errors and all(path[:2] == ["config", where[0]] for path in schema_errors)
    raw = {key.partition(":")[2]: item for key, item in document["config"].items()}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    key = where[0].partition(":")[2]
    dotted = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[1:])
    assert [p for p in caught.value.problems if p.startswith(dotted + ":")], caught.value.problems
    assert all("quoted, it is text" in p for p in caught.value.problems)


def test_the_unedited_stack_passes_both():
    assert list(jsonschema.Draft202012Validator(stack_schema()).iter_errors(DOCUMENT)) == []
    raw, secure = read_stack_file(stack_file("homelab"))
    parse_config(raw, secure)


# `pulumi config set --secret KEY VALUE`: the value on a command line lands in shell history and `ps`.
# After the key: a word (not `< file`, a `# comment`, a pipe or a parenthesis), or a quoted value on the next line.
SECRET_ON_THE_COMMAND_LINE = re.compile(r"config set --secret +[\w:<>.-]+(?: +(?!< |#|\||\(|\\)\S|\n[ \t]*['\"{])")


def test_the_pattern_finds_a_value_on_the_command_line():
    for bad in ["pulumi config set --secret netstab:k3sToken <value>", "pulumi config set --secret KEY VALUE",
                "pulumi config set --secret netstab:dopplerToken dp.st.xxx", "pulumi config set --secret netstab:<key> <value>",
                "`pulumi config set --secret netstab:mirrorCredentials\n  '{\"docker.io\": {}}'`"]:
        assert SECRET_ON_THE_COMMAND_LINE.search(bad), bad
    for good in ["pulumi config set --secret netstab:k3sToken", "pulumi config set --secret netstab:sshPrivateKey < ~/.ssh/id_ed25519",
                 "openssl rand -hex 32 | pulumi config set --secret netstab:k3sToken   # prompts",
                 "pulumi config set --secret netstab:k3sToken (it prompts for the value)",
                 "`pulumi config set --secret netstab:k3sToken`,\n  then `pulumi up`"]:
        assert not SECRET_ON_THE_COMMAND_LINE.search(good), good


def _shipped_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in listed if p.endswith((".py", ".md", ".yaml", ".json", ".sh")) and not p.startswith("tests/")]


def test_no_hint_anywhere_puts_a_secret_on_the_command_line():
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _shipped_text_files() if p.exists()
             for m in SECRET_ON_THE_COMMAND_LINE.finditer(p.read_text())]
    assert found == []


def test_no_rendered_hint_puts_a_secret_on_the_command_line(tmp_path):
    from components.config import SECRETS, secret_hint

    hints = [secret_hint(key) for key in SECRETS] + [config_reference(), json.dumps(stack_schema())]
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.plain.yaml").write_text((ROOT / "stacks/Pulumi.homelab.yaml").read_text() + "  netstab:k3sToken: hunter2\n")
    for stack in ("homelab", "plain"):
        result = subprocess.run([sys.executable, "-m", "components", "render", stack, "--out", str(tmp_path / stack),
                                 "--stacks-dir", str(stacks if stack == "plain" else ROOT / "stacks")], cwd=ROOT, capture_output=True, text=True, timeout=60)
        hints += [result.stdout, result.stderr]
    assert "config set --secret" in "".join(hints)
    assert [h for h in hints if SECRET_ON_THE_COMMAND_LINE.search(h)] == []


def test_render_keeps_working_on_placeholders_and_warns_listing_each(tmp_path):
    result = subprocess.run([sys.executable, "-m", "components", "render", "homelab", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "netstab: WARNING: `pulumi up` refuses this stack: still the example's placeholders (replace each with the real key: "
        "ssh-keyscan -t ed25519 HOST for a host key, your own public key for ssh.publicKeys): proxmox.sshHostKey, ssh.publicKeys[0], "
        "gateway.hostKey"]


def test_render_of_a_stack_with_real_keys_gives_no_placeholder_warning(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    (stacks / "Pulumi.real.yaml").write_text((ROOT / "stacks/Pulumi.homelab.yaml").read_text().replace("ReplaceWith", "RealKeyHere"))
    result = subprocess.run([sys.executable, "-m", "components", "render", "real", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")


def test_vscode_maps_the_schema_onto_every_stack_file():
    settings = json.loads((ROOT / ".vscode/settings.json").read_text())
    assert settings["yaml.schemas"] == {"./stacks/netstab.schema.json": ["stacks/Pulumi.*.yaml"]}


def test_the_stack_reference_says_both_ways_to_reach_the_schema():
    text = config_reference()
    assert "# yaml-language-server: $schema=netstab.schema.json" in text and ".vscode/settings.json" in text
    assert "encryptionsalt" in text  # why the modeline alone is not enough


def test_the_validation_report_is_ignored_by_git():
    assert "/validation-report/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_help_lists_every_target_with_one_line():
    makefile = (ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert listed == phony and "help" in listed
    assert all(len(line.split(None, 1)) == 2 for line in result.stdout.splitlines() if line.startswith("  "))


def test_the_minimum_pulumi_cli_is_stated_once_and_is_what_the_program_checks():
    from components.program import MIN_PULUMI_CLI

    major_minor = ".".join(MIN_PULUMI_CLI.split(".")[:2])
    stated = {p.name: re.findall(r"Pulumi CLI (\d+\.\d+) or newer", p.read_text()) for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]}
    assert {name: found for name, found in stated.items() if found} == {"prerequisites.md": [major_minor]}
    assert "3.272" not in (ROOT / "docs/prerequisites.md").read_text() + (ROOT / "docs/lifecycle.md").read_text()


def test_the_readme_lab_sample_is_the_labs_line_format_without_figures_that_would_drift():
    """Figures live in bench/RESULTS.md (measured); the README shows the line's shape and links there."""
    from lab.__main__ import summary_line
    from lab.scenarios import Outcome

    readme = (ROOT / "README.md").read_text()
    sample = re.search(r"\n```\n(lab: blackhole: .*?)\n```", readme, re.S)
    assert sample and "bench/RESULTS.md" in readme[sample.start() - 300 : sample.start()]
    outcomes = [Outcome("blackhole", True, "pmtu-black-hole", [], {"first probe to diagnosis": 1.0, "first probe to verified fix": 2.0,
                                                                    "total": 3.0}, Path("lab-report/blackhole")),
                Outcome("mirror", True, "cached pulls and fallback behave", [], {"total": 4.0}, Path("lab-report/mirror"))]
    assert sample.group(1).splitlines() == [re.sub(r"\d+\.\ds", "N.Ns", summary_line(o)) for o in outcomes]


def test_the_readme_asks_for_the_k3s_token_before_the_first_up():
    line = next(line for line in (ROOT / "README.md").read_text().splitlines() if "--secret netstab:k3sToken" in line)
    assert "after the first up" not in line and "first up" in line


@pytest.mark.parametrize("key,flagged", [("ssh", True), ("region", True), ("netstab:shh", True), ("netstab:ssh", False), ("aws:region", False)])
def test_the_schema_flags_a_key_without_its_namespace_as_validation_does(key, flagged):
    document = json.loads(json.dumps(DOCUMENT))
    document["config"][key] = document["config"].pop("netstab:ssh") if key.endswith(("ssh", "shh")) else "eu"
    errors = [e for e in jsonschema.Draft202012Validator(stack_schema()).iter_errors(document) if "propertyNames" in list(e.schema_path)]
    assert bool(errors) is flagged
