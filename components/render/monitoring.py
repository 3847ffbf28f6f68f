"""The continuous probes on a host: the cycle's JSON config, the systemd service, timer and (with
`output: listener`) metrics listener, and the scripts that install, update and remove them. Pure.

Paths on the host: the agent at /usr/local/lib/netstab/agent.py (from stdin), its config at
/etc/netstab/probe.json, units in /etc/systemd/system, the store at /var/lib/netstab/probes, the
metrics file in the textfile directory (or the store, for the listener). The install converges:
run again with other settings it rewrites what changed and restarts only what it must; the remove
takes away everything it installed, the metrics file too (node-exporter would serve a dead
writer's values forever), and the store.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from components.config import StackConfig
from components.config.monitoring import cycle_bound
from components.config.validation import PROXMOX
from components.render.mirror import pulls_through
from components.render.quote import word
from components.render.shell import STATE_DIR, write_file

AGENT_PATH = "/usr/local/lib/netstab/agent.py"
CONFIG_PATH = "/etc/netstab/probe.json"
STORE = f"{STATE_DIR}/probes"
METRICS_PATH_RECORD = f"{STATE_DIR}/probe-metrics-path"  # where the last install put the metrics file
UNIT_DIR = "/etc/systemd/system"
SERVICE, TIMER, LISTENER = "netstab-probe.service", "netstab-probe.timer", "netstab-probe-metrics.service"
METRICS_FILE = "netstab_probe.prom"  # probes/agent.py METRICS_FILE
KILL_MARGIN_S = 60  # systemd stops a run this long after the longest it can take


@dataclass(frozen=True)
class HostProbe:
    """One host's continuous probe: what the install writes there."""

    host: str  # the host label: node name, the mirror's name, or proxmox
    role: str  # node, mirror, reference
    config: str  # probe.json
    service: str
    timer: str
    listener: str | None  # the metrics listener's unit, with output listener
    metrics_path: str
    install: str
    remove: str


def cycle_config(config: StackConfig, host: str, role: str, mirrors: dict[str, str]) -> dict[str, Any]:
    m = config.monitoring
    return {
        "host": host, "role": role, "interval_seconds": m.interval_seconds, "endpoints": list(config.monitoring_endpoints),
        "images": list(config.monitoring_images), "mirrors": mirrors, "repeats": m.repeats, "timeout_seconds": m.timeout_seconds,
        "store": STORE, "retention_hours": m.retention_hours, "max_store_bytes": m.max_store_bytes,
        "textfile_dir": m.textfile_dir if m.output == "textfile" else None, "max_sweeps": m.max_sweeps,
        "sweep_budget_seconds": m.sweep_budget_seconds,
    }


def node_mirrors(config: StackConfig) -> dict[str, str]:
    """image -> the mirror instance a node pulls it through (as containerd does with registries.yaml)."""
    if not config.mirror.enabled or config.mirror.vm is None:
        return {}
    return {image: url for url, images in pulls_through(config.mirror, config.monitoring_images).items() for image in images}


def service_unit(run_bound_s: float) -> str:
    return f"""[Unit]
Description=netstab continuous probe: one run of the agent's cheap set (docs/monitoring.md)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {AGENT_PATH} cycle --config {CONFIG_PATH}
# never in the node's way: low priority, bounded memory, killed past the longest a run can take
Nice=10
IOSchedulingClass=idle
MemoryMax=256M
TimeoutStartSec={int(run_bound_s) + KILL_MARGIN_S}
NoNewPrivileges=yes
PrivateTmp=yes
ProtectHome=yes
"""


def timer_unit(interval_s: int) -> str:
    return f"""[Unit]
Description=netstab continuous probe every {interval_s} s, jittered

[Timer]
OnBootSec=60
OnUnitActiveSec={interval_s}
RandomizedDelaySec={max(1, interval_s // 10)}
AccuracySec=1s

[Install]
WantedBy=timers.target
"""


def listener_unit(address: str, port: int) -> str:
    listen = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    return f"""[Unit]
Description=netstab continuous probe: /metrics on {listen} (docs/monitoring.md: who can reach it)
After=network-online.target

[Service]
ExecStart=/usr/bin/python3 {AGENT_PATH} serve-metrics --listen {listen} --file {STORE}/{METRICS_FILE}
DynamicUser=yes
Restart=always
RestartSec=5
NoNewPrivileges=yes

[Install]
WantedBy=multi-user.target
"""


def install_script(probe_json: str, service: str, timer: str, listener: str | None, metrics_path: str, interval_s: int) -> str:
    """Reads the agent on stdin. Converges: every file rewritten atomically, the timer (re)started,
    the listener enabled or taken away, a metrics file the previous settings wrote elsewhere
    removed. $NETSTAB_ROOT (unset on a host) puts every path under a folder, for the tests."""
    files = [(CONFIG_PATH, probe_json, "0644"), (f"{UNIT_DIR}/{SERVICE}", service, "0644"), (f"{UNIT_DIR}/{TIMER}", timer, "0644")]
    if listener is not None:
        files.append((f"{UNIT_DIR}/{LISTENER}", listener, "0644"))
    writes = "".join(write_file(path, text, mode, root='"$R"') for path, text, mode in files)
    textfile = word(metrics_path)
    listener_part = (f"systemctl enable {LISTENER} >/dev/null 2>&1\nsystemctl restart {LISTENER}\n" if listener is not None else
                     f'if [ -f "$R"{UNIT_DIR}/{LISTENER} ]; then systemctl disable --now {LISTENER} >/dev/null 2>&1 || true; '
                     f'rm -f "$R"{UNIT_DIR}/{LISTENER}; systemctl daemon-reload; fi\n')
    return f"""#!/bin/sh
{PROBE_INSTALL_HEADER} on $(hostname) (docs/monitoring.md)
set -eu
umask 022
R="${{NETSTAB_ROOT:-}}"
if ! command -v python3 >/dev/null 2>&1; then
  echo "netstab: no python3 on $(hostname): the continuous probe needs it (install python3-minimal)" >&2
  exit 1
fi
agent=$(mktemp)
cat > "$agent"
mkdir -p "$R"{os.path.dirname(AGENT_PATH)} "$R"{STORE}
install -m 0644 "$agent" "$R"{AGENT_PATH}
rm -f "$agent"
{writes}old=$(cat "$R"{METRICS_PATH_RECORD} 2>/dev/null || true)
if [ -n "$old" ] && [ "$old" != {textfile} ]; then rm -f "$R$old"; fi
mkdir -p "$R"$(dirname {textfile})
printf '%s\\n' {textfile} > "$R"{METRICS_PATH_RECORD}
systemctl daemon-reload
systemctl enable {TIMER} >/dev/null 2>&1
systemctl restart {TIMER}
{listener_part}echo "netstab: continuous probe on $(hostname), every {interval_s} s"
"""


PROBE_INSTALL_HEADER = "# netstab: install or update the continuous probe"
PROBE_REMOVE_HEADER = "# netstab: remove the continuous probe"


def remove_script() -> str:
    """Takes everything the install put on the host away; nothing there: nothing to do."""
    return f"""#!/bin/sh
{PROBE_REMOVE_HEADER} from $(hostname)
set -eu
R="${{NETSTAB_ROOT:-}}"
for unit in {TIMER} {SERVICE} {LISTENER}; do
  systemctl disable --now "$unit" >/dev/null 2>&1 || true
  rm -f "$R"{UNIT_DIR}/"$unit"
done
systemctl daemon-reload || true
metrics=$(cat "$R"{METRICS_PATH_RECORD} 2>/dev/null || true)
if [ -n "$metrics" ]; then rm -f "$R$metrics"; fi
rm -rf "$R"{STORE}
rm -f "$R"{METRICS_PATH_RECORD} "$R"{CONFIG_PATH} "$R"{AGENT_PATH}
echo "netstab: continuous probe removed from $(hostname)"
"""


def host_probe(config: StackConfig, host: str, role: str, address: str | None, mirrors: dict[str, str]) -> HostProbe:
    m = config.monitoring
    cfg = cycle_config(config, host, role, mirrors)
    probe_json = json.dumps(cfg, indent=2) + "\n"
    bound = cycle_bound(m, len(cfg["endpoints"]), len(cfg["images"]), bool(mirrors))
    listener = listener_unit(address, m.listen_port) if m.output == "listener" and address else None
    metrics_path = f"{m.textfile_dir}/{METRICS_FILE}" if m.output == "textfile" else f"{STORE}/{METRICS_FILE}"
    service, timer = service_unit(bound), timer_unit(m.interval_seconds)
    install = install_script(probe_json, service, timer, listener, metrics_path, m.interval_seconds)
    return HostProbe(host, role, probe_json, service, timer, listener, metrics_path, install, remove_script())


def render_monitoring(config: StackConfig) -> dict[str, HostProbe] | None:
    """host -> its probe: every cluster node, the mirror VM when enabled, and the Proxmox host (the reference)."""
    m = config.monitoring
    if not m.enabled:
        return None
    out = {node.name: host_probe(config, node.name, "node", str(node.ip), node_mirrors(config)) for node in config.nodes}
    if config.mirror.enabled and config.mirror.vm is not None:
        vm = config.mirror.vm
        out[vm.name] = host_probe(config, vm.name, "mirror", str(vm.ip), {})
    out[PROXMOX] = host_probe(config, PROXMOX, "reference", str(m.proxmox_address) if m.proxmox_address else None, {})
    return out
