"""Peers on 127.0.0.1 that misbehave on purpose, for the agent's tests: each connection is played
by a handler in its own thread, and everything stops (bounded) when the test is done."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable

from lab.pki import ServerCert
from lab.servers import read_request

HOLD_S = 8.0  # the longest any handler keeps a connection; every test's agent gives up well before

Handler = Callable[[socket.socket, "Peer", int], None]


class Peer:
    """A listener on 127.0.0.1:0; `handler(conn, peer, n)` plays the n-th accepted connection (from 1)."""

    def __init__(self, handler: Handler, cert: ServerCert | None = None):
        self.handler = handler
        self.context: ssl.SSLContext | None = None
        if cert:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(cert.cert), str(cert.key))
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted = 0
        self.active = 0
        self.most_active = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "http", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with self.lock:
                self.accepted += 1
                index = self.accepted
            threading.Thread(target=self._play, args=(conn, index), daemon=True).start()

    def _play(self, conn: socket.socket, index: int) -> None:
        conn.settimeout(HOLD_S)
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            self.handler(conn, self, index)
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1
            conn.close()

    def tls(self, conn: socket.socket) -> socket.socket:
        assert self.context is not None
        return self.context.wrap_socket(conn, server_side=True)

    def hold(self, seconds: float = HOLD_S) -> None:
        self.stop.wait(seconds)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


def drip(conn: socket.socket, peer: Peer, data: bytes, every_s: float = 0.1) -> None:
    """`data` one byte at a time, until the test ends."""
    for byte in data:
        if peer.stop.wait(every_s):
            return
        conn.sendall(bytes([byte]))


def answer(status: int = 200, body: bytes = b"ok\n", headers: tuple[str, ...] = ()) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def send_file_like(conn: socket.socket, size: int, block: int = 1 << 20) -> None:
    chunk = b"x" * block
    sent = 0
    while sent < size:
        conn.sendall(chunk[: min(block, size - sent)])
        sent += min(block, size - sent)


def serve_tls(conn: socket.socket, peer: Peer, n: int) -> None:
    """A healthy HTTPS server: TLS, then one 200."""
    tls = peer.tls(conn)
    read_request(tls)
    tls.sendall(answer())
