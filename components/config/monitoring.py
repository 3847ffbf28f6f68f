"""The `monitoring` section: the continuous probes between deploys (a systemd timer running the
agent's `cycle` on every node, the mirror VM and the Proxmox host; docs/monitoring.md)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from components.config.base import Problems, Section, rule
from components.config.fields import IP, Bool, Check, between, matching, one_of, plain, string_list
from components.config.mirror import IMAGE_REF
from components.config.validation import _urls
from probes.agent import cycle_bound_s

OUTPUTS = ("textfile", "listener")
ABSOLUTE_DIR = re.compile(r"^/[A-Za-z0-9._/-]*$")
# what the cycle runs with (probes/agent.py CYCLE_DEFAULTS): fixed here, so the bound below is the agent's
CONCURRENCY = 8


def _images(value: Any) -> tuple[str, ...]:
    refs = string_list(value) if value not in ([], ()) else ()
    bad = [r for r in refs if not IMAGE_REF.fullmatch(r) or len(r) > 512]
    if bad:
        raise ValueError(f"references without an explicit registry and tag: {', '.join(map(plain, bad))}")
    return refs


def _endpoints(value: Any) -> tuple[str, ...]:
    return () if value in ([], ()) else _urls(value)


Path = Annotated[str, matching("an absolute path such as /var/lib/prometheus/node-exporter", ABSOLUTE_DIR, 255)]


class MonitoringConfig(Section):
    """Continuous probes between deploys: the agent's cheap set every interval on every node, the mirror VM and
    the Proxmox host (the reference), its runs kept in a bounded store and exported as Prometheus metrics."""

    enabled: Bool = False
    """Install the netstab-probe timer (removed again when false)."""
    interval_seconds: Annotated[int, between(1, 86400)] = 300
    """Seconds between runs; each start is jittered by up to a tenth of it. Must exceed what one run can take."""
    endpoints: Annotated[tuple[str, ...], Check("a list of https:// URLs", _endpoints, {"type": "array", "items": {"type": "string"}})] = ()
    """Endpoints probed each run (a few repeats and one big hello each); default: validation.endpoints, the gate's."""
    images: Annotated[tuple[str, ...], Check("a list of image references (registry/repo:tag)", _images,
                                              {"type": "array", "items": {"type": "string"}})] = ()
    """Images whose manifests are checked each run (no layers); default: validation.images, the gate's."""
    repeats: Annotated[int, between(1, 20)] = 3
    """Requests per endpoint each run, besides the one with the big hello."""
    timeout_seconds: Annotated[int, between(1, 60)] = 5
    """Bound on each request."""
    max_sweeps: Annotated[int, between(0, 10)] = 3
    """mss-sweeps per run, only to hosts whose TLS handshake stalled."""
    sweep_budget_seconds: Annotated[int, between(5, 300)] = 30
    """Time budget of each sweep."""
    retention_hours: Annotated[int, between(1, 8760)] = 24
    """Stored runs older than this are removed (/var/lib/netstab/probes)."""
    max_store_mb: Annotated[int, between(1, 10240)] = 50
    """Byte cap of the store, MiB: the oldest runs go first."""
    output: Annotated[str, one_of(OUTPUTS)] = "textfile"
    """textfile: node-exporter's textfile collector reads the metrics; listener: a small /metrics listener on the host's VM-subnet address."""
    textfile_dir: Path = "/var/lib/prometheus/node-exporter"
    """With output textfile: node-exporter's --collector.textfile.directory (Debian's default)."""
    listen_port: Annotated[int, between(1024, 65535)] = 9427
    """With output listener: its TCP port, on each host's VM-subnet address (no firewall of netstab's: every host that routes to the subnet can read it)."""
    proxmox_address: IP | None = None
    """With output listener: the Proxmox host's address on the VM subnet, to bind its listener to (required then)."""

    @property
    def max_store_bytes(self) -> int:
        return self.max_store_mb * 1024 * 1024

    @rule("enabled", "output", "proxmox_address")
    def _listener_needs_the_proxmox_address(self) -> Problems:
        if self.enabled and self.output == "listener" and self.proxmox_address is None:
            yield ("proxmoxAddress",), "output listener binds each host's listener to its VM-subnet address: give the Proxmox host's"


def cycle_bound(m: MonitoringConfig, endpoints: int, images: int, mirror: bool) -> float:
    """The longest one run can take with these settings (the agent's own arithmetic)."""
    return cycle_bound_s(endpoints, images, m.repeats, float(m.timeout_seconds), CONCURRENCY, mirror, m.max_sweeps, float(m.sweep_budget_seconds))
