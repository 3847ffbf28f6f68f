"""Small HTTPS servers that play the far side: a healthy API, and the faults the probes must name.

Modes:
  normal   TLS, then HTTP: `/v2/` answers 401 with a bearer challenge (a registry), `/v3/...`
           answers 401 JSON (Doppler without a token), anything else 200.
  silent   accepts TCP and never answers the ClientHello (-> tls_handshake_timeout)
  stall    completes TLS, reads the request, never answers (-> read_timeout)
  error    answers every request 503 Service Unavailable (-> http_status, a server error)
  limit    answers every request 429 Too Many Requests, as Docker Hub past its pull limit
  files    a blob host: GET serves the file at the path under --root (a registry's storage, to
           which its redirect middleware sends blob downloads), 404 otherwise

Run in a thread (`serve_in_thread`) for loopback tests, or as a process inside a namespace:
`python -m lab.servers --mode normal --listen 0.0.0.0:443 --cert chain.pem --key key.pem`.
"""

from __future__ import annotations

import argparse
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path

MODES = ("normal", "silent", "stall", "error", "limit", "files")
HOLD_S = 120  # how long silent/stall connections are held before the server lets go
REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}
JSON = {"Content-Type": "application/json"}


def answer(mode: str, path: str) -> tuple[int, dict[str, str], bytes]:
    if mode == "error":
        return 503, JSON, b'{"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}'
    if mode == "limit":
        return 429, {**JSON, "Retry-After": "3600"}, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}'
    return route(path)


def route(path: str) -> tuple[int, dict[str, str], bytes]:
    if path.startswith("/v2/"):
        return 401, {"WWW-Authenticate": 'Bearer realm="https://auth.example/token",service="registry"',
                     "Docker-Distribution-Api-Version": "registry/2.0", "Content-Type": "application/json"}, b'{"errors":[{"code":"UNAUTHORIZED"}]}'
    if path.startswith("/v3/"):
        return 401, {"Content-Type": "application/json"}, b'{"messages":["Invalid Service token"],"success":false}'
    return 200, {"Content-Type": "text/plain"}, b"ok\n"


class Handler(socketserver.BaseRequestHandler):
    server: LabServer

    def handle(self) -> None:
        conn: socket.socket = self.request
        conn.settimeout(HOLD_S)
        if self.server.mode == "silent":
            _hold(conn)
            return
        try:
            tls = self.server.context.wrap_socket(conn, server_side=True) if self.server.context else conn
            request = read_request(tls)
        except (ssl.SSLError, OSError):
            return
        if self.server.mode == "stall":
            _hold(tls)
            return
        path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
        status, headers, body = serve_file(self.server.root, path) if self.server.mode == "files" else answer(self.server.mode, path)
        head = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        try:
            tls.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            tls.close()
        except OSError:
            pass


def serve_file(root: Path | None, path: str) -> tuple[int, dict[str, str], bytes]:
    """The file at `path` under `root`, never outside it."""
    if root is not None:
        wanted = (root / path.split("?", 1)[0].lstrip("/")).resolve()
        if wanted.is_relative_to(root.resolve()) and wanted.is_file():
            return 200, {"Content-Type": "application/octet-stream"}, wanted.read_bytes()
    return 404, {"Content-Type": "text/plain"}, b"not found\n"


def read_request(conn: socket.socket) -> bytes:
    """An HTTP request's head (bounded at 64 KiB), or what came before the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _hold(conn: socket.socket) -> None:
    deadline = time.monotonic() + HOLD_S
    try:
        while time.monotonic() < deadline and conn.recv(4096):
            pass
    except OSError:
        pass


class LabServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # the lab probes with dozens of concurrent connections; the default backlog (5) would drop SYNs
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], mode: str, cert: Path | None, key: Path | None, root: Path | None = None):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        self.mode = mode
        self.root = root
        self.context: ssl.SSLContext | None = None
        if cert and key:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(str(cert), str(key))


def serve_in_thread(mode: str, cert: Path | None = None, key: Path | None = None, host: str = "127.0.0.1",
                    root: Path | None = None) -> LabServer:
    server = LabServer((host, 0), mode, cert, key, root)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m lab.servers")
    p.add_argument("--mode", choices=MODES, default="normal")
    p.add_argument("--listen", default="0.0.0.0:443")
    p.add_argument("--cert", type=Path)
    p.add_argument("--key", type=Path)
    p.add_argument("--root", type=Path, help="files: the folder served")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = LabServer((host.strip("[]"), int(port)), args.mode, args.cert, args.key, args.root)
    print(f"lab server {args.mode} on {args.listen}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
