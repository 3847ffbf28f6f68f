"""A hostile stack author against every string field of the schema.

The fields come from the published JSON Schema (`stack_schema()`, what `python -m components schema`
prints): every string value, list item, map key and map value, found by walking it, so a new field is
covered without a new test. Each gets every fragment of a table (one that tries to run `netstabpwn`
in a shell, add a YAML key or list item, close a here-document or an nft string, or split a line),
and random strings of shell, YAML and nft metacharacters around the marker from hypothesis
(derandomized: CI sees the same cases every run), put before, inside, after or instead of the
field's valid value. A value is either refused by `parse_config` (one `key.path: ...` line per
problem) or rendered; then every rendered script that changed is parsed with shfmt (POSIX; `sh -c`
bodies and quoted here-documents too), every YAML with PyYAML (the files a user-data writes too),
every nft rule set with `nft -c -f` (root), and no payload may run, expand, make a YAML key or list
item of its own, or break a rule set; no rendered file name may hold a control character.

Tried per run: 67 string fields x (23 fragments x 4 places + 8 hypothesis examples) = 6,700 field x
payload cases (a test below pins the field count from both sides, so a new field raises it
knowingly); 16 of the table's cases are accepted (text in a URL path, a key comment word, a warm-up
group name) and rendered, the rest refused; the whole file takes about 20 s of CPU. The program's
remote command texts get the same checks under mocks: tests/program/test_hostile_program.py.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.config import ConfigError, parse_config
from components.config.schema import stack_schema
from components.render.gateway_measure import measure_script, sweep_targets
from components.render.quote import word
from tests.render.files import files_of
from tests.render.hostile import MARKER, file_problems, shell_problems

KEY = object()  # a path step: the first key of a mapping (the slot is the key itself when last)
Path = tuple[Any, ...]

# What a field without a default holds in the full stack (homelab plus these): every optional string
# field is present, so it reaches the renderers. A new field without a default needs one here.
EXAMPLES: dict[str, Any] = {
    "image.fileName": "noble-server-cloudimg-amd64.img",
    "gateway.ipv6Subnet": "fd00:27::/64",
    "secrets.store.project": "netstab",
    "secrets.store.config": "prd",
    "secrets.gate.manifests[0]": "manifests/app.yaml",
    "validation.vantagePoints[0]": "cp1",
    "mirror.upstreams[0].aliases[0]": "index.docker.io",
    "monitoring.endpoints[0]": "https://ghcr.io/v2/",
    "monitoring.images[0]": "ghcr.io/fluxcd/helm-controller:v1.5.1",
    "monitoring.proxmoxAddress": "10.27.27.2",
    "k3s.vip": "10.27.27.10",
    "k3s.vipInterface": "eth0",
    "nodes[0].proxmoxNode": "pve",
    "proxmox.nodes[0]": {"name": "pve", "address": "pve.lan",
                         "sshHostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPveHostKeyReplaceWithYourSshKeyscanOutput00 root@pve"},
}

FRAGMENTS = [
    f"$({MARKER})", f"`{MARKER}`", f";{MARKER};", f"'$({MARKER})'", f'"$({MARKER})"', f"\n{MARKER}\n", f"${{{MARKER}}}",
    f"&&{MARKER}", f"|{MARKER}", f" {MARKER}", f"\n- {MARKER}\n", f"\n{MARKER}: x", f'": {MARKER}', f'" ; {MARKER} ; "',
    f"\nNETSTAB_GUEST\n{MARKER}\n", f"\nNETSTAB_REGISTRIES\n{MARKER}: x\n", f"\nNETSTAB_NETPLAN\n{MARKER}\n", f"\r\n{MARKER}",
    f"}}\n{MARKER}\n{{", f"#{MARKER}", f"\\\n{MARKER}", f"\x00{MARKER}", "\n",
]
METACHARACTERS = " \t\n\r'\"$`;&|(){}<>\\#*?[]~=%:,-"
RANDOM_PAYLOADS = st.text(alphabet=METACHARACTERS, min_size=1, max_size=5).map(lambda chars: f"{chars}{MARKER}{chars[::-1]}")
PLACES = ("before", "inside", "after", "instead")
EXAMPLES_PER_FIELD = 8


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = {**schema["$defs"][node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _alternatives(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(schema, node)
    if "anyOf" in node and "type" not in node:
        return [a for alt in node["anyOf"] if alt.get("type") != "null" for a in _alternatives(schema, alt)]
    return [node]


def _name(path: Path) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else "[*]" if step is KEY else f".{step}" if text else step
    return text


def _fill(schema: dict[str, Any], node: dict[str, Any], holder: Any, step: Any, path: Path, slots: list[Path], missing: list[str]) -> None:
    """Walk `node` (the schema of holder[step]), giving absent values their default or example; record string slots."""
    present = step < len(holder) if isinstance(holder, list) else step in holder
    if not present:
        example = EXAMPLES.get(_name(path), node.get("default"))
        if example is None:
            kinds = _alternatives(schema, node)
            if any(k.get("type") == "object" and "properties" in k for k in kinds):
                example = {}
            elif any("enum" in k for k in kinds):
                example = next(k["enum"][0] for k in kinds if "enum" in k)
            else:
                if any(k.get("type") in ("string", "array", "object") for k in kinds):
                    missing.append(_name(path))  # numbers and booleans hold no text
                return
        if isinstance(holder, list):
            holder.append(copy.deepcopy(example))
        else:
            holder[step] = copy.deepcopy(example)
    value = holder[step]
    for kind in _alternatives(schema, node):
        if kind.get("type") == "string" or any(isinstance(v, str) for v in kind.get("enum", [])) or isinstance(kind.get("const"), str):
            if isinstance(value, str) and path not in slots:
                slots.append(path)
        elif kind.get("type") == "array" and isinstance(value, list):
            _fill(schema, kind.get("items", {}), value, 0, (*path, 0), slots, missing)
        elif kind.get("type") == "object" and isinstance(value, dict):
            for key, sub in kind.get("properties", {}).items():
                _fill(schema, sub, value, key, (*path, key), slots, missing)
            extra = kind.get("additionalProperties")
            if isinstance(extra, dict):
                if not value:
                    missing.append(_name((*path, KEY)))
                    continue
                first = next(iter(value))
                slots.append((*path, KEY))
                _fill(schema, extra, value, first, (*path, first), slots, missing)


def full_stack(homelab_raw: dict[str, Any]) -> tuple[dict[str, Any], list[Path], list[str]]:
    """The homelab stack with every optional string field present, and the path of each string slot."""
    schema = stack_schema()
    raw = copy.deepcopy(homelab_raw)
    slots: list[Path] = []
    missing: list[str] = []
    for key, node in schema["properties"]["config"]["properties"].items():
        section = key.split(":", 1)[1]
        if "secure" in node.get("properties", {}):
            continue  # secrets: their values are tested in test_hostile_program.py
        _fill(schema, node, raw, section, (section,), slots, missing)
    return raw, slots, missing


def _homelab() -> dict[str, Any]:
    from components.stack import read_stack_file, stack_file

    raw, _ = read_stack_file(stack_file("homelab"))
    return raw


FULL, SLOTS, MISSING = full_stack(_homelab())
BASELINE = files_of(parse_config(FULL), path_mtu=1400)


def with_payload(raw: dict[str, Any], slot: Path, payload: str, place: str) -> tuple[dict[str, Any], str]:
    """A copy of `raw` whose slot holds the payload; and the value it now holds."""
    raw = copy.deepcopy(raw)
    holder: Any = raw
    for step in slot[:-1]:
        holder = holder[next(iter(holder))] if step is KEY else holder[step]
    last = slot[-1]
    old = next(iter(holder)) if last is KEY else holder[last]
    middle = len(old) // 2
    value = {"before": payload + old, "inside": old[:middle] + payload + old[middle:], "after": old + payload, "instead": payload}[place]
    if last is KEY:
        entries = list(holder.items())
        holder.clear()
        holder.update({value if i == 0 else k: v for i, (k, v) in enumerate(entries)})
    else:
        holder[last] = value
    return raw, value


def render_problems(raw: dict[str, Any], value: str) -> list[str]:
    """Refused with one line per problem, or rendered with no payload loose in any file."""
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        return [f"refusal is not one line per problem: {p!r}" for p in exc.problems if "\n" in p or not p.strip()]
    problems: list[str] = []
    for name, text in files_of(config, path_mtu=1400).items():
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
            problems.append(f"file name {name!r} holds a control character")
        if BASELINE.get(name) != text:
            problems += file_problems(name, text, value)
    return problems


def test_every_string_field_of_the_schema_is_found_and_filled():
    assert not MISSING, f"give these fields an example in EXAMPLES: {MISSING}"
    names = [_name(s) for s in SLOTS]
    # pinned from both sides: a field the walk loses, or a new one, changes the count in the docstring
    assert len(SLOTS) == 67, names
    for expected in ("validation.endpoints[0]", "ssh.publicKeys[0]", "proxmox.node", "gateway.lanInterface", "image.fileName",
                     "secrets.externalSecrets[0].data[*]", "mirror.warmup.groups[*]", "secrets.gate.manifests[0]", "gateway.hostKey"):
        assert expected in names


def test_the_full_stack_renders_clean_to_every_checker():
    """The checkers pass the unmodified render (every script parses, every YAML loads, every nft rule
    set passes `nft -c`), so a problem below is the payload's."""
    assert [p for name, text in BASELINE.items() for p in file_problems(name, text)] == []
    assert "mirror/firewall.nft" in BASELINE and "gateway/apply.sh" in BASELINE and "gateway/measure.sh" in BASELINE


@pytest.mark.parametrize("slot", SLOTS, ids=_name)
def test_every_hostile_fragment_in_any_string_field_is_refused_or_inert(slot):
    """The fragment table, whole: every fragment at every place."""
    for payload in FRAGMENTS:
        for place in PLACES:
            raw, value = with_payload(FULL, slot, payload, place)
            assert render_problems(raw, value) == [], (payload, place)


@pytest.mark.parametrize("slot", SLOTS, ids=_name)
@settings(max_examples=EXAMPLES_PER_FIELD, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(payload=RANDOM_PAYLOADS, place=st.sampled_from(PLACES))
def test_a_random_hostile_value_in_any_string_field_is_refused_or_inert(slot, payload, place):
    raw, value = with_payload(FULL, slot, payload, place)
    assert render_problems(raw, value) == []


def test_the_checker_flags_the_old_measure_script_quoting():
    """Counterfactual: before issue 18 the redirect target was `"$work/out/{shlex.quote(t)}.json"`, a
    single-quoted word inside double quotes, where `$(...)` runs; the checker must see it."""
    endpoints = [f"https://ghcr.io$({MARKER})/v2/"]  # what the old https URL grammar accepted
    old_lines = "\n".join(f'python3 "$work/agent.py" mss-sweep {word(t)} --json --quiet > "$work/out/{word(t)}.json" &'
                          for t in sweep_targets(endpoints))
    assert any("expands (CmdSubst)" in p for p in shell_problems(old_lines, "old measure.sh"))
    assert render_problems(copy.deepcopy(FULL) | {"validation": {**FULL["validation"], "endpoints": endpoints}}, endpoints[0]) == []
    from components.config import NetworkConfig

    network = NetworkConfig.model_validate(FULL["network"])
    assert shell_problems(measure_script(network, endpoints, "homelab-x", reuse=False), "new measure.sh") == []


def test_the_checker_flags_a_payload_in_each_language():
    """The checks can fail: a command, an expansion, a YAML key, a split YAML item, a broken nft rule set."""
    assert shell_problems(f"echo ok; {MARKER}\n", "s")
    assert shell_problems(f'echo "$({MARKER})"\n', "s")
    assert shell_problems(f"sh -c 'echo ok; {MARKER}'\n", "s")
    assert shell_problems(f"cat <<'NETSTAB_GUEST'\necho ok\n{MARKER}\nNETSTAB_GUEST\n", "s")
    assert file_problems("a.yaml", f"a: x\n{MARKER}: y\n", "x")
    assert file_problems("a.yaml", f"a:\n- x\n- {MARKER}\n", f"x\n- {MARKER}")
    if os.geteuid() == 0:
        assert file_problems("a.nft", f'table inet t {{\n chain c {{\n  tcp dport 1 drop comment "x" ; {MARKER}\n }}\n}}\n')
    assert not file_problems("a.yaml", f"a: 'x {MARKER}'\n", f"x {MARKER}")


def test_a_refusal_names_its_key_path_on_one_line():
    raw, _ = with_payload(FULL, ("validation", "endpoints", 0), f"$({MARKER})", "inside")
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert [p.split(":", 1)[0] for p in caught.value.problems] == ["validation.endpoints"]

