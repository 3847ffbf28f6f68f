"""Boot the guest image as Proxmox boots a netstab node, on the lab's VM subnet (docs/guest.md).

qemu-system-x86_64 (KVM when it initializes, TCG otherwise) with: the node's rendered user-data
(the host key installed the way the program installs it), network-config and a meta-data on a
NoCloud `cidata` ISO on ide2, as Proxmox's cloud-init drive; a virtio NIC with the node's MAC on a
tap in the lab gateway's VM-subnet bridge (lab/topology.py: the gateway, NAT and the black hole
beyond it); the guest agent on a virtio-serial port named org.qemu.guest_agent.0 behind a unix
socket named as Proxmox names it (<vmid>.qga); a QMP socket; the serial console in a file.

Everything the ring starts is named by PREFIX and lives under RUN_ROOT/<pid>: a run cut off (even
by SIGKILL) is swept by the next one (its namespaces by the Topology, its qemu by pidfile); qemu
also dies with the process that started it (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import NodeConfig, StackConfig, parse_config
from components.hostkeys import generate
from components.render.cloudinit import install_host_key, network_config, user_data
from components.stack import read_stack_file, stack_file
from lab import topology as lab_topology
from lab.guest_agent import AgentError, guest_exec, qga, qmp
from lab.guest_image import REPO_PORT, Image, RingError
from lab.netns import Topology, wait_for_port

PREFIX = "nstvm-"
RUN_ROOT = Path("/run/netstab-guest")
NODE = "cp1"
MEMORY_MB = 1024
BOOT_TIMEOUT_S = int(os.environ.get("NETSTAB_GUEST_BOOT_TIMEOUT", "900"))
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "genisoimage": "genisoimage",
         "ssh": "openssh-client", "ssh-keyscan": "openssh-client", "ssh-keygen": "openssh-client", "nft": "nftables"}
FINISHED = " finished at "  # cloud-init's final message on the console: "[time] cloud-init[pid]: Cloud-init v. X finished at ..."
_PR_SET_PDEATHSIG = 1


def require_tools() -> None:
    missing = sorted({f"{tool} (Debian package {package})" for tool, package in TOOLS.items() if not shutil.which(tool)})
    if missing:
        raise RingError(f"missing {', '.join(missing)}: run `make vm-deps` as root")


def ring_config(public_key: str) -> StackConfig:
    """The homelab stack, its login key replaced by the ring's own (whose private half the ring holds)."""
    raw, _ = read_stack_file(stack_file("homelab"))
    raw["ssh"] = {**raw["ssh"], "publicKeys": [public_key]}
    return parse_config(raw)


@dataclass(repr=False)
class Guest:
    config: StackConfig
    topo: Topology
    run_dir: Path
    image: Image
    host_public_key: str  # the pinned host key, authorized_keys format
    client_key: Path
    known_hosts: Path
    repo_log: Path
    console: Path
    boot_s: float = 0.0
    accelerator: str = "?"
    fallbacks: list[str] = field(default_factory=list)  # why an accelerator before the one that ran did not
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Guest({NODE}, {self.accelerator}, run_dir={self.run_dir})"

    @property
    def node(self) -> NodeConfig:
        return next(n for n in self.config.nodes if n.name == NODE)

    @property
    def qga(self) -> Path:
        return self.run_dir / f"{self.node.vm_id}.qga"

    @property
    def qmp(self) -> Path:
        return self.run_dir / f"{self.node.vm_id}.qmp"

    def sh(self, script: str, timeout: float = 120) -> dict[str, Any]:
        """`script` as root in the guest through its agent: exitcode, out-data, err-data."""
        result = guest_exec(self.qga, ["/bin/sh", "-s"], script.encode(), timeout)
        if not result.get("exited"):
            raise AgentError(f"the guest did not finish within {timeout}s: {script[:200]}")
        return result

    def ssh(self, command: str, input_text: str | None = None, timeout: float = 180, known_hosts: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`command` as ssh.user, from the gateway's VM-subnet side, the host key checked strictly against the pin."""
        return self.topo.run("gw", "ssh", *ssh_options(self.client_key, known_hosts or self.known_hosts), f"{self.config.ssh.user}@{self.node.ip}",
                             command, check=False, timeout=timeout, input_text=input_text)


def ssh_options(key: Path, known_hosts: Path) -> list[str]:
    return ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=15", "-o", "LogLevel=ERROR"]


def sweep_stale() -> list[str]:
    """qemu processes and run directories of rings whose process is gone (namespaces: the Topology)."""
    swept = []
    for run_dir in RUN_ROOT.glob("*") if RUN_ROOT.exists() else []:
        if run_dir.name.isdigit() and Path(f"/proc/{run_dir.name}").exists():
            continue
        pidfile = run_dir / "qemu.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if PREFIX.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGKILL)
                swept.append(f"qemu {pid}")
        shutil.rmtree(run_dir, ignore_errors=True)
        swept.append(str(run_dir))
    return swept


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _seed(guest: Guest, work: Path, host_private_key: str) -> Path:
    """The NoCloud drive: user-data and network-config as the program renders them; meta-data as
    Proxmox writes it for custom snippets (an instance-id hashed from the documents)."""
    seed = work / "seed"
    seed.mkdir()
    node, config = guest.node, guest.config
    documents = {"user-data": install_host_key(user_data(node, config.ssh), host_private_key, guest.host_public_key),
                 "network-config": network_config(node, config.network)}
    instance = hashlib.sha1("".join(documents.values()).encode()).hexdigest()
    documents["meta-data"] = f"instance-id: {instance}\n"
    for name, text in documents.items():
        (seed / name).write_text(text)
    iso = work / "seed.iso"
    done = subprocess.run(["genisoimage", "-quiet", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
                           *(str(seed / n) for n in documents)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RingError(f"genisoimage could not write the cidata drive: {done.stderr.strip()}")
    return iso


def _wire(topo: Topology, tap: str) -> None:
    """The lab as built, cp1's namespace unplugged, and the VM's tap on the gateway's VM-subnet bridge."""
    lab_topology.build(topo)
    topo.run("gw", "ip", "link", "del", f"p-{NODE}")
    topo.run("gw", "ip", "tuntap", "add", "dev", tap, "mode", "tap")
    topo.run("gw", "ip", "link", "set", tap, "mtu", str(lab_topology.VM_MTU), "master", "br0", "up")


# KVM first, as Proxmox runs; TCG when KVM does not start (no /dev/kvm, or a nested KVM without
# virtualization extensions that opens but aborts the vCPU, as on this machine).
ACCELERATORS = (("kvm", "host"), ("tcg", "max"))
KVM_GRACE_S = 8


def _qemu_argv(guest: Guest, overlay: Path, iso: Path, tap: str, accel: str, cpu: str) -> list[str]:
    node, image = guest.node, guest.image
    return [
        "nice", "-n", "10", "qemu-system-x86_64", "-name", f"{PREFIX}{node.name}", "-accel", accel,
        "-machine", "pc", "-cpu", cpu, "-smp", "2", "-m", str(MEMORY_MB), "-nodefaults", "-display", "none", "-no-user-config",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", "root=/dev/vda rw console=ttyS0",
        "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe",
        "-drive", f"file={iso},if=ide,index=2,media=cdrom,format=raw",
        "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no", "-device", f"virtio-net-pci,netdev=net0,mac={node.mac}",
        "-chardev", f"socket,id=qga0,path={guest.qga},server=on,wait=off",
        "-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
        "-qmp", f"unix:{guest.qmp},server=on,wait=off",
        "-serial", f"file:{guest.console}", "-pidfile", str(guest.run_dir / "qemu.pid"),
    ]


def _wait_for_cloud_init(guest: Guest, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert guest.proc is not None
        if guest.proc.poll() is not None:
            log = (guest.run_dir / f"qemu-{guest.accelerator}.log").read_text(errors="replace").strip().splitlines()
            raise RingError(f"qemu exited ({guest.proc.returncode}) before cloud-init finished: {log[-1] if log else 'no output'}")
        text = guest.console.read_text(errors="replace") if guest.console.exists() else ""
        if any("Cloud-init v." in line and FINISHED in line for line in text.splitlines()):
            return
        time.sleep(2)
    text = guest.console.read_text(errors="replace") if guest.console.exists() else ""
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "nothing on the serial console")
    if "Cloud-init v." not in text:
        raise RingError(f"the VM never reached cloud-init within {timeout_s:.0f}s (console {guest.console}: {last[:160]})")
    raise RingError(f"cloud-init started but did not finish within {timeout_s:.0f}s (console {guest.console}: {last[:160]})")


def _start_qemu(guest: Guest, topo: Topology, overlay: Path, iso: Path, tap: str) -> float:
    """qemu started in the gateway's namespace (for its tap), with the first accelerator that keeps
    running; when it started (monotonic)."""
    for accel, cpu in ACCELERATORS:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(guest.image.disk), str(overlay)], check=True)
        log = guest.run_dir / f"qemu-{accel}.log"
        started = time.monotonic()
        with open(log, "wb") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", topo.ns("gw"), *_qemu_argv(guest, overlay, iso, tap, accel, cpu)],
                                    stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent, start_new_session=True)
        topo.processes.append(proc)
        guest.proc, guest.accelerator = proc, accel
        if accel == ACCELERATORS[-1][0]:
            return started
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(KVM_GRACE_S)
        if proc.poll() is None:
            return started
        lines = log.read_text(errors="replace").strip().splitlines()
        guest.fallbacks.append(f"{accel}: {lines[-1] if lines else proc.returncode}")
        guest.console.unlink(missing_ok=True)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def booted(image: Image, work: Path, boot_timeout_s: float = BOOT_TIMEOUT_S) -> Iterator[Guest]:
    """cp1 booted from its rendered seed, cloud-init finished; everything stopped and removed on exit."""
    require_tools()
    sweep_stale()
    run_dir = RUN_ROOT / str(os.getpid())
    run_dir.mkdir(parents=True, exist_ok=True)
    client_key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netstab-guest-ring", "-f", str(client_key)], check=True)
    config = ring_config(client_key.with_suffix(".pub").read_text().strip())
    host_private, host_public = generate(f"netstab-host-{NODE}")
    known_hosts = work / "known_hosts"
    guest = Guest(config, Topology(PREFIX), run_dir, image, host_public, client_key, known_hosts, work / "repo.log", run_dir / "console.log")
    known_hosts.write_text(f"{guest.node.ip} {host_public}\n")
    tap = f"tap-{NODE}"
    try:
        with guest.topo as topo:
            _wire(topo, tap)
            topo.start("gw", sys.executable, "-m", "http.server", str(REPO_PORT), "--bind", lab_topology.GATEWAY_VM_IP,
                       "--directory", str(image.repo), log=guest.repo_log)
            wait_for_port(topo, "gw", lab_topology.GATEWAY_VM_IP, REPO_PORT)
            iso = _seed(guest, work, host_private)
            overlay = work / "root.qcow2"
            started = _start_qemu(guest, topo, overlay, iso, tap)
            _wait_for_cloud_init(guest, boot_timeout_s)
            guest.boot_s = time.monotonic() - started
            kvm = qmp(guest.qmp, "query-kvm") or {}
            guest.accelerator = "kvm" if kvm.get("enabled") else "tcg"  # what qemu says it runs
            qga(guest.qga, "guest-ping", timeout=60)
            yield guest
    finally:
        if guest.proc and guest.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(guest.proc.pid, signal.SIGKILL)
            guest.proc.wait(10)
        shutil.rmtree(run_dir, ignore_errors=True)


def prepare() -> Image:
    """Every tool the ring needs, then the image (built or cached): what `make vm-test` runs first."""
    from lab import guest_image

    guest_image.require_tools()
    require_tools()
    return guest_image.ensure()


if __name__ == "__main__":
    try:
        prepared = prepare()
    except RingError as failed:
        print(f"guest ring: {failed}", file=sys.stderr)
        raise SystemExit(1) from None
    state = "taken from the cache" if prepared.built_s is None else f"built in {prepared.built_s:.0f}s"
    versions = prepared.manifest["versions"]
    print(f"guest ring: image {prepared.directory} {state} (cloud-init {versions['cloud-init']}, "  # type: ignore[index]
          f"netplan.io {versions['netplan.io']})")  # type: ignore[index]
