"""Real `docker-registry` (CNCF distribution) processes for the tests and the lab."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

from components.render.registry import RegistryInstance, registry_config
from lab.images import write_layout
from lab.netns import NetnsError, Topology, sh

BINARY = "/usr/bin/docker-registry"


def write_config(instance: RegistryInstance, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(registry_config(instance))
    return path


def command(config: Path) -> list[str]:
    return [BINARY, "serve", str(config)]


def start_local(instance: RegistryInstance, workdir: Path, ca_file: Path | None = None) -> subprocess.Popen[bytes]:
    """On loopback, for tests without namespaces. SSL_CERT_FILE makes a proxy trust the lab CA."""
    config = write_config(instance, workdir / "config.yml")
    env = {"SSL_CERT_FILE": str(ca_file)} if ca_file else {}
    log = open(workdir / "registry.log", "ab")  # noqa: SIM115 (owned by the process)
    return subprocess.Popen(command(config), stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)


def start_in(topo: Topology, host: str, instance: RegistryInstance, workdir: Path, ca_file: Path | None = None) -> subprocess.Popen[bytes]:
    config = write_config(instance, workdir / "config.yml")
    env = {"SSL_CERT_FILE": str(ca_file)} if ca_file else {}
    return topo.start(host, *command(config), env=env, log=workdir / "registry.log")


def wait_healthy(url: str, ca_file: Path | None = None, timeout: float = 20) -> None:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/v2/", timeout=2, context=context):
                return
        except urllib.error.HTTPError:
            return  # 401 means it answers
        except OSError:
            time.sleep(0.2)
    raise NetnsError(f"registry at {url} did not answer within {timeout}s")


def push_test_image(workdir: Path, destination: str, ca_dir: Path | None, tag: str = "1") -> None:
    """Build the small multi-platform OCI image and push it with skopeo (all platforms)."""
    layout = workdir / "layout"
    write_layout(layout, tag)
    tls = ["--dest-cert-dir", str(ca_dir)] if ca_dir else ["--dest-tls-verify=false"]
    sh("skopeo", "copy", "--all", "--quiet", *tls, f"oci:{layout}:{tag}", f"docker://{destination}", timeout=120)
