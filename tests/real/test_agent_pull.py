"""`agent.py pull` against a real Debian docker-registry, a proxy-mode mirror, and a registry that
uses bearer tokens and blob redirects like the public ones."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.render.registry import RegistryInstance
from lab import registry
from lab.images import write_layout
from tests.real.conftest import agent, free_port
from tests.real.fake_registry import FakeRegistry

IMAGE_TAG = "1"



@pytest.fixture(scope="module")
def registries(tmp_path_factory, localhost_cert):
    """A TLS upstream holding the test image, and a plain-HTTP pull-through mirror of it."""
    if not Path(registry.BINARY).exists():
        pytest.fail("docker-registry is missing: run `make deps` as root")
    work = tmp_path_factory.mktemp("registries")
    up_port, mirror_port = free_port(), free_port()
    upstream = registry.start_local(RegistryInstance(f"127.0.0.1:{up_port}", str(work / "up-data"),
                                                     tls_cert=str(localhost_cert.cert), tls_key=str(localhost_cert.key)), work / "up")
    registry.wait_healthy(f"https://localhost:{up_port}", localhost_cert.ca)
    certs = work / "certs"
    certs.mkdir()
    shutil.copy(localhost_cert.ca, certs / "ca.crt")
    registry.push_test_image(work, f"localhost:{up_port}/test/small:{IMAGE_TAG}", certs)
    (work / "mirror").mkdir()
    mirror = registry.start_local(RegistryInstance(f"127.0.0.1:{mirror_port}", str(work / "mirror-data"),
                                                   remote_url=f"https://localhost:{up_port}"), work / "mirror", ca_file=localhost_cert.ca)
    registry.wait_healthy(f"http://127.0.0.1:{mirror_port}")
    yield {"image": f"localhost:{up_port}/test/small:{IMAGE_TAG}", "mirror": f"http://127.0.0.1:{mirror_port}",
           "upstream_proc": upstream, "mirror_proc": mirror, "work": work}
    for proc in (upstream, mirror):
        proc.terminate()
        proc.wait(10)


def upstream_digest(work: Path) -> str:
    index = json.loads((work / "layout" / "index.json").read_text())
    return index["manifests"][0]["digest"]


def test_a_pull_from_the_real_registry_verifies_every_blob(registries, localhost_cert):
    rc, doc = agent("pull", registries["image"], "--ca-file", str(localhost_cert.ca), "--platform", "linux/arm64")
    rec = doc["records"][0]
    assert rc == 0 and rec["ok"] and rec["served_by"] == "upstream"
    steps = [s["step"] for s in rec["steps"]]
    assert steps[:2] == ["manifest", "manifest"], "index first, then the platform manifest"
    assert steps.count("layer") == 3 and steps.count("config") == 1
    assert rec["bytes"] > 150_000


def test_the_platform_manifest_digest_matches_the_index_entry(registries, localhost_cert):
    index = json.loads((registries["work"] / "layout" / "blobs" / "sha256" / upstream_digest(registries["work"]).split(":")[1]).read_text())
    amd64 = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
    rc, doc = agent("pull", registries["image"], "--ca-file", str(localhost_cert.ca), "--platform", "linux/amd64")
    assert rc == 0 and doc["records"][0]["digest"] == amd64


def test_a_pull_through_the_mirror_is_served_by_it_with_the_same_digest(registries, localhost_cert):
    rc, direct = agent("pull", registries["image"], "--ca-file", str(localhost_cert.ca))
    rc2, mirrored = agent("pull", registries["image"], "--ca-file", str(localhost_cert.ca), "--mirror", registries["mirror"], "--repeat", "2")
    assert rc == 0 and rc2 == 0
    for rec in mirrored["records"]:
        assert rec["served_by"] == "mirror" and rec["digest"] == direct["records"][0]["digest"]
        assert rec["hosts"] == [registries["mirror"].split("//")[1]]


def test_with_the_mirror_down_the_pull_falls_back_to_the_upstream(registries, localhost_cert):
    dead_mirror = f"http://127.0.0.1:{free_port()}"
    rc, doc = agent("pull", registries["image"], "--ca-file", str(localhost_cert.ca), "--mirror", dead_mirror)
    rec = doc["records"][0]
    assert rc == 0 and rec["served_by"] == "upstream"
    assert rec["fallbacks"][0]["role"] == "mirror" and rec["fallbacks"][0]["error_class"] == "connect_refused"


def test_an_unknown_image_is_an_http_status_failure(registries, localhost_cert):
    rc, doc = agent("pull", registries["image"].replace("small", "absent"), "--ca-file", str(localhost_cert.ca))
    assert rc == 1 and doc["records"][0]["error_class"] == "http_status"


def test_token_flow_and_blob_redirects_like_the_public_registries(fake):
    host = fake.url.split("//")[1]
    rc, doc = agent("pull", f"{host}/team/app:v1", "--plain-http", host, "--platform", "linux/amd64")
    rec = doc["records"][0]
    assert rc == 0, rec
    assert [s["step"] for s in rec["steps"]][0] == "token"
    blob_host = f"localhost:{fake.blobs.server_address[1]}"
    assert blob_host in rec["hosts"], "the redirected blob host must be recorded"
    assert fake.blob_requests_with_auth == 0, "the bearer token must not follow a redirect to another host"


def test_a_corrupted_blob_is_a_digest_mismatch(tmp_path):
    layout = tmp_path / "layout"
    write_layout(layout, "v1")
    blobs = sorted((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    biggest = "sha256:" + blobs[-1].name
    assert hashlib.sha256(blobs[-1].read_bytes()).hexdigest() == blobs[-1].name
    fake = FakeRegistry(layout, "team/app", "v1", corrupt_digest=biggest)
    try:
        host = fake.url.split("//")[1]
        for platform in ("linux/amd64", "linux/arm64"):
            rc, doc = agent("pull", f"{host}/team/app:v1", "--plain-http", host, "--platform", platform)
            if not doc["records"][0]["ok"]:
                break
        assert rc == 1 and doc["records"][0]["error_class"] == "digest_mismatch"
    finally:
        fake.close()


def test_crictl_failures_are_classified(tmp_path, monkeypatch):
    fake_crictl = tmp_path / "crictl"
    fake_crictl.write_text("#!/bin/sh\necho 'E1125 pulling image: rpc error: code = Unknown desc = failed to do request: "
                           "Head \"https://ghcr.io/v2/x/manifests/1\": net/http: TLS handshake timeout' >&2\nexit 1\n")
    fake_crictl.chmod(0o755)
    env_path = f"{tmp_path}:{__import__('os').environ['PATH']}"
    done = subprocess.run(["python3", str(Path(__file__).resolve().parents[2] / "probes/agent.py"), "pull", "ghcr.io/x:1", "--runtime", "crictl", "--json"],
                          capture_output=True, text=True, timeout=60, env={"PATH": env_path})
    rec = json.loads(done.stdout)["records"][0]
    assert done.returncode == 1 and rec["error_class"] == "tls_handshake_timeout" and rec["runtime"] == "crictl"
