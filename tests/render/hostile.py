"""Checkers for rendered text that may carry a hostile config value: does a payload become a command,
a YAML key or list item of its own, or a broken nft rule set?

Shell is parsed by shfmt (PyPI shfmt-py, pinned in requirements-dev.txt; `--to-json` gives the
full syntax tree, POSIX dialect), `sh -c` bodies and quoted here-documents recursively; YAML by
PyYAML; nft by `nft -c -f` (root). A checker returns the problems it found, each naming where.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

MARKER = "netstabpwn"  # the command every shell payload tries to run, the key every YAML payload tries to add

# A quoted here-document's body is literal text of another language: what each of ours holds.
HEREDOCS = {
    "NETSTAB_GUEST": "shell", "NETSTAB_BOOT": "shell", "NETSTAB_EOF": "shell",
    "NETSTAB_NETPLAN": "yaml", "NETSTAB_REGISTRIES": "yaml",
    "NETSTAB_RULES": "nft",
    "NETSTAB_PY": "python", "NETSTAB_UNIT": "unit",
    "NETSTAB_FILE_EOF": "file",  # shell.write_file: a JSON config (checked as YAML) or a systemd unit
}
# Nodes that expand or run something: a payload inside one is no longer data.
EXPANSIONS = {"CmdSubst", "ProcSubst", "ArithmExp", "ParamExp", "ArithmCmd", "ExtGlob"}


def shfmt() -> str:
    found = shutil.which("shfmt", path=str(Path(sys.executable).parent)) or shutil.which("shfmt")
    assert found, "shfmt is missing: pip install -r requirements-dev.txt (shfmt-py)"
    return found


def parse_shell(text: str) -> dict[str, Any]:
    done = subprocess.run([shfmt(), "--to-json", "-ln", "posix"], input=text, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise SyntaxError(done.stderr.strip())
    return json.loads(done.stdout)


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _unescape(text: str, inside_double: bool) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "\n":
                i += 2
                continue
            if not inside_double or nxt in '$`"\\':
                out.append(nxt)
                i += 2
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def word_value(word: dict[str, Any] | None) -> str | None:
    """The literal value of a shell word, or None when part of it expands."""
    if not word:
        return None
    out = []
    for part in word.get("Parts", []):
        kind = part.get("Type")
        if kind == "Lit":
            out.append(_unescape(part["Value"], inside_double=False))
        elif kind == "SglQuoted" and not part.get("Dollar"):
            out.append(part["Value"])
        elif kind == "DblQuoted":
            inner = []
            for sub in part.get("Parts", []):
                if sub.get("Type") != "Lit":
                    return None
                inner.append(_unescape(sub["Value"], inside_double=True))
            out.append("".join(inner))
        else:
            return None
    return "".join(out)


def shell_problems(text: str, where: str, depth: int = 0, value: str | None = None) -> list[str]:
    """Where the marker runs or expands in this script (and in its `sh -c` bodies and here-documents;
    `value`, the whole injected value, lets a YAML or JSON body hold it as one scalar)."""
    try:
        tree = parse_shell(text)
    except SyntaxError as exc:
        return [f"{where}: does not parse as POSIX shell: {exc}"]
    problems: list[str] = []
    for node in _nodes(tree):
        kind = node.get("Type")
        if kind in EXPANSIONS and MARKER in json.dumps(node):
            problems.append(f"{where}: the payload expands ({kind})")
        if kind == "CallExpr":
            args = [word_value(a) for a in node.get("Args", [])]
            if node.get("Args") and MARKER in json.dumps(node["Args"][0]):
                problems.append(f"{where}: the payload is a command: {args[0]!r}")
            for i, arg in enumerate(args[:-1]):
                if arg == "-c" and i > 0 and (args[i - 1] or "").rsplit("/", 1)[-1] == "sh" and args[i + 1] is not None:
                    problems += shell_problems(args[i + 1], f"{where} (sh -c)", depth + 1, value)
        for redirect in node.get("Redirs", []) or []:
            body = redirect.get("Hdoc")
            delimiter = word_value(redirect.get("Word"))
            quoted = any(p.get("Type") != "Lit" for p in (redirect.get("Word") or {}).get("Parts", []))
            if body is None or not quoted:
                continue  # an unquoted here-document's expansions are nodes of this tree, walked above
            language = HEREDOCS.get(delimiter or "")
            if language is None:
                problems.append(f"{where}: here-document {delimiter!r} is not classified in tests/render/hostile.py HEREDOCS")
                continue
            content = word_value(body) or ""
            problems += body_problems(language, content, f"{where} <<{delimiter}", depth + 1, value)
    return problems


def yaml_problems(text: str, where: str, value: str | None = None) -> list[str]:
    """A YAML key or list item the payload made on its own: a key holding the marker, or a scalar
    holding it without the whole injected value (the value was split)."""
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        return [f"{where}: does not parse as YAML: {str(exc).splitlines()[0]}"]
    problems: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            for key, item in node.items():
                if MARKER in str(key) and str(key) != value:
                    problems.append(f"{where}: the payload made a YAML key {key!r}")
                visit(item)
        elif isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, str) and MARKER in node and (value is None or value not in node):
            problems.append(f"{where}: the payload was split into a YAML value of its own: {node!r}")

    for document in documents:
        visit(document)
    return problems


def nft_problems(text: str, where: str) -> list[str]:
    """`nft -c -f`: the rule set parses as nft reads it (needs root); the marker only inside a string."""
    problems = [f"{where}: the payload is nft syntax: {line.strip()!r}" for line in text.splitlines()
                if MARKER in line and MARKER not in "".join(line.split('"')[1::2])]
    if os.geteuid() != 0:
        return problems  # nft -c needs CAP_NET_ADMIN; the suite runs as root in CI
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as handle:
        handle.write(text)
    try:
        done = subprocess.run(["nft", "-c", "-f", handle.name], capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        problems.append(f"{where}: nft -c refuses it: {done.stderr.strip().splitlines()[0] if done.stderr.strip() else done.returncode}")
    return problems


def body_problems(language: str, text: str, where: str, depth: int = 0, value: str | None = None) -> list[str]:
    if language == "shell":
        return shell_problems(text, where, depth, value)
    if language == "yaml":
        return yaml_problems(text, where, value)
    if language == "nft":
        return nft_problems(text, where)
    if language == "file":
        return yaml_problems(text, where, value) if text.lstrip().startswith("{") else body_problems("unit", text, where)
    # python and unit bodies are constants of the renderers: the payload must not reach them
    return [f"{where}: the payload reached a {language} body"] if MARKER in text else []


def language_of(name: str, text: str) -> str:
    if name.endswith(".sh") or text.startswith("#!/bin/sh"):
        return "shell"
    if name.endswith((".yaml", ".yml")):
        return "yaml"
    if name.endswith(".nft"):
        return "nft"
    return "text"


def file_problems(name: str, text: str, value: str | None = None) -> list[str]:
    """Every problem of one rendered file, and of the files a cloud-init user-data writes."""
    language = language_of(name, text)
    if language == "text":
        return []
    problems = body_problems(language, text, name, value=value)
    if language == "yaml" and not problems:
        for document in yaml.safe_load_all(text):
            for entry in (document or {}).get("write_files", []) if isinstance(document, dict) else []:
                inner = language_of(entry["path"], entry.get("content", ""))
                if inner != "text":
                    problems += body_problems(inner, entry["content"], f"{name}: write_files {entry['path']}", value=value)
    return problems
