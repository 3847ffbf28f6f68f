"""The simulated internet's servers: a real docker-registry behind the registries' names, and a
Doppler-like API (also answering auth.docker.io's /token)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.render.registry import RegistryInstance, registry_config
from lab import registry
from lab.blackhole import start_https
from lab.images import write_layout
from lab.netns import Topology, wait_for_port
from lab.pki import ServerCert, issue
from lab.topology import API_IP, BLOB_IP, BLOB_NAME, NAMES, REGISTRY_IP

TEST_IMAGE = "ghcr.io/netstab/lab-image:1"


@dataclass
class Services:
    cert: ServerCert
    registry_proc: subprocess.Popen[bytes]
    api_proc: subprocess.Popen[bytes]


def start(topo: Topology, work: Path) -> Services:
    cert = issue(work / "pki", "internet", [*NAMES, REGISTRY_IP, API_IP])
    # the registry pushes to itself under the real names
    topo.set_hosts_file("registry", dict.fromkeys(NAMES, REGISTRY_IP))
    reg = registry.start_in(topo, "registry", _instance(work, cert), work / "registry")
    wait_for_port(topo, "registry", REGISTRY_IP, 443)
    certs = work / "certs.d"
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert.ca, certs / "ca.crt")
    # skopeo runs inside the registry namespace (it cannot reach it from outside)
    layout = work / "image"
    write_layout(layout, "1")
    topo.run("registry", "skopeo", "copy", "--all", "--quiet", "--dest-cert-dir", str(certs), f"oci:{layout}:1", f"docker://{TEST_IMAGE}", timeout=120)
    api = start_https(topo, "api", API_IP, cert, probe_from="api")
    return Services(cert, reg, api)


def _instance(work: Path, cert: ServerCert) -> RegistryInstance:
    return RegistryInstance(f"{REGISTRY_IP}:443", str(work / "registry-data"), tls_cert=str(cert.cert), tls_key=str(cert.key))


def redirect_blobs(topo: Topology, svc: Services, work: Path) -> subprocess.Popen[bytes]:
    """The registry again, its blob downloads redirected to the blob host (`lab.topology.add_blob_host`):
    distribution's `redirect` storage middleware answers a blob GET with 307 to
    https://BLOB_NAME/<the blob's storage path>, and the blob host serves that storage. Manifests and
    the API stay at the registry."""
    topo.stop(svc.registry_proc)
    config = yaml.safe_load(registry_config(_instance(work, svc.cert)))
    config["middleware"] = {"storage": [{"name": "redirect", "options": {"baseurl": f"https://{BLOB_NAME}"}}]}
    path = work / "registry" / "config-redirect.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    svc.registry_proc = topo.start("registry", *registry.command(path), log=work / "registry" / "registry.log")
    wait_for_port(topo, "registry", REGISTRY_IP, 443)
    cert = issue(work / "pki", "blobs", [BLOB_NAME, BLOB_IP])
    return start_https(topo, "blobs", BLOB_IP, cert, "files", probe_from="blobs", root=work / "registry-data")


def replace_registry(topo: Topology, svc: Services, mode: str) -> None:
    """A `lab.servers` server in `mode` where the registry answered (all the registries' names)."""
    topo.stop(svc.registry_proc)
    svc.registry_proc = start_https(topo, "registry", REGISTRY_IP, svc.cert, mode, probe_from="registry")


def replace_api(topo: Topology, svc: Services, mode: str, cert: ServerCert | None = None) -> None:
    """A `lab.servers` server in `mode` (with another certificate, if given) where the API answered."""
    topo.stop(svc.api_proc)
    svc.api_proc = start_https(topo, "api", API_IP, cert or svc.cert, mode, probe_from="api")
