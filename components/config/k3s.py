"""The `k3s` section."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from components.config.base import Section
from components.config.fields import K3sVersion, between, https_url


class K3sConfig(Section):
    """The pinned K3s release and how long to wait for the nodes."""

    version: K3sVersion
    """Pinned K3s release."""
    install_url: Annotated[str, https_url("an https:// URL")] = "https://get.k3s.io"
    """URL of the K3s install script."""
    ready_timeout_s: Annotated[int, between(30, 7200)] = Field(600, alias="readyTimeoutSeconds")
    """How long to wait for every node Ready."""
