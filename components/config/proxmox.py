"""The `proxmox` section."""

from __future__ import annotations

from typing import Annotated

from components.config.base import Section
from components.config.fields import Bool, HostKey, PveNode, PveStorage, UserName, https_url


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
