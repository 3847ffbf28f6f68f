"""HostKey's provider over gRPC: one ed25519 pair, generated once, never replaced."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.hostkeys import HostKeyProvider
from tests.real.conftest import struct, unstruct

URN = "urn:pulumi:test::netstab::pulumi-python:dynamic:Resource::nodes-cp1-host-key"


def test_a_host_key_pair_is_generated_once_and_the_public_half_matches(host):
    stub, _ = host
    props = {"__provider": serialize_provider(HostKeyProvider()), "host": "cp1"}
    created = stub.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=30)
    outs = unstruct(created.properties)
    private = serialization.load_ssh_private_key(outs["private_key"].encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    assert outs["public_key"] == f"{public} netstab-host-cp1" and public.startswith("ssh-ed25519 ")
    again = stub.Create(provider_pb2.CreateRequest(urn=URN, properties=struct(props)), timeout=30)
    assert unstruct(again.properties)["public_key"] != outs["public_key"], "each VM gets its own key"
    diff = stub.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=struct({**props, "host": "cp1-renamed"})))
    assert diff.changes == provider_pb2.DiffResponse.DIFF_NONE and not diff.replaces, "a key, once generated, stays"
