"""The `nodes` list, and the rules every VM (the mirror's too) keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from components.config.base import Loc, Problems, Section, has, path
from components.config.fields import IP, PveNode, between, hostname, one_of

ROLES = ("server", "agent")
VM_ID = between(100, 999_999_999)


class NodeConfig(Section):
    """One cluster VM."""

    name: Annotated[str, hostname("a hostname (lowercase letters, digits, '-')")]
    """VM and host name."""
    role: Annotated[str, one_of(ROLES)]
    """server (the control plane: one, or an odd number >= 3 behind k3s.vip) or agent."""
    vm_id: Annotated[int, VM_ID]
    """Proxmox VM id; also fixes the NIC's MAC address."""
    ip: IP
    """Static address inside network.subnet."""
    cores: Annotated[int, between(1, 128)] = 2
    """CPU cores."""
    memory_mb: Annotated[int, between(512, 1_048_576)] = 4096
    """Memory in MiB."""
    disk_gb: Annotated[int, between(8, 65_536)] = 32
    """Boot disk size in GiB."""
    proxmox_node: PveNode | None = None
    """Proxmox node that runs this VM (default proxmox.node); any other must be listed in proxmox.nodes."""

    @property
    def mac(self) -> str:
        """A stable, locally administered MAC derived from the VM id, so cloud-init can match the NIC."""
        return mac_of(self.vm_id)


def mac_of(vm_id: int) -> str:
    low = vm_id & 0xFFFFFF
    return f"02:4e:53:{low >> 16:02x}:{(low >> 8) & 0xFF:02x}:{low & 0xFF:02x}"


# A VM as the cross-section rules see it: where it is declared (nodes[i] or mirror) and what it is
# (a Partial of its valid fields when the node itself has mistakes: the rules use what is there).
Vm = tuple[Loc, Any]


def server_count(nodes: Sequence[Any]) -> Problems:
    """One server, or an odd number of at least three: embedded etcd needs a majority of its members."""
    if not nodes:
        yield ("nodes",), "needs at least one node with role: server"
        return
    servers = sum(has(n, "role") and n.role == "server" for n in nodes)
    unknown = sum(not has(n, "role") for n in nodes)
    if unknown:
        return  # a node with a wrong role may be a server: the count is not known
    if servers == 0:
        yield ("nodes",), "needs at least one node with role: server (found 0)"
    elif servers % 2 == 0:
        yield ("nodes",), (f"has {servers} servers; use 1, or an odd number of at least 3: the servers run embedded etcd, which "
                           f"writes only while a majority ({servers // 2 + 1} of {servers}) is up, so {servers} servers tolerate "
                           f"{(servers - 1) // 2} failed server(s), no more than {servers - 1} do; make one of them an agent, or add a server")


def unique(vms: Sequence[Vm]) -> Problems:
    """Each VM needs its own name, VM id and address (among those whose value is valid)."""
    for attr in ("name", "vm_id", "ip"):
        seen: dict[Any, Loc] = {}
        for loc, vm in vms:
            if not has(vm, attr):
                continue
            value = getattr(vm, attr)
            if value in seen:
                yield (*loc, NodeConfig.model_fields[attr].alias or attr), f"{value} is already used by {path(seen[value])}; each VM needs its own"
            seen.setdefault(value, loc)
    # The MAC keeps only the VM id's low 24 bits, so two different ids can still give one MAC.
    macs: dict[str, Vm] = {}
    for loc, vm in vms:
        if not has(vm, "vm_id"):
            continue
        mac = mac_of(vm.vm_id)
        first = macs.setdefault(mac, (loc, vm))
        if first[1].vm_id != vm.vm_id:
            yield (*loc, "vmId"), (f"{vm.vm_id} gives the same MAC address ({mac}) as vmId {first[1].vm_id} of {path(first[0])}; "
                                   "the MAC keeps the id's low 24 bits, so pick an id that differs in them")
