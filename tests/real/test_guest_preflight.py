"""The guest ring's bad input, without a VM (the ring itself is `make vm-test`, tests/guest): a missing
tool, no space, a boot that never reaches cloud-init each stop it with one line saying which."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import guest_image, guest_vm
from lab.guest_image import RingError

REPO = Path(__file__).resolve().parents[2]


def _ring(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.guest_vm"], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), **env})


@pytest.mark.parametrize("hidden,named", [("debootstrap", "debootstrap (Debian package debootstrap)"),
                                          ("qemu-system-x86_64", "qemu-system-x86_64 (Debian package qemu-system-x86)")])
def test_a_missing_tool_stops_the_ring_in_one_line(tmp_path, hidden, named):
    """PATH holds every tool the ring uses but one."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in [*guest_image.TOOLS, *guest_vm.TOOLS, "nice", "chroot", "ip"]:
        if tool != hidden:
            (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
            (bin_dir / tool).chmod(0o755)
    done = _ring({"PATH": str(bin_dir), "NETSTAB_GUEST_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("guest ring: missing ") and named in done.stderr, done.stderr
    assert "make vm-deps" in done.stderr
    assert not (tmp_path / "cache").exists(), "nothing was built"


def test_no_space_for_the_image_names_the_place_and_what_it_needs(tmp_path):
    with pytest.raises(RingError) as caught:
        guest_image.require_space(tmp_path / "cache" / "guest", needs=2**62)
    message = str(caught.value)
    assert message.startswith("no space for the guest image: ") and f"under {tmp_path}," in message and "NETSTAB_GUEST_CACHE" in message
    guest_image.require_space(tmp_path / "cache" / "guest", needs=1)


def _guest(tmp_path: Path, console: str | None) -> guest_vm.Guest:
    guest = guest_vm.Guest.__new__(guest_vm.Guest)
    guest.run_dir, guest.console, guest.accelerator = tmp_path, tmp_path / "console.log", "tcg"
    if console is not None:
        guest.console.write_text(console)
    guest.proc = subprocess.Popen(["sleep", "30"])
    return guest


@pytest.mark.parametrize("console,expected", [
    (None, "the VM never reached cloud-init within 1s (console {console}: nothing on the serial console)"),
    ("[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n",
     "the VM never reached cloud-init within 1s (console {console}: [    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs)"),
    ("[   80.1] cloud-init[325]: Cloud-init v. 22.4.2 running 'init-local' at ...\n[   90.0] systemd[1]: Starting x...\n",
     "cloud-init started but did not finish within 1s (console {console}: [   90.0] systemd[1]: Starting x...)"),
], ids=["silent", "kernel_panic", "cloud_init_hangs"])
def test_a_boot_that_never_finishes_cloud_init_says_how_far_it_got(tmp_path, console, expected):
    guest = _guest(tmp_path, console)
    try:
        with pytest.raises(RingError) as caught:
            guest_vm._wait_for_cloud_init(guest, timeout_s=1)
    finally:
        guest.proc.kill()
        guest.proc.wait()
    assert str(caught.value) == expected.format(console=guest.console)


def test_the_boot_is_ready_at_cloud_inits_final_message_as_the_console_prints_it(tmp_path):
    guest = _guest(tmp_path, "[  221.9] cloud-init[452]: Cloud-init v. 22.4.2 finished at Sun, 06 Dec 2026 05:50:12 +0000. Datasource DataSourceNoCloud\n")
    try:
        guest_vm._wait_for_cloud_init(guest, timeout_s=5)
    finally:
        guest.proc.kill()
        guest.proc.wait()


def test_qemu_exiting_early_is_reported_with_its_last_line(tmp_path):
    guest = _guest(tmp_path, "")
    guest.proc.kill()
    guest.proc.wait()
    (tmp_path / "qemu-tcg.log").write_text("qemu-system-x86_64: -netdev tap,id=net0: could not open /dev/net/tun\n")
    with pytest.raises(RingError) as caught:
        guest_vm._wait_for_cloud_init(guest, timeout_s=5)
    assert str(caught.value) == f"qemu exited ({guest.proc.returncode}) before cloud-init finished: qemu-system-x86_64: -netdev tap,id=net0: could not open /dev/net/tun"


def test_the_image_follows_this_machines_debian_mirror_in_either_format(tmp_path):
    deb822 = tmp_path / "a" / "sources.list.d"
    deb822.mkdir(parents=True)
    (deb822 / "debian.sources").write_text("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
                                           "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n")
    assert guest_image.debian_mirror(tmp_path / "a") == "http://mirror.example/debian"
    (tmp_path / "b" / "sources.list.d").mkdir(parents=True)
    (tmp_path / "b" / "sources.list").write_text("deb http://security.example/ bookworm-security main\ndeb [arch=amd64] http://old.example/debian bookworm main\n")
    assert guest_image.debian_mirror(tmp_path / "b") == "http://old.example/debian"
    (tmp_path / "c" / "sources.list.d").mkdir(parents=True)
    with pytest.raises(RingError, match="no apt source for Debian bookworm"):
        guest_image.debian_mirror(tmp_path / "c")


def test_the_cache_key_changes_with_the_package_list_and_nothing_else_of_the_machine(monkeypatch):
    key = guest_image.cache_key("http://debian.mirror.test/debian")
    assert key == guest_image.cache_key("http://debian.mirror.test/debian")
    assert key != guest_image.cache_key("http://mirror.example/debian")
    monkeypatch.setattr(guest_image, "PACKAGES", (*guest_image.PACKAGES, "htop"))
    assert key != guest_image.cache_key("http://debian.mirror.test/debian")


def test_no_root_is_said_before_anything_runs(monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("checks the root branch by pretending otherwise")
    monkeypatch.setattr(guest_image.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(guest_image.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    with pytest.raises(RingError, match="as root"):
        guest_image.require_tools()


def test_a_ring_killed_outright_is_swept_by_the_next_one_and_a_live_one_is_left_alone(tmp_path, monkeypatch):
    """Its qemu (found by the pidfile, its command line carrying the prefix) is killed and its run
    directory removed; the run directory of a ring still running is not touched."""
    monkeypatch.setattr(guest_vm, "RUN_ROOT", tmp_path)
    stale_qemu = subprocess.Popen(["bash", "-c", f"exec -a {guest_vm.PREFIX}cp1 sleep 60"])
    other = subprocess.Popen(["sleep", "60"])  # a pidfile naming a process that is not the ring's
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        (tmp_path / str(dead.pid)).mkdir()
        (tmp_path / str(dead.pid) / "qemu.pid").write_text(f"{stale_qemu.pid}\n")
        (tmp_path / "999999999").mkdir()
        (tmp_path / "999999999" / "qemu.pid").write_text(f"{other.pid}\n")
        live = tmp_path / str(os.getpid())
        live.mkdir()
        swept = guest_vm.sweep_stale()
        assert stale_qemu.wait(5) == -9
        assert other.poll() is None, "a process without the prefix is never killed"
        assert f"qemu {stale_qemu.pid}" in swept
        assert sorted(p.name for p in tmp_path.iterdir()) == [str(os.getpid())]
    finally:
        for proc in (stale_qemu, other):
            proc.kill()
            proc.wait()
