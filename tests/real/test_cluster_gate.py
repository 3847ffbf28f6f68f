"""ClusterGate's provider served by the real dynamic-provider host, driven over gRPC, against the
loopback fake Kubernetes API holding Flux sources, HelmReleases, pods and events."""

from __future__ import annotations

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.clustergate import HELM_RELEASES, PODS, SOURCES, ClusterGateProvider
from tests.kube_objects import helm_release, pod, pull_event, source
from tests.real.conftest import struct, unstruct
from tests.real.fake_kube import FakeKube

URN = "urn:pulumi:test::netstab::pulumi-python:dynamic:Resource::cluster-gate"


def flux(kube: FakeKube, sources=(), releases=()) -> None:
    for kind, path in SOURCES.items():
        kube.collections[path] = [s for s in sources if s["kind"] == kind]
    kube.collections[HELM_RELEASES] = list(releases)


def create(stub, kubeconfig: str, mode: str = "enforce"):
    props = {"__provider": serialize_provider(ClusterGateProvider()), "kubeconfig": kubeconfig, "spec": {"mode": mode}, "run_id": "r1"}
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(props)))
    return unstruct(stub.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs), timeout=60).properties)


def test_a_cluster_without_flux_passes_and_says_so(host, kube):
    kube.collections[PODS] = [pod("coredns", "cp1", "rancher/mirrored-coredns-coredns:1.12.3")]
    outs = create(host[0], kube.kubeconfig())
    assert outs["verdict"] == "pass" and "Flux is not installed here" in outs["text"]
    assert outs["text"].splitlines()[1] == f"  read through the Kubernetes API at {kube.url.rstrip('/')}", "the report names the API it read (the VIP in HA)"


def test_a_cached_artifact_serving_ready_releases_warns_and_a_stuck_pull_fails_the_deploy(host, kube):
    flux(kube, [source("OCIRepository", "traefik", ok=False, artifact=True)], [helm_release("traefik", "OCIRepository", "traefik", "True")])
    outs = create(host[0], kube.kubeconfig())
    assert outs["verdict"] == "warn" and "cached artifact still serves" in outs["text"]
    kube.collections[PODS] = [pod("app", "worker1", "ghcr.io/x/app:1", "ImagePullBackOff")]
    kube.collections["/api/v1/events"] = [pull_event("app", "ghcr.io/x/app:1", count=4)]
    with pytest.raises(grpc.RpcError) as caught:
        create(host[0], kube.kubeconfig())
    message = caught.value.details()
    assert "netstab cluster gate: FAIL" in message
    assert "ghcr.io/x/app:1 on worker1: 1 container(s) waiting in ErrImagePull/ImagePullBackOff" in message
    assert "Traceback" not in message


def test_warn_mode_reports_a_failure_without_failing(host, kube):
    kube.collections[PODS] = [pod("app", "worker1", "ghcr.io/x/app:1", "ErrImagePull")]
    outs = create(host[0], kube.kubeconfig(), mode="warn")
    assert outs["verdict"] == "fail" and outs["pull_failures"] == {"ghcr.io/x/app:1": {"worker1": 1}}


def test_an_api_that_cannot_be_reached_is_retried_within_the_bound_then_named(host):
    """A server restarting in a rolling change refuses connections: the gate retries, then says how long."""
    from tests.real.conftest import free_port

    kubeconfig = unreachable_kubeconfig(free_port())
    props = {"__provider": serialize_provider(ClusterGateProvider()), "kubeconfig": kubeconfig,
             "spec": {"mode": "enforce", "api_wait_s": 2}, "run_id": "r1"}
    with pytest.raises(grpc.RpcError) as caught:
        host[0].Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=60)
    message = caught.value.details()
    assert "cannot reach the Kubernetes API" in message and "(retried for 2s)" in message and "Traceback" not in message


def test_warn_mode_never_fails_even_when_the_api_cannot_be_reached(host):
    from tests.real.conftest import free_port

    props = {"__provider": serialize_provider(ClusterGateProvider()), "kubeconfig": unreachable_kubeconfig(free_port()),
             "spec": {"mode": "warn", "api_wait_s": 1}, "run_id": "r1"}
    outs = unstruct(host[0].Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=60).properties)
    assert outs["verdict"] == "fail" and "cannot reach the Kubernetes API" in outs["text"]


def unreachable_kubeconfig(port: int) -> str:
    import yaml

    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "x",
                           "clusters": [{"name": "x", "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
                           "users": [{"name": "x", "user": {"token": "t"}}],
                           "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]})


def test_a_failed_cluster_gate_leaves_its_nonce_in_the_report_folder(host, tmp_path):
    from components.gate import last_failure
    from tests.real.conftest import free_port

    props = {"__provider": serialize_provider(ClusterGateProvider()), "kubeconfig": unreachable_kubeconfig(free_port()),
             "spec": {"mode": "warn", "api_wait_s": 0, "report_dir": str(tmp_path)}, "run_id": "r1"}
    host[0].Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=60)
    assert len(last_failure(tmp_path)) == 32
