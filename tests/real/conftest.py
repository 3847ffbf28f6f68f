"""Real-ring fixtures: a lab CA, namespaces (root only), and the agent as a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lab.pki import ServerCert, issue

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
