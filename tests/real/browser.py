"""Headless Chromium driven over the DevTools protocol, with the standard library only: open a
page as a person would, collect what its console and exceptions said, measure elements, take a
screenshot, and decode a PNG enough to tell a blank one.

The WebSocket client is the part of RFC 6455 a DevTools session needs: the opening handshake,
masked text frames out, unmasked text frames (possibly fragmented) in, close.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-quic", "--no-first-run", "--disable-sync", "--hide-scrollbars", "--remote-debugging-port=0",
         "--remote-debugging-address=127.0.0.1")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Socket:
    """One WebSocket connection to a DevTools endpoint (ws://127.0.0.1:PORT/PATH)."""

    def __init__(self, url: str, timeout: float = 30):
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"DevTools refused the WebSocket: {head[:200]!r}")

    def _exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            out += chunk
        return out

    def send(self, text: str) -> None:
        payload = text.encode()
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                 else bytes([0x80 | 127]) + struct.pack(">Q", n))
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._exactly(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exactly(8))[0]
            mask = self._exactly(4) if second & 0x80 else b""
            data = self._exactly(n)
            if mask:
                data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            if opcode in (0x9, 0xA):  # ping/pong: not used by DevTools
                continue
            message += data
            if first & 0x80:
                return message.decode()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Page:
    """A DevTools session with one page: commands, and every event kept for later reading."""

    def __init__(self, ws: Socket):
        self.ws, self.next_id, self.events = ws, 0, []  # type: ignore[var-annotated]

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for message in self.events:
            if message.get("method") == event:
                return dict(message)
        while time.monotonic() < deadline:
            message = json.loads(self.ws.receive())
            self.events.append(message)
            if message.get("method") == event:
                return dict(message)
        raise TimeoutError(f"no {event} within {timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        """What the page's console, its uncaught exceptions and the browser's log said at error level
        (a refused load, a CSP violation, a script error)."""
        out = []
        for message in self.events:
            method, params = message.get("method"), message.get("params") or {}
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console.{params.get('type')}: {[a.get('value') for a in params.get('args', [])]}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out


@contextlib.contextmanager
def browser(timeout: float = 30) -> Iterator[Page]:
    """Chromium, headless, in a fresh profile, with one page's DevTools session open (about:blank)."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("chromium is missing: run `make deps` as root")
    with tempfile.TemporaryDirectory(prefix="netstab-chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        ws = None
        try:
            port = _devtools_port(Path(profile), proc, timeout)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
                targets = json.loads(answer.read())
            page = next(t for t in targets if t.get("type") == "page")
            ws = Socket(page["webSocketDebuggerUrl"], timeout)
            session = Page(ws)
            for domain in ("Page", "Runtime", "Log"):
                session.call(f"{domain}.enable")
            yield session
        finally:
            if ws:
                ws.close()
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Chromium and every helper it started (its own session: renderers, the crash handler), so none
    is left running or still writing into the profile when it is removed."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.05)
        if not _group_alive(proc.pid):
            return


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Chromium writes the port it chose (--remote-debugging-port=0) into the profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited ({proc.returncode}) before DevTools listened")
        if marker.exists() and marker.read_text().strip():
            return int(marker.read_text().split()[0])
        time.sleep(0.1)
    raise TimeoutError(f"chromium did not open DevTools within {timeout}s")


def open_page(page: Page, url: str, timeout: float = 30) -> None:
    page.events.clear()
    page.call("Page.navigate", url=url)
    page.wait_for("Page.loadEventFired", timeout)


def screenshot(page: Page, path: Path) -> None:
    """The whole page, beyond the viewport, as PNG."""
    data = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
    path.write_bytes(base64.b64decode(data))


# ---------------------------------------------------------------- PNG, as far as a blank check needs


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of raw pixel bytes) of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or interlace:
        raise ValueError(f"PNG depth {depth}, interlace {interlace}: not decoded here")
    step = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw, stride, rows, prior = zlib.decompress(idat), width * step, [], bytes(width * step)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        rows.append(_unfilter(line[0], bytearray(line[1:]), prior, step))
        prior = rows[-1]
    return width, height, rows


def _unfilter(kind: int, line: bytearray, prior: bytes, step: int) -> bytes:
    for i in range(len(line)):
        left = line[i - step] if i >= step else 0
        up, corner = prior[i], prior[i - step] if i >= step else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
    return bytes(line)


def colours(data: bytes, sample: int = 4) -> set[bytes]:
    """The distinct pixel values of a PNG (every `sample`-th row and column, to stay quick)."""
    width, _, rows = png_pixels(data)
    step = len(rows[0]) // width if rows else 1
    return {row[x * step:(x + 1) * step] for row in rows[::sample] for x in range(0, width, sample)}
