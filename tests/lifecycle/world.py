"""A tiny simulated Proxmox node, its guests and the gateway, to run a plan in and read the end state.

What each step does here, and why (facts file sections in brackets):
- a snippet / image create writes its volume id on the node, its delete removes that volume id
  [§1.5, §1.6]; an image create finds its file already there and fails (overwrite_unmanaged is off);
- a VM create boots from its snippets and image, which must exist (the cloud-init ISO is generated
  from the snippets at every start [§1.8]); first boot applies the network snippet. A VM update
  sets the NIC MTU in place and reboots for cpu / memory; a reboot with changed snippets is a new
  cloud-init instance: network re-applied, the SSH host key installed from the user-data (or
  generated anew without one) [§5.2];
- a command runs its script on its connection's host: the gateway (a gateway script), the Proxmox
  host (`qm guest exec N` reaches VM N) or the guest with that address, which must answer with
  the host key the step pins. A
  script is recognized by what it is: gateway measure (read-only), apply / remove / verify (its
  header), registries.yaml written (its heredoc) or removed, K3s installed (the invocation and
  stdin), the guest network converged (its netplan) or checked, the mirror's instances checked
  (they come from its user-data, at a new instance), the continuous probe installed (its probe.json)
  or removed, on a guest or on the Proxmox host. Anything else is a check with no effect, but
  still needs its host to answer.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from components.render.gateway_measure import MEASURE_SCHEMA
from components.render.mirror import CONFIG_DIR as MIRROR_CONFIG_DIR
from tests.conftest import COMMAND, DOWNLOAD, SNIPPET, VM
from tests.lifecycle.engine import Plan, Step, plan
from tests.lifecycle.values import changed_paths, unwrap
from tests.program.harness import Recording, Registered

PROBE_INSTALL, PROBE_REMOVE = "# netstab: install or update the continuous probe", "# netstab: remove the continuous probe"
GATEWAY_HEADER = re.compile(r"^# netstab gateway (apply|remove|verify) \((\w+)\) of stack ([^\s:]+)", re.MULTILINE)


@dataclass
class Guest:
    name: str
    vm_id: int
    nic_mtu: int
    snippets: tuple[str, str]  # volume ids: user-data, network-config (read at every start)
    image: str | None  # volume id of the image its disk was imported from (read at creation only)
    instance: str = ""  # the snippet contents its cloud-init instance came from (PVE: instance-id = sha1 of them)
    network: dict[str, Any] | None = None  # eth0 as the guest runs it (a network-config v2 ethernet)
    registries: str | None = None  # /etc/rancher/k3s/registries.yaml
    k3s: tuple[str, str] | None = None  # the install script and stdin last applied
    serves: frozenset[str] = frozenset()  # the mirror's registry instances, configured by its user-data
    instances: int = 0  # cloud-init instances it has started
    host_key: str = ""  # its SSH host key (public): from its user-data, else generated per instance
    probe: dict[str, Any] | None = None  # the continuous probe's probe.json, while it is installed
    probe_installs: int = 0  # installs since the store was last wiped (a remove wipes it)

    @property
    def address(self) -> str | None:
        return self.network["addresses"][0].split("/")[0] if self.network else None


@dataclass
class World:
    proxmox_host: str
    files: dict[str, str] = field(default_factory=dict)  # volume id -> content (snippet text, image URL)
    guests: dict[str, Guest] = field(default_factory=dict)  # VM URN -> guest
    gateway: dict[str, str] = field(default_factory=dict)  # host -> the stack whose rules it carries
    reachable: bool = True  # the guests answer SSH (False: `pulumi destroy` with the cluster unreachable)
    errors: list[str] = field(default_factory=list)  # what failed in the last run
    ran: list[str] = field(default_factory=list)  # "<op> <resource> on <host>": every script the last run ran
    proxmox_probe: dict[str, Any] | None = None  # the continuous probe on the Proxmox host (its probe.json)

    def run(self, steps: Plan | list[Step]) -> World:
        self.errors, self.ran = [], []
        for step in steps.steps if isinstance(steps, Plan) else steps:
            handler = {SNIPPET: self._file, DOWNLOAD: self._file, VM: self._vm, COMMAND: self._command}.get(step.res.type)
            if handler is not None and not step.skipped:
                handler(step)
        return self

    # ---------------------------------------------------------------- files

    def _file(self, step: Step) -> None:
        inputs = step.res.inputs
        raw = inputs.get("sourceRaw")
        name = raw["fileName"] if raw else inputs["fileName"]
        volume = f"{inputs['datastoreId']}:{inputs['contentType']}/{name}"
        if step.op == "delete":
            self.files.pop(volume, None)
        elif step.op == "create":
            if raw is None and volume in self.files:
                self.errors.append(f"{step}: File already exists in the datastore ({volume})")
                return
            self.files[volume] = unwrap(raw["data"]) if raw else inputs["url"]

    # ---------------------------------------------------------------- VMs

    def _vm(self, step: Step) -> None:
        inputs = step.res.inputs
        if step.op == "delete":
            self.guests.pop(step.res.urn, None)
        elif step.op == "create":
            vm_id = int(inputs["vmId"])
            if any(g.vm_id == vm_id for g in self.guests.values()):
                self.errors.append(f"{step}: VM {vm_id} already exists")
                return
            init = inputs["initialization"]
            image = next((d["fileId"] for d in inputs["disks"] if d.get("fileId")), None)
            guest = Guest(inputs["name"], vm_id, int(inputs["networkDevices"][0]["mtu"]), (init["userDataFileId"], init["networkDataFileId"]), image)
            self.guests[step.res.urn] = guest
            if image is not None and image not in self.files:
                self.errors.append(f"{step}: VM {vm_id} cannot import its disk, {image} is gone")
                return
            self._start(guest, str(step))
        else:
            assert step.old is not None
            guest = self.guests[step.res.urn]
            guest.nic_mtu = int(inputs["networkDevices"][0]["mtu"])  # hot-plugged [§1.3]
            if any(p[0] in ("cpu", "memory") for p in changed_paths(step.old.inputs, inputs)):
                self._start(guest, f"{step} (reboot)")

    def _start(self, guest: Guest, why: str) -> None:
        missing = [f for f in guest.snippets if f not in self.files]
        if missing:
            self.errors.append(f"{why}: VM {guest.vm_id} cannot start, {', '.join(missing)} is gone")
            guest.network = None
            return
        user, network = guest.snippets
        instance = self.files[user] + self.files[network]
        if instance != guest.instance:  # a new cloud-init instance: network applied, host key installed or made
            guest.instance, guest.instances = instance, guest.instances + 1
            guest.network = yaml.safe_load(self.files[network])["ethernets"]["eth0"]
            config = yaml.safe_load(self.files[user])
            written = config.get("write_files", [])
            guest.serves = frozenset(PurePosixPath(f["path"]).stem for f in written if f["path"].startswith(MIRROR_CONFIG_DIR + "/"))
            guest.host_key = config.get("ssh_keys", {}).get("ed25519_public") or f"generated for instance {guest.instances}"

    # ---------------------------------------------------------------- commands

    def _command(self, step: Step) -> None:
        if step.script is None:
            return
        inputs = step.res.inputs
        host = unwrap(inputs["connection"])["host"]
        body = script_of(step.script)
        self.ran.append(f"{step.op} {step.name} on {host}")
        if host == self.proxmox_host:
            if PROBE_INSTALL in body or PROBE_REMOVE in body:
                self.proxmox_probe = yaml.safe_load(heredoc(body, "NETSTAB_FILE_EOF")) if PROBE_INSTALL in body else None
                return
            target = re.search(r"qm guest exec (\d+)", body)
            if target:
                self._in_guest(step, int(target.group(1)), heredoc(body, "NETSTAB_GUEST"))
            return
        if MEASURE_SCHEMA in body:
            return  # the path MTU measured from the gateway: read-only
        if GATEWAY_HEADER.search(body):
            self._gateway(step, host, body)
            return
        guest = next((g for g in self.guests.values() if g.address == host), None)
        pinned = unwrap(inputs["connection"]).get("hostKey")
        if guest is None:
            self.errors.append(f"{step}: dials {host}, and no VM answers there")
        elif pinned and pinned != guest.host_key:
            self.errors.append(f"{step}: {host} presents {guest.host_key!r}, the step pins {pinned!r}")
        elif not self.reachable:
            self.errors.append(f"{step}: dials {host}: the cluster is unreachable")
        else:
            self._on_guest(step, guest, body, str(unwrap(inputs.get("stdin", ""))))

    def _in_guest(self, step: Step, vm_id: int, body: str) -> None:
        guest = next((g for g in self.guests.values() if g.vm_id == vm_id), None)
        if guest is None or guest.network is None:
            self.errors.append(f"{step}: qm guest exec {vm_id}: no such running VM")
            return
        if "netplan apply" in body:
            guest.network = yaml.safe_load(heredoc(body, "NETSTAB_NETPLAN"))["network"]["ethernets"]["eth0"]
            return
        want = dict(re.findall(r"^want_(mtu|addr)=(\S+)$", body, re.MULTILINE))
        have = {"mtu": str(guest.network["mtu"]), "addr": guest.network["addresses"][0]}
        if want != have:
            self.errors.append(f"{step}: the guest runs {have}, the check wants {want}")

    def _on_guest(self, step: Step, guest: Guest, body: str, stdin: str) -> None:
        wanted = re.findall(r"^check (\S+) http", body, re.MULTILINE)
        if wanted and not set(wanted) <= guest.serves:
            self.errors.append(f"{step}: the mirror serves {sorted(guest.serves)}, the health check wants {sorted(wanted)}")
        elif "NETSTAB_REGISTRIES" in body:
            guest.registries = heredoc(body, "NETSTAB_REGISTRIES")
        elif "registries.yaml removed" in body:
            guest.registries = None
        elif "INSTALL_K3S_VERSION=" in body:
            guest.k3s = (body, stdin)
        elif PROBE_INSTALL in body:
            guest.probe, guest.probe_installs = yaml.safe_load(heredoc(body, "NETSTAB_FILE_EOF")), guest.probe_installs + 1
        elif PROBE_REMOVE in body:
            guest.probe, guest.probe_installs = None, 0

    def _gateway(self, step: Step, host: str, body: str) -> None:
        header = GATEWAY_HEADER.search(body)
        assert header is not None
        action, _flavor, stack = header.groups()
        if action == "apply":
            self.gateway[host] = stack
        elif action == "remove" and self.gateway.get(host) == stack:
            del self.gateway[host]
        elif action == "verify" and self.gateway.get(host) != stack:
            self.errors.append(f"{step}: verify fails on {host}: no rules of stack {stack}")

    # ---------------------------------------------------------------- reading the end state

    def guest(self, name: str) -> Guest:
        matches = [g for g in self.guests.values() if g.name == name]
        assert len(matches) == 1, f"expected one VM named {name}, found {len(matches)}"
        return matches[0]


def script_of(command: str) -> str:
    """The script inside `[sudo -n] sh -c '<script>'` (components/render/shell.py)."""
    argv = shlex.split(command)
    return argv[argv.index("-c") + 1]


def heredoc(body: str, marker: str) -> str:
    found = re.search(rf"<<'{marker}'\n(.*?)^{marker}$", body, re.DOTALL | re.MULTILINE)
    assert found, f"no {marker} heredoc in the script"
    return found.group(1)


def proxmox_host(recording: Recording) -> str:
    provider: Registered = next(r for r in recording.resources if r.type == "pulumi:providers:proxmoxve")
    return str(urlparse(str(unwrap(provider.inputs["endpoint"]))).hostname)


def first_up(recording: Recording) -> World:
    """The world after the first `pulumi up` of this recording, from nothing."""
    world = World(proxmox_host(recording)).run(plan(Recording(), recording, "up"))
    assert not world.errors, "the first up fails in the model:\n" + "\n".join(world.errors)
    return world
