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
  still needs its host to answer;
- K3s: a server install starts a cluster (a new identity) unless the guest already serves one; an
  agent install joins the cluster of the server at its K3S_URL. The server script beside a running
  k3s-agent, or the agent script on a running server, is an error (both units on one node; the agent's
  rejoin check removes /var/lib/rancher/k3s/agent under the server). The kubeconfig step reads the
  cluster of the guest it runs on; the Kubernetes provider points where the kubeconfig pointed when it
  was last created or updated, and its objects land in that cluster;
- readiness: a VM reboot or rebuild takes its node down (K3s not serving, not Ready) until a step
  waits for it (the nodes-Ready check, a node's ready step); a step that needs the API (a drain, a
  Kubernetes object, the cluster or secret gate) while the server is down is an error: bpg waits for
  the VM to run, not for K3s [§1.2]. Every restart is recorded with the step that saw it back, so
  `restarted_at_once` can read from the dependency graph how many nodes may be down together;
- through the server's guest agent: a drain cordons a node (unless the Proxmox host keeps the restart
  key it came back with), a ready step sees it back and uncordons it, a member step's delete removes
  its Node object; a node's password is written once per VM and must match the one its cluster
  holds; the authorized keys step sets the login user's keys (cloud-init only adds them, at a new
  instance) and every SSH step needs its login key there; the disk step grows the root filesystem
  to the disk (cloud-init does it at every boot).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from components.config.stack import PLACEHOLDER_MARK
from components.render.gateway_measure import MEASURE_SCHEMA
from components.render.mirror import CONFIG_DIR as MIRROR_CONFIG_DIR
from tests.conftest import COMMAND, DOWNLOAD, DYNAMIC, SNIPPET, VM
from tests.lifecycle.engine import Plan, Step, _edges, plan
from tests.lifecycle.providers import K8S_PROVIDER, dynamic_provider
from tests.lifecycle.values import changed_paths, unwrap
from tests.program.harness import DUMMY_SECRETS, STAND_IN, Recording, Registered

PROBE_INSTALL, PROBE_REMOVE = "# netstab: install or update the continuous probe", "# netstab: remove the continuous probe"
GATEWAY_HEADER = re.compile(r"^# netstab gateway (apply|remove|verify) \((\w+)\) of stack ([^\s:]+)", re.MULTILINE)
K3S_ROLE = re.compile(r'install\.sh" (server|agent)\b')
K3S_URL = re.compile(r"K3S_URL='?https://([^:/']+):")
# what a VM update changes that makes bpg power the VM off or reboot it (facts §1.1, §1.2)
REBOOTS = ("cpu", "memory")
POWERS_OFF = (("disks", "*", "datastoreId"), ("initialization", "datastoreId"))
# the API gates that read the cluster (a DYNAMIC provider class -> what the table calls it)
API_READERS = ("components.clustergate.ClusterGateProvider", "components.secretgate.SecretGateProvider")


# private key -> its public half, for the keys the ring uses (the dummy secret, and the rotated pair)
# (the ring runs the example stack with its placeholder keys replaced by stand-ins: tests/program/harness.py)
HOMELAB_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHomelabReplaceWithYourOwnPublicKey0000000 netstab@homelab".replace(PLACEHOLDER_MARK, STAND_IN)
ROTATED_PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ndummy-ssh-KEY-rotated-44e1\n-----END OPENSSH PRIVATE KEY-----"
ROTATED_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedKeyOfTheLifecycleRingOfNetstab0000 ops@homelab"
KEY_PAIRS = {DUMMY_SECRETS["sshPrivateKey"]: HOMELAB_PUBLIC_KEY, ROTATED_PRIVATE_KEY: ROTATED_PUBLIC_KEY}
GROW_ROOT = re.compile(r"^# netstab grow the root filesystem of ", re.MULTILINE)
AUTHORIZED_KEYS = re.compile(r"^# netstab authorized keys of \S+$", re.MULTILINE)
WANTED_KEYS = re.compile(r"^printf '%s\\n' (.*) > \"\$work/wanted\"$", re.MULTILINE)
STAMP_CHECK = re.compile(r'^if \[ "\$\(cat (\S+) 2>/dev/null\)" = (\w+) \]; then$', re.MULTILINE)
STAMP_KEEP = re.compile(r"printf '%s\\n' (\w+) > (\S+)$", re.MULTILINE)
KUBE_VIP_ADDRESS = re.compile(r"- name: address\n\s+value: \"?([\d.]+)")
KUBE_STEP = re.compile(r"^# netstab (drain|ready|remove|forget) node (\S+)$", re.MULTILINE)
VIP_WAIT = "/cacerts -o /dev/null; do"  # an install that waits, bounded, until the API address answers (render/k3s.py)
NODES_READY = re.compile(r"^  for node in (.*); do$", re.MULTILINE)


def restarts(path: tuple[str, ...]) -> bool:
    """A changed VM input bpg applies with a reboot or a power-off (facts §1.1, §1.2)."""
    return path[0] in REBOOTS or any(len(path) >= len(p) and all(a in ("*", b) for a, b in zip(p, path, strict=False)) for p in POWERS_OFF)


@dataclass
class Restart:
    node: str
    vm: str  # the URN of what took it down: its VM (a reboot, a rebuild) or its K3s install (an HA server's K3s restart)
    down: str  # the step that restarted or rebuilt it
    back: str | None = None  # the first later step that waited until it was Ready again


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
    service: str | None = None  # the K3s unit it runs: k3s (a server) or k3s-agent
    cluster: str | None = None  # the identity of the K3s cluster it serves or joined
    ready: bool = False  # K3s serving and the node Ready, as a step last saw it
    cordoned: bool = False  # by a netstab drain, until its ready step uncordons it
    node_password: str | None = None  # /etc/rancher/node/password: written by the first install on this VM
    authorized: set[str] = field(default_factory=set)  # the login user's authorized_keys
    managed: set[str] = field(default_factory=set)  # the keys netstab's keys step installed
    disk_gb: int = 0  # its disk, as Proxmox sized it
    px_node: str = ""  # the Proxmox node it runs on
    k3s_config: dict[str, Any] | None = None  # /etc/rancher/k3s/config.yaml, as an HA server install last wrote it
    fs_gb: int = 0  # its root filesystem (grown to the disk by cloud-init's growpart at every boot, or the disk step)

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
    clusters: int = 0  # cluster identities started so far
    kubeconfig_from: str | None = None  # the cluster the kubeconfig step last read
    provider_cluster: str | None = None  # the cluster the Kubernetes provider points at
    objects: dict[str, set[str]] = field(default_factory=dict)  # cluster -> Kubernetes objects created in it
    restarts: list[Restart] = field(default_factory=list)  # the last run's node restarts
    node_passwords: dict[tuple[str, str], str] = field(default_factory=dict)  # (cluster, node) -> the password it first joined with
    stamps: dict[str, str] = field(default_factory=dict)  # files on the Proxmox host: the restart key each node came back with
    drained: list[str] = field(default_factory=list)  # the nodes the last run cordoned and drained
    node_objects: set[tuple[str, str]] = field(default_factory=set)  # (cluster, node): the Node objects the API holds
    px_nodes: dict[str, str] = field(default_factory=dict)  # every Proxmox node's SSH address -> its name (HA stacks)
    home: str = ""  # the Proxmox node at the endpoint (proxmox.node)
    etcd: dict[str, set[str]] = field(default_factory=dict)  # cluster -> its embedded etcd members (node names)
    vip: dict[str, str] = field(default_factory=dict)  # cluster -> the address kube-vip announces from a live server

    def _vol(self, node: str | None, volume: str) -> str:
        """A volume id on one Proxmox node (each node has its own `local` datastore); the home node's as before."""
        return volume if not self.px_nodes or node in (None, "", self.home) else f"{node}|{volume}"

    def run(self, steps: Plan | list[Step]) -> World:
        self.errors, self.ran, self.restarts, self.drained = [], [], [], []
        for step in steps.steps if isinstance(steps, Plan) else steps:
            handler = {SNIPPET: self._file, DOWNLOAD: self._file, VM: self._vm, COMMAND: self._command,
                       K8S_PROVIDER: self._k8s_provider, DYNAMIC: self._dynamic}.get(step.res.type)
            if step.res.type.startswith("kubernetes:"):
                handler = self._k8s_object
            if handler is not None and not step.skipped:
                handler(step)
        return self

    # ---------------------------------------------------------------- files

    def _file(self, step: Step) -> None:
        inputs = step.res.inputs
        raw = inputs.get("sourceRaw")
        name = raw["fileName"] if raw else inputs["fileName"]
        volume = self._vol(inputs.get("nodeName"), f"{inputs['datastoreId']}:{inputs['contentType']}/{name}")
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
            gone = self.guests.pop(step.res.urn, None)
            if gone is not None and gone.service and step.replacing:
                self.restarts.append(Restart(gone.name, step.res.urn, step.name))
        elif step.op == "create":
            vm_id = int(inputs["vmId"])
            if any(g.vm_id == vm_id for g in self.guests.values()):
                self.errors.append(f"{step}: VM {vm_id} already exists")
                return
            init, node = inputs["initialization"], inputs.get("nodeName") or self.home
            image = next((self._vol(node, d["fileId"]) for d in inputs["disks"] if d.get("fileId")), None)
            guest = Guest(inputs["name"], vm_id, int(inputs["networkDevices"][0]["mtu"]),
                          (self._vol(node, init["userDataFileId"]), self._vol(node, init["networkDataFileId"])), image,
                          disk_gb=int(inputs["disks"][0]["size"]), px_node=node)
            self.guests[step.res.urn] = guest
            if image is not None and image not in self.files:
                self.errors.append(f"{step}: VM {vm_id} cannot import its disk, {image} is gone")
                return
            self._start(guest, str(step))
        else:
            assert step.old is not None
            guest = self.guests[step.res.urn]
            guest.nic_mtu = int(inputs["networkDevices"][0]["mtu"])  # hot-plugged [§1.3]
            guest.disk_gb = int(inputs["disks"][0]["size"])  # grown in place, no reboot [§1.1]
            if any(restarts(p) for p in changed_paths(step.old.inputs, inputs)):
                if guest.service:
                    guest.ready = False
                    self.restarts.append(Restart(guest.name, step.res.urn, step.name))
                self._start(guest, f"{step} (reboot)")

    def _start(self, guest: Guest, why: str) -> None:
        missing = [f for f in guest.snippets if f not in self.files]
        if missing:
            self.errors.append(f"{why}: VM {guest.vm_id} cannot start, {', '.join(missing)} is gone")
            guest.network = None
            return
        guest.fs_gb = guest.disk_gb  # cloud-init's growpart runs at every boot
        user, network = guest.snippets
        instance = self.files[user] + self.files[network]
        if instance != guest.instance:  # a new cloud-init instance: network applied, host key installed or made
            guest.instance, guest.instances = instance, guest.instances + 1
            guest.network = yaml.safe_load(self.files[network])["ethernets"]["eth0"]
            config = yaml.safe_load(self.files[user])
            written = config.get("write_files", [])
            guest.serves = frozenset(PurePosixPath(f["path"]).stem for f in written if f["path"].startswith(MIRROR_CONFIG_DIR + "/"))
            guest.host_key = config.get("ssh_keys", {}).get("ed25519_public") or f"generated for instance {guest.instances}"
            guest.authorized |= {k for user in config.get("users", []) if isinstance(user, dict) for k in user.get("ssh_authorized_keys", [])}

    # ---------------------------------------------------------------- commands

    def _command(self, step: Step) -> None:
        if step.script is None:
            return
        inputs = step.res.inputs
        host = unwrap(inputs["connection"])["host"]
        body = script_of(step.script)
        self.ran.append(f"{step.op} {step.name} on {host}")
        if host == self.proxmox_host or host in self.px_nodes:
            on = self.px_nodes.get(host, self.home)
            if PROBE_INSTALL in body or PROBE_REMOVE in body:
                self.proxmox_probe = yaml.safe_load(heredoc(body, "NETSTAB_FILE_EOF")) if PROBE_INSTALL in body else None
                return
            kept = STAMP_CHECK.search(body)
            if kept and self.stamps.get(self._vol(on, kept.group(1))) == kept.group(2):
                return  # the node came back with this restart key: nothing to drain
            target = re.search(r"qm guest exec (\d+)", body)
            if target and "qm status" in body and not any(g.vm_id == int(target.group(1)) and g.px_node in ("", on) for g in self.guests.values()):
                start = body.index("if ! qm status")
                kept_anyway = STAMP_KEEP.search(body[start:body.index("\nfi\n", start)])
                if kept_anyway:  # a ready step whose peer does not exist yet keeps the key it was created with
                    self.stamps[self._vol(on, kept_anyway.group(2))] = kept_anyway.group(1)
                return  # the step says the VM is absent and stops
            if target:
                errors = len(self.errors)
                self._in_guest(step, int(target.group(1)), heredoc(body, "NETSTAB_GUEST"), on)
                keep = STAMP_KEEP.search(body)
                if keep and len(self.errors) == errors:
                    self.stamps[self._vol(on, keep.group(2))] = keep.group(1)
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
        elif KEY_PAIRS.get(str(unwrap(unwrap(inputs["connection"]).get("privateKey")))) not in (guest.authorized | {None}):
            self.errors.append(f"{step}: {guest.name} refuses the key the step logs in with (not in authorized_keys)")
        else:
            self._on_guest(step, guest, body, str(unwrap(inputs.get("stdin", ""))))

    def _in_guest(self, step: Step, vm_id: int, body: str, on: str = "") -> None:
        # qm guest exec reaches only the VMs of the Proxmox node it runs on
        guest = next((g for g in self.guests.values() if g.vm_id == vm_id and g.px_node in ("", on or self.home)), None)
        if guest is None or guest.network is None:
            self.errors.append(f"{step}: qm guest exec {vm_id}: no such running VM")
            return
        if "netplan apply" in body:
            guest.network = yaml.safe_load(heredoc(body, "NETSTAB_NETPLAN"))["network"]["ethernets"]["eth0"]
            return
        if GROW_ROOT.search(body):
            guest.fs_gb = guest.disk_gb
            return
        if AUTHORIZED_KEYS.search(body):
            wanted_line = WANTED_KEYS.search(body)
            assert wanted_line, f"{step}: an authorized keys step without its keys"
            wanted = set(shlex.split(wanted_line.group(1)))
            guest.authorized = (guest.authorized - (guest.managed - wanted)) | wanted
            guest.managed = wanted
            return
        kube = KUBE_STEP.search(body)
        if kube:
            self._kube_step(step, guest, kube.group(1), kube.group(2))
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
            self._k3s(step, guest, body, stdin)
        elif PROBE_INSTALL in body:
            guest.probe, guest.probe_installs = yaml.safe_load(heredoc(body, "NETSTAB_FILE_EOF")), guest.probe_installs + 1
        elif PROBE_REMOVE in body:
            guest.probe, guest.probe_installs = None, 0
        elif body.strip() == "cat /etc/rancher/k3s/k3s.yaml":
            self.kubeconfig_from = guest.cluster
        elif NODES_READY.search(body):
            self._nodes_ready(step, guest, re.findall(r"'?([\w.-]+)'?", NODES_READY.search(body).group(1)))  # type: ignore[union-attr]

    # ---------------------------------------------------------------- K3s

    def _k3s(self, step: Step, guest: Guest, body: str, stdin: str) -> None:
        role = K3S_ROLE.search(body)
        assert role, f"{step}: a K3s install with neither server nor agent"
        if role.group(1) == "server":
            if guest.service == "k3s-agent":
                self.errors.append(f"{step}: the server script runs on {guest.name} beside its running k3s-agent")
                return
            conf = yaml.safe_load(heredoc(body, "NETSTAB_CONFIG")) if "NETSTAB_CONFIG" in body else {}
            if conf:  # /etc/rancher/k3s/config.yaml stays until a script writes it again (nothing removes it)
                guest.k3s_config = conf
            if guest.service != "k3s" and conf.get("server"):  # an HA server joins the etcd cluster at `server`
                leader = self._dial(str(urlparse(conf["server"]).hostname), waits=VIP_WAIT in body)
                if leader is None:
                    self.errors.append(f"{step}: {guest.name} joins {conf['server']}, where no quorate K3s server answers")
                    return
                if str(leader.cluster) not in self.etcd:
                    self.errors.append(f"{step}: {guest.name} joins {leader.cluster} at {conf['server']}, which keeps its state in "
                                       "SQLite (a single server, no embedded etcd): there is no etcd cluster to join")
                    return
                if guest.name in self.etcd[str(leader.cluster)]:
                    # k3s-io/k3s pkg/etcd/etcd.go `join`: a member of the same node name (the old VM's) refuses the join
                    self.errors.append(f"{step}: {guest.name} cannot join etcd: a member of node name {guest.name} "
                                       "(its old VM's) is still there, and K3s refuses a duplicate node name")
                    return
                guest.cluster = leader.cluster
                self.etcd[str(leader.cluster)].add(guest.name)
            elif guest.service != "k3s":  # a single server, or cluster-init: a new cluster
                self.clusters += 1
                guest.cluster = f"cluster {self.clusters}"
                if conf.get("cluster-init"):
                    self.etcd[guest.cluster] = {guest.name}
            elif str(guest.cluster) in self.etcd and guest.k3s is not None and (_invocation(guest.k3s[0]), guest.k3s[1]) != (_invocation(body), stdin):
                # the install restarts K3s with its new invocation: this etcd member is down until a step sees it back
                guest.ready = False
                self.restarts.append(Restart(guest.name, step.res.urn, step.name))
            guest.service = "k3s"
            announced = KUBE_VIP_ADDRESS.search(heredoc(body, "NETSTAB_KUBE_VIP")) if "NETSTAB_KUBE_VIP" in body else None
            if announced:
                self.vip[str(guest.cluster)] = announced.group(1)
        else:
            if guest.service == "k3s":
                self.errors.append(f"{step}: the agent script runs on the running server {guest.name}: its rejoin check "
                                   "removes /var/lib/rancher/k3s/agent under it")
                return
            url = K3S_URL.search(body)
            assert url, f"{step}: an agent install without K3S_URL"
            server = self._dial(url.group(1), waits=VIP_WAIT in body)
            if server is None:
                self.errors.append(f"{step}: {guest.name} joins {url.group(1)}, where no K3s server runs")
                return
            guest.service, guest.cluster = "k3s-agent", server.cluster
        if guest.node_password is None:  # the script writes it once per VM, from the host key (or, before issue 22, the token)
            guest.node_password = f"from host key {guest.host_key}" if "ssh_host_ed25519_key" in body else f"from token {stdin}"
        assert guest.cluster is not None
        self.node_objects.add((guest.cluster, guest.name))
        held = self.node_passwords.setdefault((guest.cluster, guest.name), guest.node_password)
        if held != guest.node_password:
            self.errors.append(f"{step}: the server refuses {guest.name}: its node password is not the one the cluster holds for it")
        guest.k3s = (body, stdin)

    def server(self) -> Guest | None:
        return next((g for g in self.guests.values() if g.service == "k3s"), None)

    def quorate(self, cluster: str | None) -> bool:
        """Embedded etcd answers while more than half its members run (a cluster without etcd: always)."""
        members = self.etcd.get(str(cluster), set())
        alive = {g.name for g in self.guests.values() if g.service == "k3s" and g.cluster == cluster}
        return not members or 2 * len(members & alive) > len(members)

    def _dial(self, host: str, waits: bool = False) -> Guest | None:
        """The K3s server that answers at `host`: the guest with that address, or (the VIP) a server of the
        cluster whose kube-vip announces it (leader election moves it to a live server) that a step saw
        Ready, or any running one when the dialing script itself waits for the VIP to answer; none
        without etcd quorum."""
        direct = next((g for g in self.guests.values() if g.address == host and g.service == "k3s"), None)
        if direct is not None:
            return direct if self.quorate(direct.cluster) else None
        return next((g for g in self.guests.values() if g.service == "k3s" and (g.ready or waits) and self.vip.get(str(g.cluster)) == host
                     and self.quorate(g.cluster)), None)

    def _api(self, step: Step) -> bool:
        """Whether the server's API answers; an error for the step when it may not."""
        server = self.server()
        if server is None:
            self.errors.append(f"{step}: needs the Kubernetes API, and no K3s server runs")
            return False
        if not self.quorate(server.cluster):
            self.errors.append(f"{step}: needs the Kubernetes API, and etcd of {server.cluster} has lost quorum "
                               f"(members {sorted(self.etcd[str(server.cluster)])})")
            return False
        if not any(g.ready for g in self.guests.values() if g.service == "k3s" and g.cluster == server.cluster):
            self.errors.append(f"{step}: needs the Kubernetes API while {server.name} restarts (nothing waited for its K3s)")
            return False
        return True

    def _back(self, step: Step, guest: Guest) -> None:
        guest.ready = True
        for restart in self.restarts:
            if restart.node == guest.name and restart.back is None:
                restart.back = step.name

    def _nodes_ready(self, step: Step, server: Guest, names: list[str]) -> None:
        for name in names:
            node = next((g for g in self.guests.values() if g.name == name), None)
            if node is None or node.service is None or node.cluster != server.cluster:
                self.errors.append(f"{step}: {name} never becomes Ready in the cluster of {server.name}")
            else:
                self._back(step, node)

    def _kube_step(self, step: Step, server: Guest, action: str, name: str) -> None:
        """A step that runs kubectl on the server through the guest agent: drain a node, or wait for it and uncordon."""
        node = next((g for g in self.guests.values() if g.name == name), None)
        if action == "forget":  # before a new VM of an HA server joins: the etcd member its old VM left goes
            if server.service != "k3s" or (str(server.cluster), name) not in self.node_objects or not self._api(step):
                return  # no cluster here yet, or it never held the node
            if node is not None and node.service == "k3s" and node.cluster == server.cluster:
                return  # a running server (its Node Ready, its lease fresh): the step leaves its live member alone
            self.etcd.get(str(server.cluster), set()).discard(name)
            return
        if action == "remove":
            if server.service == "k3s" and self._api(step):
                self.node_objects.discard((str(server.cluster), name))
                # K3s removes a server's etcd member when its Node object is deleted (see docs/ha.md)
                self.etcd.get(str(server.cluster), set()).discard(name)
                self.node_passwords.pop((str(server.cluster), name), None)
                if node is None:
                    self.errors.append(f"{step}: {name}'s VM went before its Node object was drained and deleted")
            return
        if action == "drain":
            if server.service == "k3s" and node is not None and node.cluster == server.cluster and self._api(step):
                node.cordoned = True
                self.drained.append(node.name)
            return
        if node is None or node.service is None or node.cluster != server.cluster or server.service != "k3s":
            self.errors.append(f"{step}: {name} never becomes Ready in the cluster of {server.name}")
            return
        self._back(step, node)
        node.cordoned = False

    # ---------------------------------------------------------------- Kubernetes

    def _k8s_provider(self, step: Step) -> None:
        if step.op != "delete":
            self.provider_cluster = self.kubeconfig_from

    def _k8s_object(self, step: Step) -> None:
        if step.op == "delete":
            for objects in self.objects.values():
                objects.discard(step.name)
            return
        if self._api(step) and self.provider_cluster is not None:
            self.objects.setdefault(self.provider_cluster, set()).add(step.name)

    def _dynamic(self, step: Step) -> None:
        if step.op != "delete" and dynamic_provider(step.res) in API_READERS:
            self._api(step)

    def check(self, recording: Recording) -> World:
        """What a converged cluster is, beyond the steps' own errors: each node runs the K3s unit of
        its role in the server's cluster, and every Kubernetes object is in that cluster."""
        server = self.server()
        for vm in recording.of_type(VM):
            tags = unwrap(vm.inputs.get("tags")) or []
            if "k3s" not in tags:
                continue
            name, want = vm.inputs["name"], {"server": "k3s", "agent": "k3s-agent"}[tags[2]]
            guest = self.guests.get(vm.urn)
            if guest is None or guest.service != want:
                self.errors.append(f"{name} should run {want}, runs {guest.service if guest else 'nothing'}")
            elif server is None or guest.cluster != server.cluster:
                self.errors.append(f"{name} is not in the cluster of the server")
        api = recording.outputs.get("apiAddress")  # (value, secret)
        api = api[0] if isinstance(api, tuple) else api
        for g in self.guests.values():
            joins = urlparse(str((g.k3s_config or {}).get("server", ""))).hostname
            if g.service == "k3s" and joins and api and joins != api:
                self.errors.append(f"{g.name} still reads a config.yaml that joins {joins} (K3s reads it at every start), "
                                   f"while every client of the stack dials {api}")
        self.errors += [f"{g.name} is left cordoned" for g in self.guests.values() if g.cordoned]
        self.errors += [f"{g.name}'s root filesystem is {g.fs_gb} GB on its {g.disk_gb} GB disk until its next boot"
                        for g in self.guests.values() if g.fs_gb != g.disk_gb]
        configured = {vm.inputs["name"] for vm in recording.of_type(VM)}
        if server is not None:
            members = self.etcd.get(str(server.cluster), set())
            self.errors += [f"etcd of {server.cluster} keeps the member {name}, whose VM is gone" for name in sorted(members - configured)]
            if not self.quorate(server.cluster):
                self.errors.append(f"etcd of {server.cluster} has lost quorum")
            self.errors += [f"{name}'s Node object stays NotReady forever (its VM is gone)" for cluster, name in sorted(self.node_objects)
                            if cluster == server.cluster and name not in configured]
        wanted = {r.name for r in recording.resources if r.type.startswith("kubernetes:") and r.custom}
        held = self.objects.get(server.cluster, set()) if server and server.cluster else set()
        if wanted - held:
            self.errors.append(f"the cluster of the server lacks {sorted(wanted - held)} (the Kubernetes provider points at "
                               f"{self.provider_cluster}, the server serves {server.cluster if server else None})")
        return self

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


def _invocation(body: str) -> str | None:
    """The invocation a K3s install's restart stamp hashes (its `want=` line; the token, on stdin, is hashed beside it)."""
    found = re.search(r"^want=\$\(printf '%s %s' ('[^']*')", body, re.MULTILINE)
    return found.group(1) if found else None


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


def proxmox_nodes(recording: Recording) -> dict[str, str]:
    """Every Proxmox node's SSH address -> its name, as the provider's ssh block lists them."""
    provider: Registered = next(r for r in recording.resources if r.type == "pulumi:providers:proxmoxve")
    ssh = unwrap(provider.inputs.get("ssh")) or {}
    ssh = yaml.safe_load(ssh) if isinstance(ssh, str) else ssh
    return {str(n["address"]): str(n["name"]) for n in ssh.get("nodes", [])}


def first_up(recording: Recording) -> World:
    """The world after the first `pulumi up` of this recording, from nothing."""
    nodes = proxmox_nodes(recording)
    world = World(proxmox_host(recording), px_nodes=nodes, home=nodes.get(proxmox_host(recording), "")).run(plan(Recording(), recording, "up")).check(recording)
    assert not world.errors, "the first up fails in the model:\n" + "\n".join(world.errors)
    return world


def ancestors(recording: Recording) -> dict[str, set[str]]:
    """URN -> everything it waits for, transitively (the engine's dependency graph)."""
    edges = {r.urn: _edges(r) for r in recording.resources}
    memo: dict[str, set[str]] = {}

    def up(urn: str) -> set[str]:
        if urn not in memo:
            memo[urn] = set()
            memo[urn] = {a for e in edges.get(urn, ()) for a in (e, *up(e))}
        return memo[urn]

    return {urn: up(urn) for urn in edges}


def restarted_at_once(world: World, recording: Recording) -> int:
    """The most cluster nodes the last run may have down together: two restarts overlap unless one
    node's disruptive step waits (in the dependency graph, not the model's order) for the step that
    saw the other back; a node nothing saw back overlaps every other."""
    graph = ancestors(recording)
    by_name = {r.name: r.urn for r in recording.resources}
    first = {}
    for r in world.restarts:
        first.setdefault(r.node, r)
    restarts = list(first.values())

    def ordered(a: Restart, b: Restart) -> bool:
        return a.back is not None and by_name.get(a.back) in graph.get(b.vm, set())

    def overlap(a: Restart, b: Restart) -> bool:
        return not (ordered(a, b) or ordered(b, a))

    best = 0
    for mask in range(1, 1 << len(restarts)):
        group = [r for i, r in enumerate(restarts) if mask >> i & 1]
        if all(overlap(a, b) for i, a in enumerate(group) for b in group[i + 1:]):
            best = max(best, len(group))
    return best
