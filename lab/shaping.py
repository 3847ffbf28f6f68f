"""Attach the userspace shaper to a router namespace: steer chosen destinations through it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lab.netns import NetnsError, Topology
from lab.shaper import SHAPED_TABLE, Shape

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Route:
    """How the router reaches `destination` without shaping: `dev`, and a gateway if not connected."""

    destination: str
    dev: str
    via: str | None = None


def shape_router(topo: Topology, router: str, routes: list[Route], shape: Shape, dev: str = "shp0", seed: int = 1) -> None:
    """Everything `router` forwards toward `routes` passes the shaper once (both directions when
    both ends are listed)."""
    topo.start(router, sys.executable, "-m", "lab.shaper", "--dev", dev, "--delay-ms", str(shape.delay_ms),
               "--loss", str(shape.loss), "--rate-kbit", str(shape.rate_kbit), "--seed", str(seed), env={"PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 10
    while topo.run(router, "ip", "link", "show", dev, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise NetnsError(f"shaper device {dev} did not appear in {router}")
        time.sleep(0.05)
    for key in ("all", "default", dev):
        topo.run(router, "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=0")
    topo.run(router, "ip", "link", "set", dev, "up")
    topo.run(router, "ip", "rule", "add", "iif", dev, "lookup", str(SHAPED_TABLE), "pref", "100")
    for route in routes:
        onward = ["ip", "route", "replace", route.destination, "dev", route.dev, "table", str(SHAPED_TABLE)]
        topo.run(router, *onward, *(["via", route.via] if route.via else []))
        # replaces the plain (or connected) route in the main table: forwarded traffic enters the shaper
        topo.run(router, "ip", "route", "replace", route.destination, "dev", dev)
