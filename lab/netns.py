"""Network namespaces as lab hosts: create, wire, run in, and always clean up.

Every namespace name starts with the topology's prefix, so a run interrupted by a crash can be
swept away by the next one (`remove_stale`). Traffic only ever flows between these namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

NETNS_ETC = Path("/etc/netns")
# One namespace user at a time on this machine: the lab sweeps stale namespaces and two runs (a lab
# and a test suite, or two checkouts) would tear down each other's hosts. Held for a Topology's life.
LOCK_PATH = Path("/run/lock/netstab-netns.lock")
LOCK_WAIT_S = 1800
_lock_depth = 0
_lock_file: int | None = None


class NetnsError(RuntimeError):
    pass


def sh(*args: str, check: bool = True, timeout: float = 30, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, input=input_text)
    if check and done.returncode != 0:
        raise NetnsError(f"{shlex.join(args)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done


def list_namespaces() -> list[str]:
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def remove_stale(prefix: str) -> list[str]:
    """Delete namespaces (and their /etc/netns files) left by an interrupted run with this prefix."""
    stale = [name for name in list_namespaces() if name.startswith(prefix)]
    for name in stale:
        _kill_all_in(name)
        sh("ip", "netns", "del", name, check=False)
        shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
    return stale


def _kill_all_in(name: str) -> None:
    pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@contextlib.contextmanager
def exclusive(wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """The machine-wide namespace lock (re-entrant within a process), waiting up to `wait_s`."""
    global _lock_depth, _lock_file
    if _lock_depth == 0:
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise NetnsError(f"another netstab lab or real-kernel test run holds {LOCK_PATH} for over {wait_s:.0f}s") from None
                time.sleep(0.2)
        _lock_file = fd
    _lock_depth += 1
    try:
        yield
    finally:
        _lock_depth -= 1
        if _lock_depth == 0 and _lock_file is not None:
            fcntl.flock(_lock_file, fcntl.LOCK_UN)
            os.close(_lock_file)
            _lock_file = None


class Topology:
    """A set of namespaces named `<prefix><host>`; a context manager that removes them on exit."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.hosts: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Topology:
        self._lock = exclusive()
        self._lock.__enter__()
        remove_stale(self.prefix)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        try:
            self.close()
        finally:
            self._lock.__exit__(None, None, None)

    def ns(self, host: str) -> str:
        return self.prefix + host

    def add_host(self, host: str, hosts_file: dict[str, str] | None = None) -> str:
        name = self.ns(host)
        sh("ip", "netns", "add", name)
        self.hosts.append(name)
        self.run(host, "ip", "link", "set", "lo", "up")
        if hosts_file is not None:
            self.set_hosts_file(host, hosts_file)
        return name

    def set_hosts_file(self, host: str, names: dict[str, str]) -> None:
        """The namespace's own /etc/hosts (ip netns exec bind-mounts /etc/netns/NAME/hosts)."""
        folder = NETNS_ETC / self.ns(host)
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost"] + [f"{ip} {name}" for name, ip in sorted(names.items())]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def set_resolv_conf(self, host: str, nameservers: list[str]) -> None:
        folder = NETNS_ETC / self.ns(host)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text("".join(f"nameserver {ip}\n" for ip in nameservers) + "options timeout:1 attempts:1\n")

    def link(self, a: str, a_if: str, b: str, b_if: str, mtu: int = 1500, mtu_b: int | None = None) -> None:
        sh("ip", "link", "add", a_if, "netns", self.ns(a), "type", "veth", "peer", "name", b_if, "netns", self.ns(b))
        self.run(a, "ip", "link", "set", a_if, "mtu", str(mtu), "up")
        self.run(b, "ip", "link", "set", b_if, "mtu", str(mtu_b or mtu), "up")

    def addr(self, host: str, interface: str, cidr: str) -> None:
        self.run(host, "ip", "addr", "add", cidr, "dev", interface)

    def route(self, host: str, destination: str, via: str) -> None:
        self.run(host, "ip", "route", "replace", destination, "via", via)

    def forwarding(self, host: str) -> None:
        self.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def nft(self, host: str, ruleset: str) -> None:
        sh("ip", "netns", "exec", self.ns(host), "nft", "-f", "-", input_text=ruleset)

    def run(self, host: str, *argv: str, check: bool = True, timeout: float = 30, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(host), *argv, check=check, timeout=timeout, input_text=input_text)

    def start(self, host: str, *argv: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
        """A long-running process inside the namespace, stopped by close()."""
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (owned by the process)
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    def close(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
                self.stop(proc)
        self.processes.clear()
        for name in reversed(self.hosts):
            _kill_all_in(name)
            sh("ip", "netns", "del", name, check=False)
            shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
        self.hosts.clear()


def wait_for_port(topo: Topology, host: str, ip: str, port: int, timeout: float = 15) -> None:
    """Until something listens at ip:port as seen from `host` (bounded)."""
    probe = f"import socket,time\nend=time.time()+{timeout}\nwhile time.time()<end:\n  try:\n    socket.create_connection(('{ip}',{port}),1).close(); raise SystemExit(0)\n  except OSError: time.sleep(0.1)\nraise SystemExit(1)"
    done = topo.run(host, "python3", "-c", probe, check=False, timeout=timeout + 5)
    if done.returncode != 0:
        raise NetnsError(f"nothing listens on {ip}:{port} as seen from {host} after {timeout}s")
