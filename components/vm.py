"""ProxmoxVm: one cloud-init VM at the stack's MTU. Cluster nodes and the registry mirror share it.

Lifecycle (bpg provider, see docs/lifecycle.md): a snippet's `source_raw` is ForceNew and its file
name fixed, so a changed snippet is replaced delete-first (create-first would let the old delete
remove the new file). The VM names its snippets and its boot image by their volume ids, known
before they exist, and depends on them explicitly: a property that came from their outputs would
be unknown while they are replaced, and the VM's `*_file_id` fields are ForceNew, so every network
change would preview as a rebuild (bpg#2901), and a delete-first replacement would cascade into one.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_proxmoxve as proxmox

from components.config import NetworkConfig, ProxmoxConfig


@dataclass(frozen=True)
class VmSpec:
    """What one VM is; the cloud-init texts are rendered before they get here."""

    name: str
    vm_id: int
    cores: int
    memory_mb: int
    disk_gb: int
    mac: str
    tags: tuple[str, ...]
    network_config: str
    user_data: pulumi.Input[str]  # a secret: it carries the VM's host key


@dataclass(frozen=True)
class BootImage:
    """A cloud image on the Proxmox node: its volume id and the resource that downloads it."""

    file_id: str
    download: pulumi.Resource


@dataclass(frozen=True)
class ProxmoxVmArgs:
    spec: VmSpec
    proxmox: ProxmoxConfig
    network: NetworkConfig
    image: BootImage | None = None
    template_vm_id: int | None = None
    # the VM is rebuilt when its user-data changes: for a VM configured by it alone (cloud-init
    # applies user-data once per instance)
    rebuild_on_user_data: bool = False
    # the Proxmox node the VM and its snippets go to (nodes[].proxmoxNode); None: proxmox.node
    node_name: str | None = None


def volume_id(datastore: str, content_type: str, file_name: str) -> str:
    """How the provider names a file on a datastore: `<datastore>:<content type>/<file name>`
    (bpg proxmoxtf/resource/file.go and fwprovider/nodes/resource_download_file.go)."""
    return f"{datastore}:{content_type}/{file_name}"


class ProxmoxVm(pulumi.ComponentResource):
    vm_id: pulumi.Output[int]
    name: pulumi.Output[str]

    def __init__(self, name: str, args: ProxmoxVmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:vm:ProxmoxVm", name, None, opts)
        spec, px = args.spec, args.proxmox
        node_name = args.node_name or px.node
        # the component's own depends_on does not reach its children: pass it on
        child = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)

        snippets = {
            kind: self._snippet(f"{name}-{kind}", f"{spec.name}-{kind}.yaml", text, px, node_name, child)
            for kind, text in (("network-config", spec.network_config), ("user-data", spec.user_data))
        }
        self.snippet_ids = {kind: volume_id(px.snippets_datastore, "snippets", f"{spec.name}-{kind}.yaml") for kind in snippets}
        after: list[pulumi.Resource] = [*snippets.values(), *([args.image.download] if args.image else [])]

        disk = proxmox.VmLegacyDiskArgs(
            interface="virtio0",
            datastore_id=px.vm_datastore,
            file_id=args.image.file_id if args.image else None,
            size=spec.disk_gb,
            discard="on",
            iothread=True,
        )
        vm = proxmox.VmLegacy(
            f"{name}-vm",
            proxmox.VmLegacyArgs(
                node_name=node_name,
                vm_id=spec.vm_id,
                name=spec.name,
                tags=list(spec.tags),
                on_boot=True,
                started=True,
                stop_on_destroy=True,
                clone=proxmox.VmLegacyCloneArgs(vm_id=args.template_vm_id, full=True) if args.template_vm_id else None,
                agent=proxmox.VmLegacyAgentArgs(enabled=True, timeout="15m"),
                cpu=proxmox.VmLegacyCpuArgs(cores=spec.cores, type="host"),
                memory=proxmox.VmLegacyMemoryArgs(dedicated=spec.memory_mb),
                operating_system=proxmox.VmLegacyOperatingSystemArgs(type="l26"),
                serial_devices=[proxmox.VmLegacySerialDeviceArgs(device="socket")],
                disks=[disk],
                network_devices=[
                    proxmox.VmLegacyNetworkDeviceArgs(
                        bridge=args.network.bridge,
                        model="virtio",
                        mtu=args.network.mtu,
                        mac_address=spec.mac,
                        vlan_id=args.network.vlan,
                    )
                ],
                initialization=proxmox.VmLegacyInitializationArgs(
                    # NoCloud reads the v2 network-config as written; a configdrive2 template would misread it
                    type="nocloud",
                    datastore_id=px.vm_datastore,
                    network_data_file_id=self.snippet_ids["network-config"],
                    user_data_file_id=self.snippet_ids["user-data"],
                ),
            ),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                delete_before_replace=True, depends_on=after, replace_with=[snippets["user-data"]] if args.rebuild_on_user_data else None)),
        )
        self.vm = vm
        self.vm_id = vm.vm_id.apply(lambda v: int(v or spec.vm_id))
        self.name = pulumi.Output.from_input(spec.name)
        self.register_outputs({"vm_id": self.vm_id, "name": self.name})

    @staticmethod
    def _snippet(resource: str, file_name: str, text: pulumi.Input[str], px: ProxmoxConfig, node_name: str,
                 opts: pulumi.ResourceOptions) -> proxmox.FileLegacy:
        return proxmox.FileLegacy(
            resource,
            proxmox.FileLegacyArgs(
                content_type="snippets",
                datastore_id=px.snippets_datastore,
                node_name=node_name,
                overwrite=True,
                source_raw=proxmox.FileLegacySourceRawArgs(data=text, file_name=file_name),
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
        )
