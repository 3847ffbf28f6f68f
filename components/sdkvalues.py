"""How the Pulumi SDK marks special values in serialized properties (what a dynamic provider
receives, and what the mock monitor records). The markers are the SDK's own (pulumi.runtime.rpc,
pinned with the SDK in requirements.txt); this is their one home in the project."""

from __future__ import annotations

from typing import Any

from pulumi.runtime.rpc import UNKNOWN, _special_sig_key

# A secret arrives as {SIG_KEY: <secret signature>, "value": <plain value>}.
SIG_KEY = _special_sig_key

__all__ = ["SIG_KEY", "UNKNOWN", "is_secret", "unwrap"]


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SIG_KEY in value


def unwrap(value: Any) -> Any:
    """The plain value inside a serialized secret; anything else unchanged."""
    return value.get("value") if is_secret(value) else value
