"""The kinds of change a user makes to a running cluster, each run through the model once.

A change edits the homelab stack (after an optional `base` edit that both runs share). `second_up`
runs the program for the old and the new config under mocks, builds the world of the first
`pulumi up`, plans the preview and the up, and runs the up in that world.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config.mirror import DEFAULT_UPSTREAMS
from components.stack import read_stack_file, stack_file
from tests.lifecycle.engine import Plan, plan
from tests.lifecycle.world import ROTATED_PRIVATE_KEY, ROTATED_PUBLIC_KEY, World, first_up
from tests.program.harness import DUMMY_SECRETS, Recording, Registered, run_program

Edit = Callable[[dict[str, Any]], None]

_HOMELAB: dict[str, Any] = read_stack_file(stack_file("homelab"))[0]
# the HA example (docs/ha.md): 3 servers + 2 agents over 3 Proxmox nodes; a Change with stack="homelab-ha" edits it
_STACKS: dict[str, dict[str, Any]] = {"homelab": _HOMELAB, "homelab-ha": read_stack_file(stack_file("homelab-ha"))[0]}
NEW_IMAGE = "https://cloud-images.ubuntu.com/releases/24.04/release-20260115/ubuntu-24.04-server-cloudimg-amd64.img"
SAME_NAME_IMAGE = "https://cloud-images.ubuntu.com/noble/20260115/noble-server-cloudimg-amd64.img"


def _section(name: str, **values: Any) -> Edit:
    return lambda raw: raw[name].update(values)


def _node(index: int, **values: Any) -> Edit:
    return lambda raw: raw["nodes"][index].update(values)


def _template(vm_id: int) -> Edit:
    return lambda raw: raw.update(image={"templateVmId": vm_id})


def _keep(_raw: dict[str, Any]) -> None:
    return None


def _every_node(**values: Any) -> Edit:
    return lambda raw: [node.update(values) for node in raw["nodes"]]


def _add_nodes(*nodes: dict[str, Any]) -> Edit:
    return lambda raw: raw["nodes"].extend(copy.deepcopy(list(nodes)))


def _drop(*names: str) -> Edit:
    return lambda raw: raw.update(nodes=[n for n in raw["nodes"] if n["name"] not in names])


def _ha_node(name: str, role: str, index: int, proxmox_node: str) -> dict[str, Any]:
    return {"name": name, "role": role, "vmId": 2700 + index, "ip": f"10.27.27.{index}", "cores": 4, "memoryMb": 8192,
            "diskGb": 40, "proxmoxNode": proxmox_node}


# two more servers (an HA server count stays odd: docs/ha.md)
_CP4_CP5 = (_ha_node("cp4", "server", 14, "pve1"), _ha_node("cp5", "server", 15, "pve2"))


def _to_one_server(raw: dict[str, Any]) -> None:
    _drop("cp2", "cp3")(raw)
    raw["k3s"] = {k: v for k, v in raw["k3s"].items() if k not in ("vip", "vipInterface")}


def _to_three_servers(raw: dict[str, Any]) -> None:
    raw["k3s"]["vip"] = "10.27.27.10"
    raw["nodes"][1:1] = [{**raw["nodes"][0], "name": "cp2", "vmId": 2712, "ip": "10.27.27.12"},
                         {**raw["nodes"][0], "name": "cp3", "vmId": 2713, "ip": "10.27.27.13"}]


def _swap_roles(raw: dict[str, Any]) -> None:
    raw["nodes"][0]["role"], raw["nodes"][1]["role"] = "agent", "server"


@dataclass(frozen=True)
class Change:
    key: str
    title: str  # as the docs table names it
    edit: Edit
    base: Edit = _keep  # applied to both runs first
    secrets: tuple[tuple[str, str], ...] = ()  # secret config keys the new run changes
    failed_gate: bool = False  # the last up's gate failed (it left its nonce in the report folder)
    stack: str = "homelab"  # the example stack both runs start from


CHANGES = (
    Change("mtu", "MTU (`network.mtu` 1400 → 1450)", _section("network", mtu=1450)),
    Change("dns", "DNS servers (`network.dns`)", _section("network", dns=["10.27.27.1", "9.9.9.9"])),
    Change("search", "search domains (`network.searchDomains`)", _section("network", searchDomains=["lan", "home.arpa"])),
    Change("address", "an agent's address (`nodes[].ip`)", _node(1, ip="10.27.27.31")),
    Change("server-address", "the server's address", _node(0, ip="10.27.27.12")),
    Change("gateway-rules", "gateway rules (`gateway.pathMtu` 1400 → 1280)", _section("gateway", pathMtu=1280),
           base=_section("gateway", pathMtu=1400)),
    Change("gateway-remeasure", "the path MTU measured again (`gateway.remeasure`)", _section("gateway", remeasure=1)),
    Change("gateway-host", "gateway host (`gateway.host`)", _section("gateway", host="10.27.27.254")),
    Change("gateway-flavor", "gateway flavor (nftables → iptables)", _section("gateway", flavor="iptables")),
    Change("image-same-name", "image URL, same file name", _section("image", url=SAME_NAME_IMAGE)),
    Change("image-new-name", "image URL, new file name", _section("image", url=NEW_IMAGE)),
    Change("template", "template VM (`image.templateVmId`)", _template(9001), base=_template(9000)),
    Change("vm-id", "an agent's `vmId`", _node(1, vmId=2725)),
    Change("remove-node", "an agent removed (`nodes[]`)", lambda raw: raw["nodes"].pop(2)),
    Change("rename-same-vm-id", "a node renamed, same `vmId`", _node(2, name="worker3")),
    Change("server-swap", "another node made the server", _swap_roles),
    Change("cores-memory", "cores / memory of a node", _node(1, cores=8, memoryMb=16384)),
    Change("cores-all", "cores of every node", _every_node(cores=6)),
    Change("datastore", "the VM datastore (`proxmox.vmDatastore`)", _section("proxmox", vmDatastore="fast-lvm")),
    Change("disk", "disk size of a node (grow)", _node(1, diskGb=80)),
    Change("user-data", "an SSH public key added (`ssh.publicKeys`, user-data)",
           lambda raw: raw["ssh"].update(publicKeys=[*raw["ssh"]["publicKeys"],
                                                     "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnotherKeyForTheLifecycleRingOfNetstab000 ops@homelab"])),
    Change("ssh-key", "the SSH key pair rotated (`netstab:sshPrivateKey`, `ssh.publicKeys`)",
           _section("ssh", publicKeys=[ROTATED_PUBLIC_KEY]), secrets=(("sshPrivateKey", ROTATED_PRIVATE_KEY),)),
    Change("k3s-version", "K3s version (`k3s.version`)", _section("k3s", version="v1.34.1+k3s1")),
    Change("k3s-token", "K3s token (`netstab:k3sToken`)", _keep, secrets=(("k3sToken", "dummy-k3s-TOKEN-rotated-0a1"),)),
    Change("mirror-off", "mirror on → off", lambda raw: raw.update(mirror={"enabled": False})),
    Change("mirror-on", "mirror off → on", lambda raw: raw.update(mirror=_HOMELAB["mirror"]),
           base=lambda raw: raw.update(mirror={"enabled": False})),
    Change("mirror-upstreams", "a mirror upstream added (`mirror.upstreams`)",
           lambda raw: raw["mirror"].update(upstreams=[*DEFAULT_UPSTREAMS, {"registry": "gcr.io", "port": 5005}])),
    Change("mirror-address", "the mirror's address (`mirror.ip`)", _section("mirror", ip="10.27.27.6")),
    Change("external-secret", "an ExternalSecret's data (`secrets.externalSecrets`)",
           lambda raw: raw["secrets"]["externalSecrets"][1]["data"].update(TS_HOSTNAME="hostname")),
    Change("doppler-token", "the Doppler token (`netstab:dopplerToken`)", _keep, secrets=(("dopplerToken", "dp.st.dummy-DOPPLER-rotated-9c4"),)),
    Change("after-failed-gate", "nothing, after a failed gate (`validation.run: on-change`)", _keep,
           base=lambda raw: raw.update(validation={"run": "on-change"}), failed_gate=True),
    Change("proxmox-token", "the Proxmox API token (`netstab:proxmoxApiToken`)", _keep,
           secrets=(("proxmoxApiToken", "root@pam!netstab=dummy-proxmox-ROTATED-2d9"),)),
    # the continuous probes (docs/monitoring.md)
    Change("monitoring-interval", "continuous probe interval (`monitoring.intervalSeconds` 300 → 600)", _section("monitoring", intervalSeconds=600)),
    Change("monitoring-off", "continuous probes on → off", _section("monitoring", enabled=False)),
    Change("monitoring-on", "continuous probes off → on", _section("monitoring", enabled=True), base=_section("monitoring", enabled=False)),
    # the HA stack (docs/ha.md): 3 servers behind the VIP + 2 agents over 3 Proxmox nodes
    Change("ha-add-agent", "HA: an agent added", _add_nodes(_ha_node("worker3", "agent", 23, "pve1")), stack="homelab-ha"),
    Change("ha-remove-agent", "HA: an agent removed", _drop("worker2"), stack="homelab-ha"),
    Change("ha-add-servers", "HA: two servers added (3 → 5)", _add_nodes(*_CP4_CP5), stack="homelab-ha"),
    Change("ha-remove-servers", "HA: two servers removed (5 → 3)", _drop("cp4", "cp5"), base=_add_nodes(*_CP4_CP5), stack="homelab-ha"),
    Change("ha-vip", "HA: the VIP (`k3s.vip`)", _section("k3s", vip="10.27.27.9"), stack="homelab-ha"),
    Change("ha-move-agent", "HA: an agent moved to another Proxmox node", _node(3, proxmoxNode="pve1"), stack="homelab-ha"),
    Change("ha-move-server", "HA: a server moved to another Proxmox node", _node(2, proxmoxNode="pve1"), stack="homelab-ha"),
    Change("ha-rebuild-first-server", "HA: the first server rebuilt (its `vmId`)", _node(0, vmId=2719), stack="homelab-ha"),
    Change("ha-rebuild-server", "HA: a joining server rebuilt (its `vmId`)", _node(1, vmId=2718), stack="homelab-ha"),
    Change("ha-ssh-key", "HA: the SSH key pair rotated", _section("ssh", publicKeys=[ROTATED_PUBLIC_KEY]),
           secrets=(("sshPrivateKey", ROTATED_PRIVATE_KEY),), stack="homelab-ha"),
    Change("ha-k3s-version", "HA: K3s version (`k3s.version`)", _section("k3s", version="v1.34.1+k3s1"), stack="homelab-ha"),
    Change("ha-image-new-name", "HA: image URL, new file name (every VM rebuilt)", _section("image", url=NEW_IMAGE), stack="homelab-ha"),
    Change("ha-rebuild-two-servers", "HA: two servers rebuilt in one up (`vmId` of cp1 and cp2)",
           lambda raw: (_node(0, vmId=2719)(raw), _node(1, vmId=2718)(raw)), stack="homelab-ha"),
    Change("ha-move-peer-and-resize-first", "HA: the first server resized while its peer moves",
           lambda raw: (_node(0, cores=8)(raw), _node(1, proxmoxNode="pve3")(raw)), stack="homelab-ha"),
    Change("ha-to-single", "HA: down to one server (3 → 1)", _to_one_server, stack="homelab-ha"),
    Change("single-to-ha", "one server made three (1 → 3, `k3s.vip`)", _to_three_servers),
)
BY_KEY = {c.key: c for c in CHANGES}


@dataclass(frozen=True)
class SecondUp:
    old: Recording
    new: Recording
    preview: Plan
    up: Plan
    before: World  # after the first `pulumi up`
    after: World  # after the second

    def __repr__(self) -> str:
        return f"<second up: {self.up!r}>"


def configs(change: Change) -> tuple[dict[str, Any], dict[str, Any]]:
    old = copy.deepcopy(_STACKS[change.stack])
    change.base(old)
    new = copy.deepcopy(old)
    change.edit(new)
    return old, new


@functools.cache
def second_up(key: str) -> SecondUp:
    """Cached: one change's runs feed several tests and the docs table; tests treat it as read-only."""
    change = BY_KEY[key]
    old_raw, new_raw = configs(change)
    with in_report_folder(change.failed_gate) as failed:
        old = run_program(old_raw)
        failed()
        new = run_program(new_raw, secrets={**DUMMY_SECRETS, **dict(change.secrets)})
    return run_plans(old, new)


@contextlib.contextmanager
def in_report_folder(isolated: bool) -> Any:
    """Both runs in a fresh working folder (its validation-report/ is theirs); `failed()` records a
    failed gate run there, as the gates do (components/gate.py). Not isolated: the current folder, no failure."""
    if not isolated:
        yield lambda: None
        return
    from components.gate import record_failure
    from components.validation import REPORT_DIR

    before = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            yield lambda: record_failure(Path(folder).resolve() / REPORT_DIR)
        finally:
            os.chdir(before)


def run_plans(old: Recording, new: Recording) -> SecondUp:
    before = first_up(old)
    up = plan(old, new, "up")
    after = copy.deepcopy(before).run(up)
    return SecondUp(old, new, plan(old, new, "preview"), up, before, after.check(old if up.refused else new))


def rewired(recording: Recording, names: Callable[[str], bool], **fields: Any) -> Recording:
    """A copy of `recording` with `fields` of the named resources changed (a counterfactual wiring).
    A callable field value maps the resource to its new value."""
    def change(res: Registered) -> Registered:
        if not names(res.name):
            return res
        return dataclasses.replace(res, **{k: v(res) if callable(v) else v for k, v in fields.items()})

    return Recording([change(r) for r in recording.resources], dict(recording.outputs))
