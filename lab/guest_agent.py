"""The QEMU guest agent and QMP over their unix sockets, and a stand-in for Proxmox's `qm guest exec`.

Proxmox keeps a VM's agent socket at /var/run/qemu-server/<vmid>.qga (a virtio-serial port named
org.qemu.guest_agent.0); `qm guest exec` runs `guest-exec`, polls `guest-exec-status` until the
command exits or its timeout passes, and prints the status as JSON with `out-data`/`err-data`
decoded (pve-manager PVE/API2/Qemu/Agent.pm, PVE/CLI/qm.pm). The stand-in does the same, so the
rendered `via_guest_agent` script (components/render/guest.py) runs unchanged:

    qm guest exec VMID [--timeout S] [--pass-stdin 1] -- CMD ARG...

with `NETSTAB_QEMU_SERVER_RUN` in place of /var/run/qemu-server.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "NETSTAB_QEMU_SERVER_RUN"


class AgentError(RuntimeError):
    pass


class _Channel:
    """One JSON command, one JSON answer, on a fresh connection (the chardev serves one client)."""

    def __init__(self, path: Path, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buffer = b""

    def send(self, command: dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(command).encode() + b"\n")

    def receive(self) -> dict[str, Any]:
        decoder = json.JSONDecoder()
        while True:
            text = self.buffer.lstrip(b"\xff \r\n").decode(errors="replace")
            if text:
                try:
                    value, end = decoder.raw_decode(text)
                    self.buffer = text[end:].encode()
                    return dict(value)
                except json.JSONDecodeError:
                    pass
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AgentError("the socket closed before an answer")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def qga(path: Path, command: str, arguments: dict[str, Any] | None = None, timeout: float = 30) -> Any:
    """`command` through the guest agent, after guest-sync-delimited flushes any stale answer."""
    channel = _Channel(path, timeout)
    try:
        token = int(time.time() * 1000) % 2**31
        channel.send({"execute": "guest-sync-delimited", "arguments": {"id": token}})
        while channel.receive().get("return") != token:
            pass
        channel.send({"execute": command, **({"arguments": arguments} if arguments else {})})
        answer = channel.receive()
    finally:
        channel.close()
    if "error" in answer:
        raise AgentError(f"{command}: {answer['error'].get('desc', answer['error'])}")
    return answer.get("return")


def qmp(path: Path, command: str, timeout: float = 10) -> Any:
    channel = _Channel(path, timeout)
    try:
        channel.receive()  # the greeting
        channel.send({"execute": "qmp_capabilities"})
        channel.receive()
        channel.send({"execute": command})
        while True:
            answer = channel.receive()
            if "event" not in answer:
                return answer.get("return")
    finally:
        channel.close()


def guest_exec(path: Path, argv: list[str], stdin: bytes | None = None, timeout: float = 180) -> dict[str, Any]:
    """`qm guest exec`'s result: exited, exitcode, out-data, err-data (decoded), or only the pid
    with exited 0 when `timeout` passed first."""
    arguments: dict[str, Any] = {"path": argv[0], "arg": argv[1:], "capture-output": True}
    if stdin is not None:
        arguments["input-data"] = base64.b64encode(stdin).decode()
    pid = qga(path, "guest-exec", arguments)["pid"]
    deadline = time.monotonic() + timeout
    while True:
        status = qga(path, "guest-exec-status", {"pid": pid})
        if status.get("exited"):
            result: dict[str, Any] = {"exitcode": status.get("exitcode", -1), "exited": 1}
            for key in ("out-data", "err-data"):
                if key in status:
                    result[key] = base64.b64decode(status[key]).decode(errors="replace")
            return result
        if time.monotonic() > deadline:
            return {"exited": 0, "pid": pid}
        time.sleep(0.3)


def socket_path(vm_id: int) -> Path:
    return Path(os.environ.get(RUN_DIR_ENV, "/var/run/qemu-server")) / f"{vm_id}.qga"


def qm(argv: list[str]) -> int:
    """The stand-in's command line (only `guest exec`, the one the program uses)."""
    if argv[:2] != ["guest", "exec"] or len(argv) < 3 or "--" not in argv:
        print("usage: qm guest exec VMID [--timeout S] [--pass-stdin 1] -- CMD ARG...", file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[3:split], argv[split + 1:]
    settings = dict(zip(options[::2], options[1::2], strict=False))
    stdin = sys.stdin.buffer.read() if settings.get("--pass-stdin") == "1" else None
    try:
        result = guest_exec(socket_path(int(argv[2])), command, stdin, float(settings.get("--timeout", "30")))
    except (OSError, AgentError) as failed:
        print(f"VM {argv[2]} qga command failed - {failed}", file=sys.stderr)
        return 255
    print(json.dumps(result, indent=3, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(qm(sys.argv[1:]))
