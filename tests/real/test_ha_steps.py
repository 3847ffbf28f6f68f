"""The HA steps run for real (issue 19): the readiness script against a stand-in `k3s` on PATH, and
the HA server install against the stand-in installer of test_remote_steps."""

from __future__ import annotations

import copy
import stat
import subprocess
from pathlib import Path

import pytest

from components.config import parse_config
from components.render import k3s, kubevip
from components.stack import read_stack_file, stack_file
from tests.real.test_remote_steps import _install_runs

# The stand-in answers `k3s kubectl get node NAME -o jsonpath=...` from $STATE/nodes/NAME (absent: the
# node is unknown; the Ready status alone, or with both role labels, as the jsonpath asks), and `k3s kubectl --server URL get --raw /readyz` from $STATE/readyz, recording the URL.
STAND_IN_K3S = """#!/bin/sh
[ "$1" = kubectl ] || exit 64
shift
if [ "$1" = --server ]; then
  echo "$2" >> "$STATE/dialled"
  [ -f "$STATE/readyz" ] || { echo "connection refused" >&2; exit 1; }
  cat "$STATE/readyz"; exit 0
fi
case "$1 $2" in
  "get node") ;;
  "get nodes") echo "NAME STATUS"; exit 0 ;;
  *) exit 64 ;;
esac
[ -f "$STATE/nodes/$3" ] || { echo "Error from server (NotFound)" >&2; exit 1; }
case "$5" in
  *control-plane*etcd*) cat "$STATE/nodes/$3" ;;  # Ready status, control-plane label, etcd label
  *'type=="Ready"'*) cut -d' ' -f1 "$STATE/nodes/$3" ;;  # the Ready status alone
  *) exit 64 ;;
esac
"""

HEALTHY = {"cp1": "True true true", "cp2": "True true true", "cp3": "True true true", "worker1": "True", "worker2": "True"}


@pytest.fixture
def ha():
    raw, _ = read_stack_file(stack_file("homelab-ha"))
    return parse_config(copy.deepcopy(raw))


def _run_ready(tmp_path: Path, script: str, nodes: dict[str, str], readyz: str | None) -> subprocess.CompletedProcess[str]:
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    (state / "nodes").mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "k3s").write_text(STAND_IN_K3S)
    (bin_dir / "k3s").chmod(0o755)
    for name, text in nodes.items():
        (state / "nodes" / name).write_text(text)
    if readyz is not None:
        (state / "readyz").write_text(readyz)
    # one poll, no sleep: the deadline is already past after the first round (the loop itself is the script's)
    fast = script.replace("deadline=$(( $(date +%s) + 600 ))", "deadline=0").replace("sleep 5", "sleep 0")
    assert fast != script
    return subprocess.run(["sh", "-c", fast], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state)})


def test_ha_ready_passes_when_every_server_is_an_etcd_control_plane_the_vip_answers_and_agents_are_ready(tmp_path, ha):
    done = _run_ready(tmp_path, k3s.ha_ready_script(ha), HEALTHY, "ok")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("netstab: HA Ready: 3 servers Ready as control-plane and etcd members, 2 agents Ready, "
                                  "the VIP https://10.27.27.10:6443 answers /readyz")
    assert (tmp_path / "state" / "dialled").read_text().split() == ["https://10.27.27.10:6443"]


@pytest.mark.parametrize("nodes,readyz,named", [
    ({**HEALTHY, "cp2": "True true "}, "ok", "cp2(server: True true )"),  # Ready, but no etcd member
    ({**HEALTHY, "cp3": "False true true"}, "ok", "cp3(server: False true true)"),
    ({k: v for k, v in HEALTHY.items() if k != "cp3"}, "ok", "cp3(server: absent)"),
    ({**HEALTHY, "worker2": "Unknown"}, "ok", "worker2(agent: Unknown)"),
    (HEALTHY, None, "VIP https://10.27.27.10:6443(/readyz: no answer)"),
    (HEALTHY, "[-]etcd failed", "VIP https://10.27.27.10:6443(/readyz: [-]etcd failed)"),
])
def test_ha_ready_names_what_is_not_ha_yet(tmp_path, ha, nodes, readyz, named):
    done = _run_ready(tmp_path, k3s.ha_ready_script(ha), nodes, readyz)
    assert done.returncode == 1
    assert done.stderr.startswith("netstab: not HA Ready after 600s: ") and named in done.stderr.splitlines()[0]


def test_the_single_server_check_would_call_a_cluster_without_etcd_members_or_vip_ready(tmp_path, ha):
    """Counterfactual: the Ready-only check (the single-server stack's) passes what the HA check refuses."""
    broken = {**HEALTHY, "cp2": "True"}
    assert _run_ready(tmp_path, k3s.nodes_ready_script(ha), broken, None).returncode == 0
    assert _run_ready(tmp_path / "ha", k3s.ha_ready_script(ha), broken, None).returncode == 1


def _ha_server_script(tmp_path: Path, config, node) -> str:
    script = k3s.server_install_script(config, node)
    return (script.replace(k3s.CONFIG_FILE, str(tmp_path / "state" / "config.yaml"))
                  .replace(kubevip.MANIFEST_PATH, str(tmp_path / "state" / "manifests" / "kube-vip.yaml")))


def test_an_ha_server_install_writes_its_config_private_before_the_installer_and_reapplies_on_change(tmp_path, ha):
    (tmp_path / "state").mkdir()
    first = _ha_server_script(tmp_path, ha, ha.servers[0])
    installs = _install_runs(tmp_path, first, "token-one")
    assert len(installs) == 1 and "--cluster-init" not in installs[0] and "--tls-san" not in installs[0]
    written = tmp_path / "state" / "config.yaml"
    assert written.read_text() == "cluster-init: true\ntls-san:\n- 10.27.27.10\n- 10.27.27.11\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    manifest = tmp_path / "state" / "manifests" / "kube-vip.yaml"
    assert manifest.read_text() == kubevip.manifest_text(ha) and "token-one" not in written.read_text()
    assert len(_install_runs(tmp_path, first, "token-one")) == 1, "the same config is not applied again"
    moved = parse_config({**_raw(ha), "k3s": {**_raw(ha)["k3s"], "vip": "10.27.27.9"}})
    assert len(_install_runs(tmp_path, _ha_server_script(tmp_path, moved, moved.servers[0]), "token-one")) == 2
    assert "10.27.27.9" in written.read_text()


def test_a_joining_server_writes_the_first_servers_address_and_no_manifest(tmp_path, ha):
    (tmp_path / "state").mkdir()
    _install_runs(tmp_path, _ha_server_script(tmp_path, ha, ha.servers[1]), "token-one")
    assert (tmp_path / "state" / "config.yaml").read_text() == "server: https://10.27.27.11:6443\ntls-san:\n- 10.27.27.10\n- 10.27.27.12\n"
    assert not (tmp_path / "state" / "manifests").exists()


def _raw(config) -> dict:
    raw, _ = read_stack_file(stack_file("homelab-ha"))
    return copy.deepcopy(raw)
