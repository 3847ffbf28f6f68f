"""Run the probe agent on lab hosts, all at once, with its own timeouts, and keep its JSON evidence."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab.netns import Topology
from lab.topology import NAMES
from probes import AGENT_PATH, plan

ENDPOINTS = list(plan.ENDPOINTS)
assert {e.split("/")[2] for e in ENDPOINTS} == set(NAMES)
REPEAT = 3  # enough for the judge to tell a wall (every attempt fails) from noise


def agent(topo: Topology, host: str, *args: str, timeout: float = 180) -> dict[str, Any]:
    """The agent inside a host namespace, fed on stdin as the program does on real nodes."""
    argv = ["ip", "netns", "exec", topo.ns(host), sys.executable, "-", *args, "--json", "--quiet"]
    with open(AGENT_PATH) as source:
        done = subprocess.run(argv, stdin=source, capture_output=True, text=True, timeout=timeout)
    if not done.stdout.strip():
        raise RuntimeError(f"the agent printed nothing on {host}: {done.stderr[-1000:]}")
    return dict(json.loads(done.stdout))


def phase1(topo: Topology, hosts: tuple[str, ...], ca_file: Path, image: str) -> dict[str, list[dict[str, Any]]]:
    """The plan's Phase 1 from every host at once: the six endpoints repeated, with a plain and a
    large (post-quantum sized) ClientHello, and one image pull. Host -> its three documents."""
    trust = ["--ca-file", str(ca_file)]
    probes = [["http", *urls, "--repeat", str(REPEAT), "--concurrency", str(len(urls) * REPEAT), *trust, *big]
              for urls, big in ((ENDPOINTS, []), (ENDPOINTS, ["--big-hello"]))]
    probes.append(["pull", image, *trust])
    jobs = [(host, args) for host in hosts for args in probes]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        docs = list(pool.map(lambda job: agent(topo, job[0], *job[1]), jobs))
    return {host: [doc for (h, _), doc in zip(jobs, docs, strict=True) if h == host] for host in hosts}


def sweep(topo: Topology, host: str, target: str, ca_file: Path) -> dict[str, Any]:
    """mss-sweep with the agent's defaults; the whole document."""
    return agent(topo, host, "mss-sweep", target, "--ca-file", str(ca_file))
