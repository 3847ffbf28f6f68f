"""`netstab:proxmox`: the Proxmox VE node the VMs are created on."""

from __future__ import annotations

from typing import Annotated

from components.config.base import Section
from components.config.fields import Bool, Text, https_url


class ProxmoxConfig(Section):
    endpoint: Annotated[str, https_url("an https:// URL such as https://pve.lan:8006/")]
    """The Proxmox API endpoint."""
    node: Text
    """The Proxmox node name the VMs are created on."""
    insecure: Bool = False
    """Accept the API's self-signed certificate."""
    vm_datastore: Text = "local-lvm"
    """Datastore of the VM disks and cloud-init drives."""
    snippets_datastore: Text = "local"
    """Datastore of the cloud-init snippets (needs the "snippets" content type)."""
    image_datastore: Text = "local"
    """Datastore the cloud image is downloaded to."""
    ssh_user: Text = "root"
    """User the provider uploads snippets as, over SSH to the node."""
