"""Real-ring fixtures: a lab CA, namespaces (root only), and the agent as a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from lab.images import write_layout
from lab.pki import ServerCert, issue
from tests.real.fake_kube import FakeKube
from tests.real.fake_registry import FakeRegistry

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "probes" / "agent.py"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is missing: run `make deps` as root")


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pki")


@pytest.fixture(scope="session")
def localhost_cert(pki) -> ServerCert:
    return issue(pki, "localhost", ["localhost", "127.0.0.1", "registry.lab.test"])


@pytest.fixture(scope="session")
def lab_cert(pki) -> ServerCert:
    return issue(pki, "labtest", ["lab.test", "203.0.113.2"])


def agent(*args: str, timeout: float = 120, netns: str | None = None, python: str | None = None) -> tuple[int, dict]:
    """Run the agent (as a node would) and parse its JSON document."""
    argv = [python or sys.executable, str(AGENT), *args, "--json", "--quiet"]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    assert done.stdout.strip(), f"agent printed nothing; stderr: {done.stderr[-2000:]}"
    return done.returncode, json.loads(done.stdout)


def free_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@pytest.fixture
def kube(localhost_cert):
    """The loopback fake Kubernetes API (tests/real/fake_kube.py), closed after the test."""
    api = FakeKube(localhost_cert)
    yield api
    api.close()


@pytest.fixture(scope="module")
def host():
    """The dynamic-provider host as the engine starts it (unbuffered: it prints its gRPC port unflushed)."""
    proc = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"})
    port = int(proc.stdout.readline().decode().strip())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = provider_pb2_grpc.ResourceProviderStub(channel)
    stub.Configure(provider_pb2.ConfigureRequest(args=struct({})))
    yield stub, proc
    channel.close()
    proc.kill()
    proc.wait(5)


def struct(props: dict):
    return asyncio.run(rpc.serialize_properties(props, {}))


def unstruct(value) -> dict:
    return rpc.deserialize_properties(value)


@pytest.fixture
def fake(tmp_path):
    """A registry on loopback serving team/app:v1 (token flow, blob redirects), closed after the test."""
    layout = tmp_path / "layout"
    write_layout(layout, "v1")
    registry_ = FakeRegistry(layout, "team/app", "v1")
    yield registry_
    registry_.close()
