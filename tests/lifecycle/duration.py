"""What a plan costs in wall time, in the model: the longest chain of dependent steps, each step
weighted by a nominal duration (the engine runs independent steps at once, so the critical path is
the run's length). The durations are assumptions for a small Proxmox host, not measurements: they
compare two wirings of the same program, and the ratio is what docs/lifecycle.md quotes.
"""

from __future__ import annotations

from tests.lifecycle.engine import Plan
from tests.lifecycle.table import role
from tests.lifecycle.world import ancestors
from tests.program.harness import Recording

# what the table calls a resource -> nominal seconds (anything else: 2 s)
NOMINAL_S = {
    "image": 120,  # a cloud image download
    "node VM": 90, "mirror VM": 90,  # import or clone, boot, until the guest agent reports an address
    "cloud-init wait": 120,  # first boot installs packages
    "mirror health": 20, "mirror warmup": 120,
    "K3s install": 60,
    "Ready again": 20, "nodes Ready": 20,  # the node registers and turns Ready
    "path MTU measurement": 20,
    "secret gate": 30,
    "drain": 1,  # on a first up: a no-op on the Proxmox host
}


def critical_path_s(p: Plan, recording: Recording) -> int:
    """Seconds from the first step to the last, when every step starts as soon as what it waits for is done."""
    graph = ancestors(recording)
    ran = {s.res.urn: NOMINAL_S.get(role(s.name)[1], 2) for s in p.steps if s.op != "delete"}
    by_urn = {r.urn: r for r in recording.resources}
    finish: dict[str, int] = {}

    def done(urn: str) -> int:
        if urn not in finish:
            direct = [d for d in graph.get(urn, set()) if d in by_urn]
            finish[urn] = max((done(d) for d in direct if d in ran), default=0) + ran.get(urn, 0)
        return finish[urn]

    return max((done(u) for u in ran), default=0)
