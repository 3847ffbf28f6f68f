"""ClusterIdentity's provider served by the real dynamic-provider host, driven over gRPC as the engine
drives it: Check with the old inputs refuses a role swap and a rename that keeps its vmId, with one
message saying what to do instead; every other change passes and updates in place."""

from __future__ import annotations

import copy

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.clusteridentity import ClusterIdentityProvider
from tests.real.conftest import struct, unstruct

URN = "urn:pulumi:test::netstab::pulumi-python:dynamic:Resource::cluster-identity"
NODES = {"cp1": {"role": "server", "vmId": 2711}, "worker1": {"role": "agent", "vmId": 2721}, "worker2": {"role": "agent", "vmId": 2722}}


def props(nodes: dict) -> dict:
    return {"__provider": serialize_provider(ClusterIdentityProvider()), "nodes": nodes}


def check(stub, olds: dict, news: dict) -> list[str]:
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct(olds), news=struct(news)))
    return [f.reason for f in checked.failures]


def edited(**changes: dict) -> dict:
    nodes = copy.deepcopy(NODES)
    for name, node in changes.items():
        if node is None:
            del nodes[name]
        else:
            nodes[name] = node
    return nodes


def test_a_first_up_records_the_nodes(host):
    stub = host[0]
    assert check(stub, {}, props(NODES)) == []
    created = stub.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props(NODES))), timeout=30)
    assert unstruct(created.properties)["nodes"] == NODES


def test_a_role_swap_is_refused_with_what_to_do_instead(host):
    swapped = edited(cp1={"role": "agent", "vmId": 2711}, worker1={"role": "server", "vmId": 2721})
    (reason,) = check(host[0], props(NODES), props(swapped))
    assert reason.startswith("netstab cluster identity: refused before anything is touched: cp1 was the K3s server and "
                             "would become an agent; worker1 was the K3s agent and would become the server.")
    assert "Instead keep the roles as deployed, or rebuild the cluster (pulumi destroy, then pulumi up)." in reason
    assert "Traceback" not in reason


def test_a_rename_that_keeps_its_vm_id_is_refused(host):
    renamed = edited(worker2=None, worker3={"role": "agent", "vmId": 2722})
    (reason,) = check(host[0], props(NODES), props(renamed))
    assert "worker2 would be renamed worker3 keeping vmId 2722" in reason
    assert "Instead give worker3 a new vmId" in reason


@pytest.mark.parametrize("nodes", [
    edited(worker2=None, worker3={"role": "agent", "vmId": 2723}),  # renamed with a new vmId
    edited(worker1={"role": "agent", "vmId": 2725}),  # a new vmId, same name: rebuilt
    edited(worker2=None),  # removed
    edited(worker3={"role": "agent", "vmId": 2723}),  # added
], ids=["rename-new-id", "new-id", "removed", "added"])
def test_every_other_change_passes_and_updates_in_place(host, nodes):
    stub = host[0]
    assert check(stub, props(NODES), props(nodes)) == []
    diff = stub.Diff(provider_pb2.DiffRequest(id="cluster-identity", urn=URN, olds=struct(props(NODES)), news=struct(props(nodes))))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and not diff.replaces


def test_an_unchanged_identity_is_no_change(host):
    diff = host[0].Diff(provider_pb2.DiffRequest(id="cluster-identity", urn=URN, olds=struct(props(NODES)), news=struct(props(NODES))))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_NONE
