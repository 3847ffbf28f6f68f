"""A registry that behaves like the public ones where the standard `docker-registry` does not:
anonymous bearer tokens from a separate realm, and blobs redirected to another host that
rejects an Authorization header (as S3-style blob hosts do). Serves an OCI layout."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TOKEN = "fake-anon-token-0123"


class FakeRegistry:
    def __init__(self, layout: Path, repository: str, tag: str, corrupt_digest: str | None = None,
                 blob_host: str | None = None, blob_query: str = ""):
        """`blob_host`: redirect blobs there instead of to the built-in blob host; `blob_query`:
        a query string on every blob redirect (a signed URL's, say)."""
        self.layout, self.repository, self.tag = layout, repository, tag
        self.corrupt_digest = corrupt_digest
        self.blob_host, self.blob_query = blob_host, blob_query
        self.blob_requests_with_auth = 0
        self.registry = self._serve(self._registry_handler())
        self.blobs = self._serve(self._blob_handler())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.registry.server_address[1]}"

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def close(self) -> None:
        for server in (self.registry, self.blobs):
            server.shutdown()
            server.server_close()

    def read_blob(self, digest: str) -> bytes:
        return (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    def index_digest(self) -> str:
        return json.loads((self.layout / "index.json").read_text())["manifests"][0]["digest"]

    def _registry_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                port = fake.registry.server_address[1]
                if self.path.startswith("/token"):
                    return self._send(200, json.dumps({"token": TOKEN}).encode(), "application/json")
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:{fake.repository}:pull"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                match = re.match(r"^/v2/(.+)/(manifests|blobs)/(.+)$", self.path)
                if not match or match.group(1) != fake.repository:
                    return self._send(404, b"{}", "application/json")
                kind, ref = match.group(2), match.group(3)
                if kind == "blobs":
                    self.send_response(307)
                    blob_host = fake.blob_host or f"localhost:{fake.blobs.server_address[1]}"
                    query = f"?{fake.blob_query}" if fake.blob_query else ""
                    self.send_header("Location", f"http://{blob_host}/blob/{ref}{query}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                digest = fake.index_digest() if ref == fake.tag else ref
                body = fake.read_blob(digest)
                return self._send(200, body, json.loads(body).get("mediaType", "application/vnd.oci.image.manifest.v1+json"))

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _blob_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("Authorization"):
                    fake.blob_requests_with_auth += 1
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                digest = self.path.split("?", 1)[0].rsplit("/", 1)[1]
                body = fake.read_blob(digest)
                if digest == fake.corrupt_digest:
                    body = body[:-1] + bytes([body[-1] ^ 0xFF])
                # chunked, as CDNs often answer
                self.protocol_version = "HTTP/1.1"
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                for i in range(0, len(body), 7000):
                    part = body[i : i + 7000]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")

        return Handler
