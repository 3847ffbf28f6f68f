"""Input values as the engine compares them: secrets unwrapped, unknowns, and property paths.

A path is a tuple of segments: `initialization.userDataFileId` is ("initialization", "userDataFileId"),
`disks[0].fileId` is ("disks", "0", "fileId"). In a pattern, `*` stands for any one segment, so the
provider tables write `disks[*].fileId` and pulumi-command's `triggers[*]` as the engine does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.program.harness import SECRET_SIG

Path = tuple[str, ...]


class Unknown:
    """A value not known yet: what the engine passes to Diff in a preview, or for a dependent of a
    delete-before-replace (step_generator.go calculateDependentReplacements)."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown()


@dataclass(frozen=True)
class NewOutput:
    """During `up`: an output of a resource replaced in this run (a new id, a new run's stdout)."""

    source: str


def unwrap(value: Any) -> Any:
    """The value inside a serialized secret, else the value itself."""
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def parse_path(pattern: str) -> Path:
    """`disks[*].fileId` -> ("disks", "*", "fileId")."""
    return tuple(part for part in re.split(r"[.\[\]]+", pattern) if part)


def covers(pattern: Path, path: Path) -> bool:
    """Whether a change at `path` touches `pattern`: one lies under the other. A whole block that
    became unknown covers its ForceNew children (terraform-plugin-sdk finalizeDiff: NewComputed
    requires new), and a change inside a ForceNew block is covered by it."""
    return all(p in ("*", s) for p, s in zip(pattern, path, strict=False))


def _leaves(value: Any, path: Path) -> list[Path]:
    value = unwrap(value)
    if isinstance(value, dict) and value:
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list) and value:
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, str(i)))]
    return [path]


def changed_paths(old: Any, new: Any, path: Path = ()) -> list[Path]:
    """The leaf paths where `new` differs from `old`; an unknown counts as changed."""
    if isinstance(old, Unknown) or isinstance(new, Unknown):
        return [path]
    old, new = unwrap(old), unwrap(new)
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(old) + [k for k in new if k not in old]
        return [p for k in keys for p in _side(old, new, k, path)]
    if isinstance(old, list) and isinstance(new, list):
        return [p for i in range(max(len(old), len(new))) for p in _side(dict(enumerate(old)), dict(enumerate(new)), i, path)]
    return [] if old == new else [path]


def _side(old: dict[Any, Any], new: dict[Any, Any], key: Any, path: Path) -> list[Path]:
    where = (*path, str(key))
    if key not in old:
        return _leaves(new[key], where)
    if key not in new:
        return _leaves(old[key], where)
    return changed_paths(old[key], new[key], where)


def dotted(path: Path) -> str:
    return ".".join(path)
