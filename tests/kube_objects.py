"""Kubernetes objects as a cluster with Flux holds them: sources, HelmReleases, pods and events."""

from __future__ import annotations

from typing import Any


def ready(status: str, reason: str = "Succeeded", message: str = "") -> dict[str, Any]:
    return {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}]}


def source(kind: str, name: str, ok: bool, artifact: bool, namespace: str = "flux-system") -> dict[str, Any]:
    status = ready("True") if ok else ready("False", "OCIArtifactPullFailed" if kind == "OCIRepository" else "FetchFailed",
                                             "failed to pull artifact: TLS handshake timeout")
    if artifact:
        status["artifact"] = {"revision": "v1@sha256:abc", "path": f"{kind.lower()}/{namespace}/{name}/abc.tar.gz"}
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "status": status}


def helm_release(name: str, source_kind: str, source_name: str, ready_status: str, namespace: str = "flux-system") -> dict[str, Any]:
    spec = {"chartRef": {"kind": source_kind, "name": source_name}} if source_kind == "OCIRepository" else \
        {"chart": {"spec": {"chart": name, "sourceRef": {"kind": source_kind, "name": source_name, "namespace": namespace}}}}
    status = ready(ready_status, "InstallSucceeded" if ready_status == "True" else "InstallFailed", "")
    return {"kind": "HelmRelease", "metadata": {"name": name, "namespace": namespace}, "spec": spec, "status": status}


def pod(name: str, node: str, image: str, waiting: str | None = None, namespace: str = "default") -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "Back-off pulling image"}} if waiting else {"running": {}}
    return {"kind": "Pod", "metadata": {"name": name, "namespace": namespace}, "spec": {"nodeName": node},
            "status": {"containerStatuses": [{"name": "c", "image": image, "state": state}]}}


def pull_event(pod_name: str, image: str, count: int = 1, namespace: str = "default") -> dict[str, Any]:
    return {"kind": "Event", "reason": "Failed", "count": count, "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace},
            "message": f'Failed to pull image "{image}": rpc error: code = Unknown desc = failed to pull and unpack image: '
                       "net/http: TLS handshake timeout"}
