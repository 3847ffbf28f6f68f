"""The `ssh` section."""

from __future__ import annotations

from typing import Annotated, Any

from components.config.base import Section
from components.config.fields import KEY_COMMENT, Check, Refused, UserName, grammar, key_line_reason, string_list

# One authorized_keys line: the type, the base64 key and an optional one-line comment, matched whole
# (a newline would add another key, or a `command=` line, to the login user's authorized_keys).
PUBLIC_KEY = grammar(r"^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com) "
                     rf"[A-Za-z0-9+/]+={{0,3}}{KEY_COMMENT}$")


def _public_keys(value: Any) -> tuple[str, ...]:
    for i, item in enumerate(value if isinstance(value, list) else [value]):
        if isinstance(item, str) and "PRIVATE KEY" in item:  # refused before any message could quote it
            raise Refused("is a private key; never paste it here: set it with pulumi config set --secret netstab:sshPrivateKey < KEYFILE, "
                          "and list its public half (ssh-keygen -y -f KEY)", at=(i,) if isinstance(value, list) else ())
    keys = string_list(value)
    bad = [k for k in keys if not PUBLIC_KEY.fullmatch(k)]
    if not keys or bad:
        raise ValueError(key_line_reason(bad[0], PUBLIC_KEY) if bad else "")
    return keys


PUBLIC_KEYS_SCHEMA = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": PUBLIC_KEY.pattern}}


class SshConfig(Section):
    """The login user cloud-init creates on every VM, and its authorized keys."""

    user: UserName
    """Login user created on every VM."""
    public_keys: Annotated[tuple[str, ...], Check("a non-empty list of SSH public keys (ssh-ed25519 AAAA...)", _public_keys, PUBLIC_KEYS_SCHEMA)]
    """Its authorized keys; netstab:sshPrivateKey must match one."""
