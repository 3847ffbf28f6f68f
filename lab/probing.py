"""Run the probe agent on lab hosts, all hosts at once, and keep its JSON evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab.netns import Topology
from lab.topology import NAMES

REPO = Path(__file__).resolve().parent.parent
AGENT = REPO / "probes" / "agent.py"
ENDPOINTS = [
    "https://ghcr.io/v2/",
    "https://auth.docker.io/token",
    "https://registry-1.docker.io/v2/",
    "https://quay.io/v2/",
    "https://registry.k8s.io/v2/",
    "https://api.doppler.com/v3/projects",
]
assert {e.split("/")[2] for e in ENDPOINTS} == set(NAMES)


def agent(topo: Topology, host: str, *args: str, timeout: float = 180) -> dict[str, Any]:
    """The agent inside a host namespace, fed on stdin as the program does on real nodes."""
    argv = ["ip", "netns", "exec", topo.ns(host), sys.executable, "-", *args, "--json", "--quiet"]
    with open(AGENT) as source:
        done = subprocess.run(argv, stdin=source, capture_output=True, text=True, timeout=timeout)
    if not done.stdout.strip():
        raise RuntimeError(f"the agent printed nothing on {host}: {done.stderr[-1000:]}")
    return dict(json.loads(done.stdout))


def phase1(topo: Topology, hosts: tuple[str, ...], ca_file: Path, image: str, repeat: int = 3, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
    """The plan's Phase 1 from every host at once: the six endpoints repeated, and one image pull.
    Returns host -> one evidence document (http records, then pull records)."""
    common = ["--ca-file", str(ca_file), "--timeout", str(timeout)]

    def probe(host: str) -> dict[str, Any]:
        http = agent(topo, host, "http", *ENDPOINTS, "--repeat", str(repeat), "--concurrency", str(len(ENDPOINTS)), *common)
        pull = agent(topo, host, "pull", image, *common)
        http["records"] += pull["records"]
        http["summary"] += pull["summary"]
        return http

    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(probe, hosts), strict=True))


def sweep(topo: Topology, host: str, target: str, ca_file: Path) -> dict[str, Any]:
    doc = agent(topo, host, "mss-sweep", target, "--ca-file", str(ca_file), "--timeout", "1", "--repeat", "1", "--tracepath-timeout", "4")
    return dict(doc["mss_sweep"])
