"""Cloud-init documents for a node: the guest's network (MTU included) and its first-boot setup."""

from __future__ import annotations

import json
from typing import Any

import yaml

from components.config import GUEST_INTERFACE, NetworkConfig, NodeConfig, SshConfig


def _dump(document: dict[str, Any], header: str = "") -> str:
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


def network_config(node: NodeConfig, network: NetworkConfig) -> str:
    """Netplan-style v2 network config: the NIC is pinned by MAC and named eth0, at the stack's MTU."""
    return _dump(network_document(node, network))


def network_document(node: NodeConfig, network: NetworkConfig) -> dict[str, Any]:
    nameservers: dict[str, Any] = {"addresses": [str(a) for a in network.dns]}
    if network.search_domains:
        nameservers["search"] = list(network.search_domains)
    interface = {
        "match": {"macaddress": node.mac},
        "set-name": GUEST_INTERFACE,
        "mtu": network.mtu,
        "addresses": [f"{node.ip}/{network.subnet.prefixlen}"],
        # `to: default` fails with non-netplan renderers in older cloud-init (canonical/cloud-init#3988)
        "routes": [{"to": "0.0.0.0/0" if network.subnet.version == 4 else "::/0", "via": str(network.gateway)}],
        "nameservers": nameservers,
    }
    return {"version": 2, "ethernets": {GUEST_INTERFACE: interface}}


# The VM's host key is generated at deploy time (components/hostkeys.py) and is a secret: the
# rendered user-data holds these markers, the component puts the key in their place.
HOST_KEY_PRIVATE = "NETSTAB_HOST_KEY_PRIVATE_GENERATED_AT_DEPLOY"
HOST_KEY_PUBLIC = "NETSTAB_HOST_KEY_PUBLIC_GENERATED_AT_DEPLOY"


def user_data(node: NodeConfig, ssh: SshConfig) -> str:
    """First boot: the login user with its keys, the host key the program pins, and the guest agent
    Proxmox reads the IP from (and the guest-network steps run through)."""
    document = {
        "hostname": node.name,
        "manage_etc_hosts": True,
        # this key only, on every new instance too (cc_ssh is per instance): the pin never breaks
        "ssh_deletekeys": True,
        "ssh_keys": {"ed25519_private": HOST_KEY_PRIVATE, "ed25519_public": HOST_KEY_PUBLIC},
        "users": [
            {
                "name": ssh.user,
                "groups": ["sudo"],
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": list(ssh.public_keys),
            }
        ],
        "package_update": True,
        "packages": ["qemu-guest-agent", "curl", "python3"],
        "runcmd": [["systemctl", "enable", "--now", "qemu-guest-agent"]],
    }
    return _dump(document, header="#cloud-config\n")


def install_host_key(user_data_text: str, private_key: str, public_key: str) -> str:
    """The user-data with the VM's host key in place of its markers (JSON strings are YAML scalars)."""
    return user_data_text.replace(HOST_KEY_PRIVATE, json.dumps(private_key)).replace(HOST_KEY_PUBLIC, json.dumps(public_key))
