"""SecretGate's provider served by the real dynamic-provider host (`python -m pulumi.dynamic`),
driven over gRPC through Check, Diff, Create and Delete, against a fake Kubernetes API."""

from __future__ import annotations

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.secretgate import FORCE_SYNC, SecretGateProvider
from tests.real.conftest import struct, unstruct
from tests.real.fake_kube import SECRET_VALUE, TOKEN

URN = "urn:pulumi:test::netstab::pulumi-python:dynamic:Resource::gate"


def props(kubeconfig: str, timeout_s: float = 10, keys=("bootstrapPassword",)) -> dict:
    spec = {
        "critical": [{"namespace": "cattle-system", "name": "rancher-bootstrap", "target": "bootstrap-secret", "keys": list(keys)}],
        "store": "doppler",
        "timeout_s": timeout_s,
        "force_sync_interval_s": 1,
        "probe_hint": "ssh ubuntu@10.27.27.11 'python3 - http https://api.doppler.com/v3/projects --repeat 10' < probes/agent.py",
    }
    return {"__provider": serialize_provider(SecretGateProvider()), "kubeconfig": kubeconfig, "spec": spec}


def create(stub, p: dict):
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(p)))
    assert not checked.failures
    return stub.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs), timeout=60)


def test_a_secret_that_appears_later_passes_with_force_syncs_meanwhile(host, kube):
    stub, _ = host
    kube.add_external_secret("cattle-system", "rancher-bootstrap")
    kube.add_secret("cattle-system", "bootstrap-secret", {"bootstrapPassword": SECRET_VALUE}, after_s=2.5)
    created = create(stub, props(kube.kubeconfig()))
    outs = unstruct(created.properties)
    result = outs["secrets"]["cattle-system/bootstrap-secret"]
    assert 2.0 <= result["seconds_to_ready"] < 8 and result["force_syncs"] >= 2
    annotations = kube.external_secrets[("cattle-system", "rancher-bootstrap")]["metadata"]["annotations"]
    assert FORCE_SYNC in annotations and annotations[FORCE_SYNC].isdigit()
    assert SECRET_VALUE not in str(outs) and TOKEN not in str(outs) and "kubeconfig" not in outs
    stub.Delete(provider_pb2.DeleteRequest(id=created.id, urn=URN, properties=created.properties))


def test_a_key_that_never_appears_times_out_naming_it_and_quoting_the_condition(host, kube):
    stub, _ = host
    kube.add_external_secret("cattle-system", "rancher-bootstrap", message="could not get secret data from provider: key RANCHER_X not found")
    kube.add_secret("cattle-system", "bootstrap-secret", {"bootstrapPassword": SECRET_VALUE})
    with pytest.raises(grpc.RpcError) as caught:
        create(stub, props(kube.kubeconfig(), timeout_s=3, keys=("bootstrapPassword", "adminToken")))
    message = caught.value.details()
    assert "1 of 1 bootstrap Secrets not ready after 3s" in message
    assert "cattle-system/bootstrap-secret (ExternalSecret rancher-bootstrap): keys missing: adminToken" in message
    assert 'Ready=False reason=SecretSyncedError: "could not get secret data from provider: key RANCHER_X not found"' in message
    assert "ClusterSecretStore doppler: Ready=True" in message and "api.doppler.com" in message
    assert "Traceback" not in message and SECRET_VALUE not in message


def test_a_wrong_token_is_a_credentials_error_not_a_traceback(host, kube):
    stub, _ = host
    with pytest.raises(grpc.RpcError) as caught:
        create(stub, props(kube.kubeconfig(token="wrong-token-value")))
    message = caught.value.details()
    assert "rejected the kubeconfig's credentials (HTTP 401" in message
    assert "Traceback" not in message and "wrong-token-value" not in message


def test_a_server_that_is_down_is_a_connection_error(host, kube):
    stub, _ = host
    dead = kube.kubeconfig(server="https://127.0.0.1:1")
    with pytest.raises(grpc.RpcError) as caught:
        create(stub, props(dead))
    message = caught.value.details()
    assert "cannot reach the Kubernetes API at https://127.0.0.1:1" in message and "Traceback" not in message
    assert TOKEN not in message


def test_diff_with_unchanged_inputs_never_replaces_and_a_changed_spec_updates_in_place(host, kube):
    stub, _ = host
    kube.add_secret("cattle-system", "bootstrap-secret", {"bootstrapPassword": SECRET_VALUE})
    kube.add_external_secret("cattle-system", "rancher-bootstrap", ready="True", message="synced")
    p = props(kube.kubeconfig())
    created = create(stub, p)
    same = stub.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=struct(p)))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE and not same.replaces
    changed = dict(p, spec=dict(p["spec"], timeout_s=20))
    diff = stub.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=struct(changed)))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and not diff.replaces


def test_check_refuses_a_gate_with_nothing_to_wait_for(host):
    stub, _ = host
    p = props("{}")
    p["spec"]["critical"] = []
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(p)))
    assert [f.reason for f in checked.failures] == ["no critical ExternalSecrets: nothing for the gate to wait for"]


def test_no_secret_value_reaches_the_host_log(host, kube):
    _, proc = host
    kube.add_secret("cattle-system", "bootstrap-secret", {"bootstrapPassword": SECRET_VALUE})
    kube.add_external_secret("cattle-system", "rancher-bootstrap", ready="True", message="synced")
    create(host[0], props(kube.kubeconfig()))
    proc.stderr.flush() if proc.stderr else None
    import os
    import select

    output = b""
    while proc.stderr and select.select([proc.stderr], [], [], 0.2)[0]:
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        output += chunk
    assert SECRET_VALUE.encode() not in output and TOKEN.encode() not in output
