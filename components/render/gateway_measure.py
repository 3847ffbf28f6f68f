"""gateway.pathMtu: auto: the path MTU measured from the gateway itself, before it clamps.

The measurement runs the probe agent's `mss-sweep` on the gateway against each endpoint host,
bound to the gateway's own address on the VM subnet (`--source`), so its packets leave as the VMs'
do (NAT and policy routing by source included). `measured_path_mtu` reads the result: the lowest
path MTU among the sweeps that found a black hole; a clean path gives the node MTU (a clamp at the
VMs' own MSS, which changes nothing on a path that carries it). Pure: the script is text, the
reader a function of the script's output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from urllib.parse import urlsplit

from components.config import NetworkConfig
from components.render.quote import file_name, word
from components.render.shell import STATE_DIR, with_agent

MEASURE_SCHEMA = "netstab.gateway-measure/v1"
MISSING_PYTHON = ("netstab: python3 is missing on the gateway: gateway.pathMtu: auto measures with the probe agent there. "
                  "Install python3, or set gateway.pathMtu to a number (run mss-sweep from a node).")


class MeasureError(ValueError):
    """The measurement gave no usable value; the message says what to do."""


_COLLECT = r'''import json, sys
sweeps = []
for path in sys.argv[1:]:
    try:
        sweeps.append(json.load(open(path))["mss_sweep"])
    except (OSError, ValueError, KeyError):
        sweeps.append({"target": path.rsplit("/", 1)[-1][:-5], "verdict": "no-result"})
print(json.dumps({"schema": "@SCHEMA@", "sweeps": sweeps}))
'''.replace("@SCHEMA@", MEASURE_SCHEMA)


def sweep_targets(endpoints: Sequence[str]) -> list[str]:
    """host:port of each endpoint, once each, in order."""
    seen: dict[str, None] = {}
    for url in endpoints:
        parts = urlsplit(url)
        seen.setdefault(f"{parts.hostname}:{parts.port or 443}", None)
    return list(seen)


def stored_at(slug: str) -> str:
    """Where the gateway keeps its measurement: later steps print it instead of measuring again."""
    return f"{STATE_DIR}/gateway-measure-{slug}.json"


def measure_script(network: NetworkConfig, endpoints: Sequence[str], slug: str, reuse: bool) -> str:
    """Run on the gateway with the probe agent on stdin; prints one JSON object with every sweep and
    keeps it on the gateway. `reuse`: print the kept measurement when there is one (the step's
    update: a new agent or endpoint list does not measure again; gateway.remeasure replaces the step,
    whose create measures with the current script)."""
    # every endpoint at once: each sweep takes a few seconds, the slowest bounds the step
    sweeps = "\n".join(
        f'python3 "$work/agent.py" mss-sweep {word(t)} --source {network.gateway} --json --quiet > "$work/out/"{word(file_name(f"{t}.json"))} &'
        for t in sweep_targets(endpoints))
    kept = 'if [ -s "$store" ]; then cat "$store"; exit 0; fi\n' if reuse else ""
    # NETSTAB_ROOT (empty on a real gateway) relocates the kept file for the lab and tests
    return f"""#!/bin/sh
set -u
store="${{NETSTAB_ROOT:-}}{stored_at(slug)}"
{kept}{with_agent(MISSING_PYTHON)}{sweeps}
wait
python3 - "$work"/out/*.json > "$work/measured.json" <<'NETSTAB_PY'
{_COLLECT}NETSTAB_PY
mkdir -p "$(dirname "$store")"
cp "$work/measured.json" "$store"
cat "$store"
"""


def measured_path_mtu(output: str, mtu: int) -> int:
    """The path MTU to clamp for, from the measurement's output (see the module docstring)."""
    try:
        result = json.loads(output)
        sweeps = result["sweeps"] if result.get("schema") == MEASURE_SCHEMA else None
    except (TypeError, ValueError, KeyError, AttributeError):
        sweeps = None
    if not isinstance(sweeps, list):
        raise MeasureError("the path MTU measurement on the gateway printed no result; see the gateway-measure step's output")
    holes = [int(s["path_mtu"]) for s in sweeps if s.get("verdict") == "black-hole" and s.get("path_mtu")]
    if holes:
        return min(min(holes), mtu)
    if any(s.get("verdict") in ("clean", "clean-default") for s in sweeps):
        return mtu
    seen = ", ".join(f"{s.get('target', '?')}: {s.get('verdict', '?')}" for s in sweeps) or "no endpoint"
    raise MeasureError(f"could not measure the path MTU from the gateway ({seen}); set gateway.pathMtu to a number, "
                       f"or fix the gateway's egress and raise gateway.remeasure")
