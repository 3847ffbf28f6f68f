"""Issue 18: one quoting module, grammars matched whole, and every case the hostile-author review found.

The property test over every field is tests/render/test_hostile_config.py; here: the module's
contexts one by one, the guard that keeps quoting in that module, and the review's cases, each
refused at `python -m components render` with exit 2 and one line, or rendered inert.
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from components.config import StackConfig, parse_config
from components.config.base import Section
from components.render import quote
from components.render.mirror import credentials_stdin
from components.render.secrets import doppler_probe_hint
from components.stack import credentials_problems
from tests.conftest import problems_of
from tests.render.hostile import MARKER, shell_problems

ROOT = Path(__file__).resolve().parents[2]
QUOTING_MODULE = ROOT / "components/render/quote.py"
QUOTE_FUNCTIONS = {"word", "words", "in_double_quotes", "heredoc", "yaml_scalar", "nft_string", "file_name", "authorized_key", "for_person"}
# Literal text that makes an f-string shell: a config string interpolated into one must go through quote.py.
SHELL_HINTS = ("#!/bin/sh", "echo ", "$(", "${", "&&", "||", "; then", "sh -c", "sudo ", " > ", "<<", "| ")
HOSTILE = ["", "plain", "it's", 'a "b" c', "$(reboot)", "`id`", "a\nb", "x; rm -rf /", "\\", "${IFS}", "-rf", "*", "é ü", "\t"]


# --- the module, context by context -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_a_word_is_one_word_whose_value_is_the_text(value):
    done = subprocess.run(["sh", "-c", f"printf '%s|' {quote.word(value)} end"], capture_output=True, text=True, check=True)
    assert done.stdout == f"{value}|end|"


@pytest.mark.parametrize("value", HOSTILE)
def test_text_in_double_quotes_stays_that_text(value):
    done = subprocess.run(["sh", "-c", f'printf "%s|" "a{quote.in_double_quotes(value)}b"'], capture_output=True, text=True, check=True)
    assert done.stdout == f"a{value}b|"


def test_a_heredoc_refuses_a_body_that_would_end_it():
    text = quote.heredoc("a $(x)\nb\n", "NETSTAB_T")
    done = subprocess.run(["sh", "-c", f"cat {text}"], capture_output=True, text=True, check=True)
    assert done.stdout == "a $(x)\nb\n"
    with pytest.raises(ValueError, match="delimiter"):
        quote.heredoc(f"a\nNETSTAB_T\n{MARKER}\n", "NETSTAB_T")
    assert quote.heredoc("no newline", "NETSTAB_T").endswith("no newline\nNETSTAB_T\n")


@pytest.mark.parametrize("value", HOSTILE)
def test_a_yaml_scalar_reads_back_as_the_same_text(value):
    assert yaml.safe_load(f"key: {quote.yaml_scalar(value)}\n") == {"key": value}


@pytest.mark.parametrize("value", ['a"b', "a\nb", "a\\b", "a\x00b"])
def test_nft_file_name_and_key_line_refuse_what_their_context_cannot_hold(value):
    with pytest.raises(ValueError):
        quote.nft_string(value)
    with pytest.raises(ValueError):
        quote.authorized_key(value.replace('"', "\n").replace("\\", "\r"))
    assert quote.nft_string("netstab:homelab clamp") == '"netstab:homelab clamp"'


@pytest.mark.parametrize("value", ["", ".", "..", "a/b", "-rf", "worker2\n", "x" * 256])
def test_a_file_name_cannot_leave_its_folder_or_split_a_line(value):
    with pytest.raises(ValueError):
        quote.file_name(value)


def test_a_command_for_a_person_runs_exactly_its_arguments():
    line = quote.for_person("ssh", "u$(touch pwned)@10.0.0.1", "python3 - http")
    assert shlex.split(line) == ["ssh", "u$(touch pwned)@10.0.0.1", "python3 - http"]


# --- the guard: quoting lives in quote.py -------------------------------------------------------------------------


def _holds_str(annotation: typing.Any) -> bool:
    return annotation is str or any(_holds_str(a) for a in typing.get_args(annotation) if not isinstance(a, str | int))


def _string_fields(cls: type[Section], seen: set[type[Section]] | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        for arg in (info.annotation, *typing.get_args(info.annotation)):
            for inner in (arg, *typing.get_args(arg)):
                if isinstance(inner, type) and issubclass(inner, Section) and inner not in seen:
                    seen.add(inner)
                    names |= _string_fields(inner, seen)
        if _holds_str(info.annotation):
            names.add(name)
    return names


STRING_FIELDS = _string_fields(StackConfig)


def quoting_outside_the_module(path: Path, source: str) -> list[str]:
    """shlex outside quote.py, a grammar matched with .match/.search, or a config string field put
    straight into an f-string that holds shell text."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and path != QUOTING_MODULE:
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if "shlex" in modules:
                found.append(f"{path.name}:{node.lineno}: imports shlex (quote with components/render/quote.py)")
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("match", "search")
                and "config" in path.parts):
            found.append(f"{path.name}:{node.lineno}: .{node.func.attr}() on a grammar (use fullmatch: a $ lets a newline through)")
        if isinstance(node, ast.JoinedStr):
            literal = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if not any(hint in literal for hint in SHELL_HINTS):
                continue
            for value in node.values:
                if isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Attribute) and value.value.attr in STRING_FIELDS:
                    found.append(f"{path.name}:{value.lineno}: {ast.unparse(value.value)} in shell text without a quote.py function")
    return found


def component_sources() -> list[Path]:
    return sorted([*ROOT.glob("components/*.py"), *ROOT.glob("components/render/*.py"), *ROOT.glob("components/config/*.py")])


def test_no_quoting_happens_outside_the_quoting_module():
    assert {"name", "user", "version", "registry", "endpoints", "public_keys"} <= STRING_FIELDS
    found = [problem for path in component_sources() for problem in quoting_outside_the_module(path, path.read_text())]
    assert found == []


def test_the_guard_can_fail():
    old = 'import shlex\ndef f(node):\n    return f"""echo "netstab: {node.name}: up"\nsudo -n sh -c {shlex.quote(node.name)}"""\n'
    found = quoting_outside_the_module(ROOT / "components/render/old.py", old)
    assert len(found) == 2 and "imports shlex" in found[0] and "node.name in shell text" in found[1]
    assert quoting_outside_the_module(ROOT / "components/config/old.py", "import re\nre.compile('x').match('y')\n")


# --- the review's cases -------------------------------------------------------------------------------------------


def _set(raw: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        raw = raw[int(key)] if key.isdigit() else raw.setdefault(key, {})
    if last.isdigit():
        raw[int(last)] = value
    else:
        raw[last] = value


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHomelabReplaceWithYourOwnPublicKey0000000 netstab@homelab"
REFUSED = [
    ("validation.endpoints", ["https://ghcr.io$(reboot)/v2/"], "validation.endpoints"),
    ("validation.endpoints", ["https://ghcr.io/v2/'$(reboot)'"], "validation.endpoints"),
    ("ssh.publicKeys", [f"{KEY}\ncommand=\"reboot\" {KEY}"], "ssh.publicKeys"),
    ("ssh.publicKeys", [f"{KEY} x$(reboot)"], "ssh.publicKeys"),
    ("ssh.user", "ubuntu$(reboot)", "ssh.user"),
    ("nodes.2.name", "worker2\n", "nodes[2].name"),
    ("mirror.name", "mirror\n", "mirror.name"),
    ("k3s.version", "v1.33.5+k3s1\n", "k3s.version"),
    ("network.searchDomains", ["lan\n"], "network.searchDomains[0]"),
    ("secrets.externalSecrets.0.name", "rancher-bootstrap\n", "secrets.externalSecrets[0].name"),
    ("secrets.externalSecrets.0.refreshInterval", "1h\n", "secrets.externalSecrets[0].refreshInterval"),
    ("secrets.externalSecrets.0.data", {"RANCHER\nX": "bootstrapPassword"}, "secrets.externalSecrets[0].data"),
    ("secrets.operator.chartVersion", "2.1.0\n", "secrets.operator.chartVersion"),
    ("secrets.store.name", "doppler\n", "secrets.store.name"),
    ("validation.images", ["ghcr.io/fluxcd/helm-controller:v1.5.1\n"], "validation.images"),
    ("proxmox.node", "pve; reboot", "proxmox.node"),
    ("proxmox.vmDatastore", "local-lvm\n", "proxmox.vmDatastore"),
    ("proxmox.snippetsDatastore", "local $(id)", "proxmox.snippetsDatastore"),
    ("proxmox.imageDatastore", "../local", "proxmox.imageDatastore"),
    ("proxmox.sshUser", "root -o ProxyCommand=x", "proxmox.sshUser"),
    ("proxmox.sshHostKey", "ssh-ed25519 AAAAC3Nz root@pve\nssh-ed25519 AAAAC3Nz evil", "proxmox.sshHostKey"),
    ("proxmox.endpoint", "https://user@pve.lan:8006/", "proxmox.endpoint"),
    ("network.bridge", "vmbr0 up", "network.bridge"),
    ("gateway.host", "10.27.27.1; reboot", "gateway.host"),
    ("gateway.user", "root\n", "gateway.user"),
    ("gateway.lanInterface", "vmbr0/../x", "gateway.lanInterface"),
    ("gateway.hostKey", "ssh-ed25519 AAAAC3Nz root@pve `id`", "gateway.hostKey"),
    ("image.fileName", "../noble.img", "image.fileName"),
    ("image.url", "https://cloud-images.ubuntu.com/a b.img", "image.url"),
    ("k3s.installUrl", "https://get.k3s.io/$(id)", "k3s.installUrl"),
]


@pytest.mark.parametrize("dotted,value,key", REFUSED, ids=[f"{d}={v!r}"[:60] for d, v, _ in REFUSED])
def test_each_case_of_the_review_is_refused_on_one_line(homelab_raw, dotted, value, key):
    _set(homelab_raw, dotted, value)
    problems = problems_of(homelab_raw)
    assert len(problems) == 1 and problems[0].startswith(f"{key}: ") and "\n" not in problems[0], problems


def test_the_unchecked_sections_of_the_review_are_refused_on_one_line(homelab_raw):
    homelab_raw["secrets"]["gate"] = {"manifests": ["apps/app.yaml\n"]}
    homelab_raw["secrets"]["store"]["project"] = "netstab'"
    homelab_raw["mirror"]["upstreams"] = [{"registry": "docker.io\n", "port": 5001}]
    homelab_raw["mirror"]["warmup"] = {"groups": {"a\nb": ["ghcr.io/fluxcd/helm-controller:v1.5.1"]}}
    problems = problems_of(homelab_raw)
    assert [p.split(":", 1)[0] for p in problems] == [
        "mirror.upstreams[0].registry", "mirror.warmup.groups", "secrets.store.project", "secrets.gate.manifests"], problems
    assert all("\n" not in p for p in problems)


def test_an_image_url_whose_last_segment_is_no_file_name_asks_for_one(homelab_raw):
    homelab_raw["image"]["url"] = "https://example.org/noble%20server.img"
    assert problems_of(homelab_raw) == ["image.fileName: the URL's last path segment 'noble%20server.img' is not a file name; "
                                        "set image.fileName (such as noble.img)"]
    homelab_raw["image"]["fileName"] = "noble.img"
    assert parse_config(homelab_raw).image.file_name == "noble.img"


def test_the_doppler_hint_is_one_command_that_runs_only_ssh():
    hint = doppler_probe_hint("u$(touch pwned)", "10.27.27.11")
    assert shell_problems(hint.replace("pwned", MARKER).replace("touch ", ""), "hint") == []
    assert shlex.split(hint.removesuffix(" < probes/agent.py"))[:2] == ["ssh", "u$(touch pwned)@10.27.27.11"]
    # the pre-issue-18 hint, for contrast: the same user name runs on the operator's machine
    old = f"ssh u$({MARKER})@10.27.27.11 'python3 - http https://api.doppler.com/v3/projects --repeat 10' < probes/agent.py"
    assert shell_problems(old, "old hint")


def test_mirror_credentials_keyed_by_anything_but_a_registry_are_refused_without_quoting():
    value = json.dumps({"docker.io\nquay.io": {"username": "u", "password": "SECRET-CANARY"}})
    problems = credentials_problems(value)
    assert problems == ['entry 1 is not keyed by a registry host name such as docker.io; expected {"<registry>": {"username": "...", '
                        '"password": "..."}}']
    with pytest.raises(ValueError, match="entry 1 is not keyed") as caught:
        credentials_stdin(value)
    assert "SECRET-CANARY" not in str(caught.value) and "quay" not in str(caught.value)
    assert credentials_stdin(json.dumps({"docker.io": {"username": "u", "password": "p w\nx"}})).count("\n") == 1


def test_render_refuses_the_measure_payload_with_exit_2_and_one_line(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = (ROOT / "stacks/Pulumi.homelab.yaml").read_text()
    text += "  netstab:validation:\n    endpoints: ['https://ghcr.io$(reboot)/v2/']\n"
    (stacks / "Pulumi.hostile.yaml").write_text(text)
    done = subprocess.run([sys.executable, "-m", "components", "render", "hostile", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "validation.endpoints" in line]
    assert len(lines) == 1 and "is not a list of https:// URLs" in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_a_key_line_refused_for_its_comment_or_a_second_line_says_so(homelab_raw):
    homelab_raw["ssh"]["publicKeys"] = [f"{KEY} (work laptop)"]
    homelab_raw["gateway"]["hostKey"] = "ssh-ed25519 AAAAC3Nz root@pve\nssh-ed25519 AAAAC3Nz evil"
    problems = problems_of(homelab_raw)
    assert len(problems) == 2 and all(p.endswith("(one line; its comment only words of letters, digits and @ . _ + = : , / -)")
                                      for p in problems), problems
