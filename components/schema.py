"""Reading untyped config into typed values while collecting every problem at once.

Each reader returns the typed value, or None after recording a `path: message` problem,
so one pass over a stack file reports everything that is wrong with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """Every problem found in a stack's config, one `path: message` per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")

    def count(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(list(self.items))


_MISSING = object()


class Section:
    """One mapping in the config, read key by key; unknown keys are problems too."""

    def __init__(self, raw: Any, path: str, problems: Problems, known: tuple[str, ...]):
        self.path = path
        self.problems = problems
        self.ok = isinstance(raw, dict)
        self.raw: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if not self.ok:
            problems.add(path, f"expected a mapping, got {_show(raw)}")
        for key in self.raw:
            if key not in known:
                problems.add(
                    self.key_path(key),
                    f"unknown key; expected one of: {', '.join(known)}",
                )

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, default: Any) -> Any:
        if key in self.raw:
            return self.raw[key]
        if default is _MISSING:
            self.problems.add(self.key_path(key), "missing required key")
        return default

    def value(self, key: str, convert: Callable[[Any], T], expected: str, default: Any = _MISSING) -> T | None:
        raw = self._get(key, default)
        if raw is _MISSING:
            return None
        if raw is default:
            return raw
        try:
            return convert(raw)
        except (ValueError, TypeError) as exc:
            reason = f" ({exc})" if str(exc) else ""
            self.problems.add(self.key_path(key), f"{_show(raw)} is not {expected}{reason}")
            return None

    def string(self, key: str, default: Any = _MISSING) -> str | None:
        return self.value(key, _as_string, "a non-empty string", default)

    def boolean(self, key: str, default: Any = _MISSING) -> bool | None:
        return self.value(key, _as_bool, "true or false", default)

    def integer(self, key: str, low: int, high: int, default: Any = _MISSING) -> int | None:
        return self.value(key, lambda v: _as_int(v, low, high), f"an integer in {low}..{high}", default)

    def ip(self, key: str, default: Any = _MISSING) -> IPAddress | None:
        return self.value(key, _as_ip, "an IP address", default)

    def network(self, key: str, default: Any = _MISSING) -> IPNetwork | None:
        return self.value(key, _as_network, "a CIDR such as 10.27.27.0/24", default)

    def items(self, key: str, default: Any = _MISSING) -> list[Any] | None:
        return self.value(key, _as_list, "a list", default)

    def section(self, key: str, known: tuple[str, ...], default: Any = _MISSING) -> Section:
        return Section(self._get(key, default if default is not _MISSING else {}), self.key_path(key), self.problems, known)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("")
    return value


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("")


def _as_int(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("")
    number = int(value)
    if not low <= number <= high:
        raise ValueError("")
    return number


def _as_ip(value: Any) -> IPAddress:
    if not isinstance(value, str):
        raise ValueError("")
    return ipaddress.ip_address(value)


def _as_network(value: Any) -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise ValueError("")
    return ipaddress.ip_network(value, strict=True)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("")
    return value
