"""The `k3s` section."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Section
from components.config.fields import IP, Interface, K3sVersion, between, https_url


class K3sConfig(Section):
    """The pinned K3s release and how long to wait for the nodes."""

    version: K3sVersion
    """Pinned K3s release."""
    install_url: Annotated[str, https_url("an https:// URL")] = "https://get.k3s.io"
    """URL of the K3s install script."""
    ready_timeout_s: Annotated[int, between(30, 7200)] = Field(600, alias="readyTimeoutSeconds")
    """How long to wait for every node Ready."""
    vip: IP | None = None
    """The API's virtual address (kube-vip, ARP): on network.subnet, no node's, the mirror's or the gateway's; required with more than one server."""
    vip_interface: Interface | None = None
    """Guest interface kube-vip announces k3s.vip on (default: the guests' NIC, eth0)."""
