"""The guest ring's VM image, built by the project from Debian's packages (docs/guest.md).

`debootstrap` Debian 12 (bookworm) from the apt mirror this machine already uses, with cloud-init,
netplan, the guest agent, sshd, sudo and a kernel; the tree becomes an ext4 disk (`mkfs.ext4 -d`,
no bootloader: qemu boots the tree's kernel and initrd with `root=/dev/vda`). Cached under
/var/cache/netstab/guest/<key>, the key a hash of everything the build takes (suite, mirror,
packages, the ring's apt source, this recipe's version): a new package list builds a new image.

Offline packages: every .deb debootstrap fetched becomes a flat apt repository next to the image
(`dpkg-scanpackages`), which the ring serves on the lab gateway; the image's only apt source is that
repository. `curl`, which the rendered user-data asks for, is fetched but removed from the image,
so cloud-init's `packages` really installs it from the gateway, with no internet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import topology as lab_topology

CACHE_ROOT = Path(os.environ.get("NETSTAB_GUEST_CACHE", "/var/cache/netstab/guest"))
SUITE = "bookworm"
RECIPE = 2  # bump when the build steps below change what the image holds
# What the ring needs in the guest; cloud-init's own dependencies come with it.
PACKAGES = (
    "linux-image-amd64", "systemd-sysv", "udev", "dbus", "systemd-resolved", "cloud-init", "netplan.io",
    "qemu-guest-agent", "openssh-server", "sudo", "python3",
    # debootstrap resolves no virtual packages: python3-cryptography needs python3-cffi-backend-api-*
    "python3-cffi-backend", "iproute2", "iputils-ping", "ca-certificates", "locales",
)
# Fetched into the offline repository but not installed: cloud-init's `packages` installs them.
REPO_ONLY = ("curl",)
REPO_PORT = 80
REPO_URL = f"http://{lab_topology.GATEWAY_VM_IP}:{REPO_PORT}/"
DISK_SIZE = "3G"
NEEDS_BYTES = 4 * 1024**3  # tree + disk + .debs, with room
TOOLS = {"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs", "dpkg-scanpackages": "dpkg-dev"}

# The ring's system config (not user-data): NoCloud only; keep the ring's apt source rather than
# let cc_apt_configure write Debian's default mirror into sources.list (no internet in the lab); netplan renders.
CLOUD_CFG = """# netstab guest ring (lab/guest_image.py)
datasource_list: [NoCloud, None]
apt:
  preserve_sources_list: true
system_info:
  network:
    renderers: [netplan]
"""


class RingError(RuntimeError):
    """What stops the guest ring, in one line a person can act on."""


@dataclass(frozen=True)
class Image:
    directory: Path
    disk: Path  # raw ext4, never written by a boot (each boot gets a qcow2 overlay)
    kernel: Path
    initrd: Path
    repo: Path  # the flat apt repository the ring serves on the gateway
    manifest: dict[str, object]
    built_s: float | None  # None: taken from the cache


def debian_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The first Debian mirror this machine's apt uses for bookworm (deb822 or one-line format)."""
    for path in sorted((sources / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#"))
            if SUITE in fields.get("Suites", "").split() and "deb" in fields.get("Types", "").split():
                return fields["URIs"].split()[0]
    for path in [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.exists() else []:
            words = [w for w in line.split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    raise RingError(f"no apt source for Debian {SUITE} in {sources}: the guest image is built from Debian's packages")


def cache_key(mirror: str) -> str:
    recipe = {"suite": SUITE, "mirror": mirror, "packages": sorted(PACKAGES), "repo_only": sorted(REPO_ONLY),
              "repo": REPO_URL, "cloud_cfg": CLOUD_CFG, "disk": DISK_SIZE, "recipe": RECIPE}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def require_tools() -> None:
    missing = [f"{tool} (Debian package {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        raise RingError(f"missing {', '.join(missing)}: run `make vm-deps` as root")
    if os.geteuid() != 0:
        raise RingError("the guest ring builds its image and lab namespaces as root: run `make vm-test` as root")


def require_space(where: Path, needs: int = NEEDS_BYTES) -> None:
    probe = where
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needs:
        raise RingError(f"no space for the guest image: {free / 1024**3:.1f} GiB free under {probe}, the build needs {needs / 1024**3:.0f} GiB "
                        f"(set NETSTAB_GUEST_CACHE to a roomier place)")


def _image(directory: Path, built_s: float | None) -> Image:
    manifest = json.loads((directory / "manifest.json").read_text())
    return Image(directory, directory / "root.raw", directory / "vmlinuz", directory / "initrd.img", directory / "repo", manifest, built_s)


def ensure(log: Path | None = None) -> Image:
    """The cached image for today's package list, built first if missing."""
    require_tools()
    mirror = debian_mirror()
    directory = CACHE_ROOT / cache_key(mirror)
    if (directory / "manifest.json").exists():
        return _image(directory, None)
    require_space(CACHE_ROOT)
    started = time.monotonic()
    work = CACHE_ROOT / f".build-{directory.name}-{os.getpid()}"
    _sweep_builds()
    work.mkdir(parents=True)
    log = log or CACHE_ROOT / f"build-{directory.name}.log"
    log.write_text("")
    try:
        _build(work, mirror, log)
        shutil.rmtree(work / "tree")
        work.rename(directory)
    finally:
        _unmount_under(work / "tree")
        shutil.rmtree(work, ignore_errors=True)
    return _image(directory, time.monotonic() - started)


def _sweep_builds() -> None:
    """Builds left by an interrupted run (their mounts first)."""
    for stale in CACHE_ROOT.glob(".build-*") if CACHE_ROOT.exists() else []:
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        _unmount_under(stale / "tree")
        shutil.rmtree(stale, ignore_errors=True)


def _unmount_under(tree: Path) -> None:
    prefix = str(tree.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def _run(argv: list[str], log: Path, what: str, timeout: float = 1800) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(["nice", "-n", "10", *argv], stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-3:]
        raise RingError(f"the guest image build failed at {what} ({done.returncode}); see {log}: {' | '.join(tail)}")


def _build(work: Path, mirror: str, log: Path) -> None:
    tree, debs, repo = work / "tree", work / "debs", work / "repo"
    for d in (debs, repo):
        d.mkdir()
    include = ",".join((*PACKAGES, *REPO_ONLY))
    _run(["debootstrap", "--variant=minbase", f"--include={include}", f"--cache-dir={debs}", SUITE, str(tree), mirror], log, "debootstrap")
    _run(["chroot", str(tree), "dpkg", "--purge", *REPO_ONLY], log, "removing the repository-only packages")
    _unmount_under(tree)
    # debootstrap retries a failed configure and may still exit 0: every package must be configured
    audit = subprocess.run(["chroot", str(tree), "dpkg", "--audit"], capture_output=True, text=True, check=False)
    if audit.stdout.strip():
        raise RingError(f"the guest image build left packages unconfigured (see {log}): {audit.stdout.strip().splitlines()[0]}")
    for deb in debs.glob("*.deb"):
        shutil.move(deb, repo / deb.name)
    with open(repo / "Packages", "w") as packages:
        done = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo, stdout=packages, stderr=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RingError("the guest image build failed at dpkg-scanpackages")
    _release(repo)
    _configure(tree)
    boot = tree / "boot"
    shutil.copy(next(boot.glob("vmlinuz-*")), work / "vmlinuz")
    shutil.copy(next(boot.glob("initrd.img-*")), work / "initrd.img")
    _run(["mkfs.ext4", "-q", "-F", "-L", "netstab-root", "-d", str(tree), str(work / "root.raw"), DISK_SIZE], log, "mkfs.ext4 -d")
    versions = _versions(tree)
    (work / "manifest.json").write_text(json.dumps({"suite": SUITE, "mirror": mirror, "packages": list(PACKAGES),
                                                    "repo_only": list(REPO_ONLY), "repo_url": REPO_URL, "versions": versions}, indent=1))


def _release(repo: Path) -> None:
    """A flat repository's Release (unsigned: the image trusts this source), so apt reads it without
    warning about a missing Release file (apt's sources.list(5): flat repository format)."""
    packages = (repo / "Packages").read_bytes()
    (repo / "Release").write_text(
        "Origin: netstab-guest-ring\nLabel: netstab-guest-ring\nSuite: ring\nCodename: ring\nArchitectures: amd64 all\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        f"SHA256:\n {hashlib.sha256(packages).hexdigest()} {len(packages)} Packages\n")


def _configure(tree: Path) -> None:
    (tree / "etc/fstab").write_text("/dev/vda / ext4 defaults,errors=remount-ro 0 1\n")
    (tree / "etc/apt/sources.list").write_text(f"# the netstab guest ring's offline repository, served on the lab gateway\ndeb [trusted=yes] {REPO_URL} ./\n")
    for stale in (tree / "var/lib/apt/lists").glob("*"):
        if stale.is_file():
            stale.unlink()
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    # no host key ships in the image: cloud-init installs the pinned one (as on a cloud image)
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc/machine-id").write_text("")
    (tree / "etc/cloud/cloud.cfg.d/90-netstab-ring.cfg").write_text(CLOUD_CFG)
    (tree / "etc/hostname").write_text("localhost\n")
    # the locale cloud-init's Debian distro sets (en_US.UTF-8), already generated: cc_locale need not regenerate it at boot
    (tree / "etc/default/locale").write_text("LANG=en_US.UTF-8\n")
    locale_gen = tree / "etc/locale.gen"
    locale_gen.write_text(locale_gen.read_text() + "\nen_US.UTF-8 UTF-8\nC.UTF-8 UTF-8\n")
    with contextlib.suppress(FileNotFoundError):
        subprocess.run(["nice", "-n", "10", "chroot", str(tree), "locale-gen"], capture_output=True, check=False, timeout=300)
    for unit in ("systemd-networkd", "systemd-resolved"):
        subprocess.run(["chroot", str(tree), "systemctl", "enable", unit], capture_output=True, check=False, timeout=60)


def _versions(tree: Path) -> dict[str, str]:
    done = subprocess.run(["chroot", str(tree), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"], capture_output=True, text=True, check=False)
    installed = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return {p: installed.get(p, "?") for p in ("cloud-init", "netplan.io", "qemu-guest-agent", "openssh-server", "systemd", "python3",
                                               "linux-image-amd64")}


