"""Just enough of the Kubernetes API for the gates: GET and merge-PATCH with the kubeconfig's
credentials, through `requests` (no kubectl). Errors read as a diagnosis, prefixed with the gate's name."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import requests

from components.kubeconfig import ApiAccess


class GateError(Exception):
    """A failure a person can act on; its text is the whole message shown."""


class ApiUnreachable(GateError):
    """No connection to the API at all (refused, timed out): what a restarting server looks like."""


class KubeApi:
    """CA and client key go to private temp files for the life of the client only."""

    def __init__(self, access: ApiAccess, who: str, timeout_s: float = 10.0):
        self.server = access.server
        self.who = who
        self.timeout = timeout_s
        self.session = requests.Session()
        self._files: list[str] = []
        self.session.verify = False if access.insecure else (self._file(access.ca_pem) if access.ca_pem else True)
        if access.token:
            self.session.headers["Authorization"] = f"Bearer {access.token}"
        elif access.cert_pem and access.key_pem:
            self.session.cert = (self._file(access.cert_pem), self._file(access.key_pem))

    def _file(self, content: bytes) -> str:
        fd, path = tempfile.mkstemp(prefix="netstab-gate-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        self._files.append(path)
        return path

    def close(self) -> None:
        self.session.close()
        for path in self._files:
            os.unlink(path)
        self._files.clear()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any] | None]:
        """(status, document); 404 is (404, None), every other failure a GateError."""
        headers = {"Content-Type": "application/merge-patch+json"} if body is not None else {}
        try:
            resp = self.session.request(method, self.server + path, data=json.dumps(body) if body is not None else None,
                                        headers=headers, timeout=self.timeout)
        except requests.exceptions.SSLError as exc:
            raise GateError(f"{self.who}: TLS with the Kubernetes API at {self.server} failed: {_reason(exc)}; "
                            "is the kubeconfig's certificate-authority-data from this cluster?") from None
        except requests.exceptions.RequestException as exc:
            raise ApiUnreachable(f"{self.who}: cannot reach the Kubernetes API at {self.server}: {_reason(exc)}; "
                            "is the cluster up and the server address in the kubeconfig reachable from where `pulumi up` runs?") from None
        if resp.status_code in (401, 403):
            raise GateError(f"{self.who}: the Kubernetes API at {self.server} rejected the kubeconfig's credentials "
                            f"(HTTP {resp.status_code} for {method} {path}); refresh the kubeconfig output (pulumi up on the cluster) "
                            "or check the token's RBAC")
        if resp.status_code == 404:
            return 404, None
        if resp.status_code >= 400:
            raise GateError(f"{self.who}: HTTP {resp.status_code} from the Kubernetes API for {method} {path}")
        return resp.status_code, resp.json()

    def items(self, path: str) -> list[dict[str, Any]] | None:
        """A collection's items, or None when its kind is not installed (404)."""
        status, doc = self.request("GET", path)
        return None if status == 404 or doc is None else list(doc.get("items") or [])


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Failed to establish a new connection: ", "Connection refused", "timed out", "certificate verify failed"):
        if marker in text:
            return marker.rstrip(": ") if marker.endswith(": ") else marker
    return exc.__class__.__name__
