"""The `proxmox` section."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlparse

from components.config.base import Problems, Section, default, rule
from components.config.fields import Bool, Host, HostKey, PveNode, PveStorage, UserName, https_url


class ProxmoxNodeConfig(Section):
    """One node of a Proxmox cluster that the stack places VMs on."""

    name: PveNode
    """The Proxmox node's name (as `pvecm nodes` and nodes[].proxmoxNode spell it)."""
    address: Host
    """Where the provider's SSH uploads and the guest-agent steps reach this node."""
    ssh_host_key: HostKey
    """This node's SSH host key, pinned by every step that runs there (ssh-keyscan -t ed25519 ADDRESS)."""


class ProxmoxConfig(Section):
    """The Proxmox VE node that runs the VMs, and how the provider reaches it."""

    endpoint: Annotated[str, https_url("an https:// URL such as https://pve.lan:8006/")]
    """Proxmox API URL, https://host:8006/."""
    node: PveNode
    """Proxmox node that runs the VMs."""
    insecure: Bool = False
    """Accept Proxmox's self-signed certificate."""
    vm_datastore: PveStorage = "local-lvm"
    """Datastore of the VM disks and cloud-init drives."""
    snippets_datastore: PveStorage = "local"
    """Datastore of the cloud-init snippets (needs the Snippets content type: Datacenter -> Storage)."""
    image_datastore: PveStorage = "local"
    """Datastore the cloud image is downloaded to."""
    ssh_user: UserName = "root"
    """User of the provider's SSH uploads and the guest-agent steps on the node; netstab:sshPrivateKey must open it. Root (Proxmox has no sudo)."""
    ssh_host_key: HostKey
    """The node's SSH host key, pinned by every step that runs there (ssh-keyscan -t ed25519 HOST)."""
    nodes: tuple[ProxmoxNodeConfig, ...] = default([])
    """Every other Proxmox node the stack places a VM on (nodes[].proxmoxNode); proxmox.node is reached at the endpoint's host with sshHostKey unless listed here."""

    @rule("nodes[]")
    def _node_names_are_distinct(self) -> Problems:
        seen: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            name = getattr(node, "name", None)
            if name is None:
                continue
            if name in seen:
                yield ("nodes", i, "name"), f"{name} is already listed as proxmox.nodes[{seen[name]}]; list each Proxmox node once"
            seen.setdefault(name, i)

    def placement(self, name: str) -> tuple[str, str]:
        """Where the steps for a VM on Proxmox node `name` connect: (address, pinned host key)."""
        for node in self.nodes:
            if node.name == name:
                return node.address, node.ssh_host_key
        if name != self.node:
            raise KeyError(f"Proxmox node {name} is not in proxmox.nodes")
        return urlparse(self.endpoint).hostname or self.endpoint, self.ssh_host_key
