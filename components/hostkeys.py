"""SSH host keys for the VMs, generated once by the program, so no SSH connection goes unchecked.

Each VM gets an ed25519 host key pair from a `HostKey` dynamic resource: created once, never
replaced (its diff is empty), the private half a secret output. Cloud-init installs it as the
guest's only host key (`ssh_keys`, `ssh_deletekeys`; with `ssh_keys` set cc_ssh generates none),
on every new instance too, so a VM rebuilt or re-initialized keeps it; every SSH command to the VM pins the public half
(pulumi-command `connection.hostKey`, authorized_keys format, remote/connection.go). ed25519:
pulumi-command offers only the pinned key's type, and for RSA that is the SHA-1 `ssh-rsa` that a
current OpenSSH refuses.
"""

from __future__ import annotations

from typing import Any

import pulumi
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider


def generate(comment: str) -> tuple[str, str]:
    """(private key in OpenSSH format, public key line `ssh-ed25519 AAAA... comment`)."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


class HostKeyProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        private, public = generate(f"netstab-host-{props['host']}")
        return CreateResult(id_=f"hostkey-{props['host']}", outs={"host": props["host"], "private_key": private, "public_key": public})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> Any:
        # once generated, a key stays: a renamed VM keeps the key of its resource
        return DiffResult(changes=False, replaces=[], stables=[], delete_before_replace=False)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class HostKey(pulumi.dynamic.Resource):
    private_key: pulumi.Output[str]
    public_key: pulumi.Output[str]

    def __init__(self, name: str, host: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(HostKeyProvider(), name, {"host": host, "private_key": None, "public_key": None},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key"])))
