"""A small Kubernetes API on loopback (TLS, bearer token): Secrets, ExternalSecrets and a
ClusterSecretStore, with a Secret that appears after a delay and PATCHes recorded."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ssl import PROTOCOL_TLS_SERVER, SSLContext
from typing import Any

from lab.pki import ServerCert

TOKEN = "fake-kube-TOKEN-c0ffee"
SECRET_VALUE = "never-LOG-this-value-42"


class FakeKube:
    def __init__(self, cert: ServerCert):
        self.cert = cert
        self.secrets: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}  # appears at (monotonic time, data)
        self.external_secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.store_status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "store validated"}]}
        self.patches: list[tuple[str, dict[str, Any]]] = []
        # collection path (no query) -> items, e.g. "/api/v1/pods"; a path absent here answers 404 (kind not installed)
        self.collections: dict[str, list[dict[str, Any]]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = SSLContext(PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert.cert), str(cert.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_secret(self, namespace: str, name: str, data: dict[str, str], after_s: float = 0.0) -> None:
        self.secrets[(namespace, name)] = (time.monotonic() + after_s, data)

    def add_external_secret(self, namespace: str, name: str, ready: str = "False", message: str = "could not get secret data from provider") -> None:
        self.external_secrets[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, "annotations": {}},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "SecretSyncedError", "message": message}]},
        }

    def kubeconfig(self, token: str = TOKEN, server: str | None = None) -> str:
        ca = base64.b64encode(self.cert.ca.read_bytes()).decode()
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {"server": server or self.url, "certificate-authority-data": ca}}],
            "users": [{"name": "lab", "user": {"token": token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
        })

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        kube = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, doc: dict[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, {"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401})
                    return False
                return True

            def do_GET(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                collection = kube.collections.get(self.path.split("?", 1)[0])
                if collection is not None:
                    return self._send(200, {"kind": "List", "items": collection})
                if m := re.match(r"^/api/v1/namespaces/([^/]+)/secrets/([^/]+)$", self.path):
                    entry = kube.secrets.get((m.group(1), m.group(2)))
                    if entry and time.monotonic() >= entry[0]:
                        data = {k: base64.b64encode(v.encode()).decode() for k, v in entry[1].items()}
                        return self._send(200, {"kind": "Secret", "metadata": {"name": m.group(2)}, "data": data})
                    return self._send(404, {"kind": "Status", "code": 404})
                if m := re.match(r"^/apis/external-secrets.io/v1/namespaces/([^/]+)/externalsecrets/([^/]+)$", self.path):
                    es = kube.external_secrets.get((m.group(1), m.group(2)))
                    return self._send(200, es) if es else self._send(404, {"code": 404})
                if re.match(r"^/apis/external-secrets.io/v1/clustersecretstores/[^/]+$", self.path):
                    return self._send(200, {"status": kube.store_status})
                return self._send(404, {"code": 404})

            def do_PATCH(self) -> None:  # noqa: N802
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kube.patches.append((self.path, body))
                m = re.match(r"^/apis/external-secrets.io/v1/namespaces/([^/]+)/externalsecrets/([^/]+)$", self.path)
                es = kube.external_secrets.get((m.group(1), m.group(2))) if m else None
                if not es:
                    return self._send(404, {"code": 404})
                es["metadata"]["annotations"].update(body["metadata"]["annotations"])
                return self._send(200, es)

        return Handler
