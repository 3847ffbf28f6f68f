"""What each provider's Diff answers, per resource type: which input paths replace.

Sources are in tests/lifecycle/sources.md (read from the pinned provider sources); each
table cites the section and the file:lines it rests on. Paths use the Pulumi (camelCase) input names.
"""

from __future__ import annotations

import base64
import pickletools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.clusteridentity import refusal
from tests.conftest import COMMAND, DOWNLOAD, DYNAMIC, SNIPPET, VM
from tests.lifecycle.values import Path, covers, parse_path, unwrap
from tests.program.harness import Registered

K8S_PROVIDER = "pulumi:providers:kubernetes"
PROXMOX_PROVIDER = "pulumi:providers:proxmoxve"


@dataclass(frozen=True)
class Rules:
    replace_on: tuple[str, ...] = ()  # ForceNew / RequiresReplace / replaceOnChanges input paths
    never_replace: bool = False  # the diff only ever answers "update"
    never_changes: bool = False  # the diff always answers "no change"
    # bridge: an explicitly set `name` makes a replacement delete-before-create unless the program says otherwise
    named_deletes_first: bool = False
    # False: the outputs follow from the inputs (a volume id, a VM id), so a replacement keeps them
    fresh_outputs: bool = True
    # an input that, when set and unchanged, overrules every replace (and replaces when it changes)
    identity: str = ""
    # the provider's Check: (old inputs, new inputs) -> a failure message, which fails the preview
    check: Callable[[dict[str, Any], dict[str, Any]], str | None] | None = None

    def replaces(self, path: Path) -> bool:
        return not self.never_replace and any(covers(parse_path(p), path) for p in self.replace_on)


# proxmox_virtual_environment_vm (facts §1.1, bpg proxmoxtf/resource/vm @v0.111.1):
#   vm_id ForceNew via CustomizeDiff (vm.go:1664-1671, 1767-1779); node_name ForceNew unless
#   migrate=true, which the program leaves false (vm.go:1781-1789, 109); every clone.* child
#   (vm.go:601-634); initialization.*_data_file_id (vm.go:994-1024) and initialization.type
#   (vm.go:1026-1032); disk.file_id (disk/schema.go:136-143).
#   In place: network_device.* (network/schema.go:75-163, hot-plugged, vm.go:6821-6847), cpu.*
#   (vm.go:6416-6478) and memory.* (vm.go:6742-6812) with a reboot, tags (vm.go:1515-1525), name
#   (vm.go:1236-1242), disk size growth (vm.go:7277-7303).
# The bridge asks for delete-before-replace when an auto-nameable `name` is set explicitly
#   (facts §1.7: pulumi-terraform-bridge provider.go:1275-1276, schema.go:195-246).
VM_RULES = Rules(
    replace_on=("vmId", "nodeName", "clone.*", "initialization.userDataFileId", "initialization.networkDataFileId",
                "initialization.metaDataFileId", "initialization.vendorDataFileId", "initialization.type", "disks[*].fileId"),
    named_deletes_first=True,
    fresh_outputs=False,
)

# proxmox_virtual_environment_file (facts §1.5, proxmoxtf/resource/file.go @v0.111.1): content_type,
#   datastore_id, node_name, file_mode (80-131) and every child of source_raw / source_file (132-221)
#   are ForceNew; update is a no-op (1023-1026); the id is the volume id `<ds>:<content>/<file>` (287).
SNIPPET_RULES = Rules(
    replace_on=("contentType", "datastoreId", "nodeName", "fileMode", "sourceRaw.*", "sourceFile.*"),
    fresh_outputs=False,
)

# proxmox_download_file = proxmox_virtual_environment_download_file (facts §1.6: resource_download_file_short.go only renames it;
#   fwprovider/nodes/resource_download_file.go
#   @v0.111.1): RequiresReplace on content_type, file_name, datastore_id, node_name, url, checksum,
#   decompression_algorithm, checksum_algorithm (216-328); the id is the volume id (480-481).
#   The size modifier (50-158) only reacts to drift outside Pulumi, never to a config change.
DOWNLOAD_RULES = Rules(
    replace_on=("contentType", "fileName", "datastoreId", "nodeName", "url", "checksum", "decompressionAlgorithm",
                "checksumAlgorithm"),
    fresh_outputs=False,
)

# command:remote:Command (facts §2.1, pulumi-command v1.2.1): only `triggers` is replaceOnChanges
#   (provider/pkg/provider/common/inputs.go:10, pulumi-command#855); every other input is an update
#   (pulumi-go-provider v1.3.0 infer/resource.go:1132-1245). The Python SDK also sets
#   replace_on_changes=["triggers[*]"] (pulumi_command/remote/command.py:455-456): the recording
#   carries that option and the engine applies it.
COMMAND_RULES = Rules(replace_on=("triggers",))

# Dynamic resources (facts §3.6), by their provider class: the gates' diffs (components/networkgate.py,
#   clustergate.py, secretgate.py) answer changes=True when a fingerprinted input changed or is
#   unknown, with no replaces: the engine treats DIFF_SOME without replaces as an update
#   (step_generator.go:1951-1953). HostKeyProvider.diff (components/hostkeys.py) never changes.
GATE_RULES = Rules(never_replace=True)
DYNAMIC_TABLE = {
    "components.networkgate.NetworkGateProvider": GATE_RULES,
    "components.clustergate.ClusterGateProvider": GATE_RULES,
    "components.secretgate.SecretGateProvider": GATE_RULES,
    "components.hostkeys.HostKeyProvider": Rules(never_replace=True, never_changes=True),
    # ClusterIdentityProvider.check (components/clusteridentity.py) refuses from the old inputs; its diff is an update
    "components.clusteridentity.ClusterIdentityProvider": Rules(
        never_replace=True, check=lambda old, new: refusal(unwrap(old.get("nodes")) or {}, unwrap(new.get("nodes")) or {})),
}

# The Kubernetes provider (pulumi-kubernetes provider/pkg/provider/provider.go DiffConfig @010f5d8e):
#   an unknown kubeconfig replaces, and so does one whose active cluster changed (every kubeconfig
#   change this program makes changes the server: a rebuilt server, a new server address), unless a
#   `clusterIdentifier` is set and unchanged; a changed one replaces.
K8S_PROVIDER_RULES = Rules(replace_on=("kubeconfig",), identity="clusterIdentifier")

# Kubernetes objects (pulumi-kubernetes provider/pkg/provider/forcenew.go metadataForceNewProperties):
#   metadata.name and metadata.namespace replace; the program changes no kind-specific ForceNew field.
K8S_RULES = Rules(replace_on=("metadata.name", "metadata.namespace"))

# The Proxmox provider's own configuration: no scenario changes it; a change is modelled as an update.
PROXMOX_PROVIDER_RULES = Rules()

TABLE = {
    VM: VM_RULES,
    SNIPPET: SNIPPET_RULES,
    DOWNLOAD: DOWNLOAD_RULES,
    COMMAND: COMMAND_RULES,
    K8S_PROVIDER: K8S_PROVIDER_RULES,
    PROXMOX_PROVIDER: PROXMOX_PROVIDER_RULES,
}


def rules_for(res: Registered) -> Rules:
    """The table entry for a custom resource; one without an entry is a model gap, not an update."""
    if res.type == DYNAMIC:
        provider = dynamic_provider(res)
        if provider in DYNAMIC_TABLE:
            return DYNAMIC_TABLE[provider]
        raise KeyError(f"no table for the dynamic provider {provider}: add it to tests/lifecycle/providers.py")
    if res.type in TABLE:
        return TABLE[res.type]
    if res.type.startswith("kubernetes:"):
        return K8S_RULES
    raise KeyError(f"no provider table for {res.type}: add one to tests/lifecycle/providers.py, with its source")


def dynamic_provider(res: Registered) -> str:
    """`module.Class` of a dynamic resource's provider, read from its pickled `__provider` input without unpickling it."""
    names = [arg for _, arg, _ in pickletools.genops(base64.b64decode(unwrap(res.inputs["__provider"]))) if isinstance(arg, str)]
    return ".".join(names[:2])
