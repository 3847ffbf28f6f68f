"""What the monitoring step installs on each host: a config the agent accepts, units systemd
accepts, and install / update / remove scripts run for real under a folder with a fake systemctl."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from components.config import parse_config
from components.render import monitoring
from probes import agent

AGENT_TEXT = Path(agent.__file__).read_text()


def probes_of(raw):
    return monitoring.render_monitoring(parse_config(raw))


def test_every_node_the_mirror_and_the_proxmox_host_get_one(homelab):
    probes = monitoring.render_monitoring(homelab)
    assert {h: p.role for h, p in probes.items()} == {"cp1": "node", "worker1": "node", "worker2": "node", "mirror": "mirror",
                                                      "proxmox": "reference"}


def test_a_disabled_monitoring_renders_nothing(homelab_raw):
    homelab_raw["monitoring"]["enabled"] = False
    assert probes_of(homelab_raw) is None


def test_the_agent_accepts_every_hosts_config(homelab, tmp_path):
    for host, probe in monitoring.render_monitoring(homelab).items():
        path = tmp_path / f"{host}.json"
        path.write_text(probe.config)
        cfg = agent.load_cycle_config(str(path))
        assert cfg["host"] == host and cfg["textfile_dir"] == "/var/lib/prometheus/node-exporter"
        bound = agent.config_bound_s(cfg)
        assert f"TimeoutStartSec={int(bound) + 60}\n" in probe.service  # killed only past the longest a run can take


def test_the_timer_runs_every_interval_jittered_by_a_tenth(homelab_raw):
    homelab_raw["monitoring"]["intervalSeconds"] = 600
    timer = probes_of(homelab_raw)["cp1"].timer
    assert "OnUnitActiveSec=600\n" in timer and "RandomizedDelaySec=60\n" in timer


def test_the_listener_binds_each_hosts_vm_subnet_address(homelab_raw):
    homelab_raw["monitoring"].update(output="listener", proxmoxAddress="10.27.27.2", listenPort=9500)
    probes = probes_of(homelab_raw)
    assert "--listen 10.27.27.11:9500 " in probes["cp1"].listener
    assert "--listen 10.27.27.5:9500 " in probes["mirror"].listener
    assert "--listen 10.27.27.2:9500 " in probes["proxmox"].listener
    assert json.loads(probes["cp1"].config)["textfile_dir"] is None
    assert probes["cp1"].metrics_path == "/var/lib/netstab/probes/netstab_probe.prom"


def test_systemd_accepts_the_units(homelab_raw, tmp_path):
    homelab_raw["monitoring"].update(output="listener", proxmoxAddress="10.27.27.2")
    probe = probes_of(homelab_raw)["cp1"]
    for name, text in (("netstab-probe.service", probe.service), ("netstab-probe.timer", probe.timer),
                       ("netstab-probe-metrics.service", probe.listener)):
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, sorted(tmp_path.iterdir()))], capture_output=True, text=True)
    problems = [line for line in done.stderr.splitlines() if "agent.py" not in line]  # the agent is not installed here
    assert problems == [], done.stderr


# ---------------------------------------------------------------- the scripts, run


@pytest.fixture
def host(tmp_path):
    """A folder standing for a host's root, and a systemctl that logs its calls there."""
    root, bin_ = tmp_path / "root", tmp_path / "bin"
    root.mkdir()
    bin_.mkdir()
    (bin_ / "systemctl").write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/systemctl.log\n")
    (bin_ / "systemctl").chmod(0o755)
    return root, bin_, tmp_path / "systemctl.log"


def run(script: str, host, stdin: str = "") -> subprocess.CompletedProcess[str]:
    root, bin_, _ = host
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "NETSTAB_ROOT": str(root)}
    return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True, text=True, env=env, timeout=30)


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_install_update_and_remove_converge_a_host(homelab_raw, host):
    root, _, log = host
    first = probes_of(homelab_raw)["cp1"]
    done = run(first.install, host, AGENT_TEXT)
    assert done.returncode == 0, done.stderr
    assert files(root) == {"usr/local/lib/netstab/agent.py", "etc/netstab/probe.json", "etc/systemd/system/netstab-probe.service",
                           "etc/systemd/system/netstab-probe.timer", "var/lib/netstab/probe-metrics-path"}
    assert (root / "usr/local/lib/netstab/agent.py").read_text() == AGENT_TEXT
    assert (root / "etc/netstab/probe.json").read_text() == first.config
    assert log.read_text().splitlines() == ["daemon-reload", "enable netstab-probe.timer", "restart netstab-probe.timer"]
    # a run wrote its metrics and a stored run
    (root / "var/lib/prometheus/node-exporter/netstab_probe.prom").write_text("# old\n")
    (root / "var/lib/netstab/probes/run-20261206T000000Z-1.json").write_text("[]")

    homelab_raw["monitoring"].update(output="listener", proxmoxAddress="10.27.27.2")
    second = probes_of(homelab_raw)["cp1"]
    log.unlink()
    assert run(second.install, host, AGENT_TEXT).returncode == 0
    assert not (root / "var/lib/prometheus/node-exporter/netstab_probe.prom").exists(), "the old textfile would be served forever"
    assert (root / "var/lib/netstab/probes/run-20261206T000000Z-1.json").exists(), "an update keeps the store"
    assert (root / "etc/systemd/system/netstab-probe-metrics.service").exists()
    assert "restart netstab-probe-metrics.service" in log.read_text()

    homelab_raw["monitoring"]["output"] = "textfile"
    assert run(probes_of(homelab_raw)["cp1"].install, host, AGENT_TEXT).returncode == 0
    assert not (root / "etc/systemd/system/netstab-probe-metrics.service").exists(), "back to textfile: the listener goes"

    (root / "var/lib/prometheus/node-exporter/netstab_probe.prom").write_text("# new\n")
    assert run(first.remove, host).returncode == 0
    assert files(root) == set()
    assert run(first.remove, host).returncode == 0, "removing twice is fine (destroy after a disable)"


def test_the_install_refuses_a_host_without_python3(homelab, host, tmp_path):
    root, bin_, _ = host
    probe = monitoring.render_monitoring(homelab)["cp1"]
    shell = shutil.which("sh")
    done = subprocess.run([shell, "-c", probe.install], input="", capture_output=True, text=True,
                          env={"PATH": str(bin_), "NETSTAB_ROOT": str(root)}, timeout=30)
    assert done.returncode == 1 and "no python3" in done.stderr
    assert files(root) == set()
