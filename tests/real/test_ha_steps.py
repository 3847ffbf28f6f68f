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
from tests.real.test_remote_steps import _install_runs, _run_install

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


def _on_stand_ins(tmp_path: Path, script: str) -> str:
    """A server script with its K3s paths under tmp_path/state (etcd initialized: state/etcd-wal exists)."""
    return (script.replace(k3s.CONFIG_FILE, str(tmp_path / "state" / "config.yaml"))
                  .replace(kubevip.MANIFEST_PATH, str(tmp_path / "state" / "manifests" / "kube-vip.yaml"))
                  .replace(k3s.ETCD_WAL_DIR, str(tmp_path / "state" / "etcd-wal")))


def _ha_server_script(tmp_path: Path, config, node) -> str:
    return _on_stand_ins(tmp_path, k3s.server_install_script(config, node))


def _fast(script: str) -> str:
    """The VIP wait in one round: its deadline passed after the first try."""
    fast = script.replace(f"deadline=$(( $(date +%s) + {k3s.VIP_WAIT_S} ))", "deadline=0").replace("sleep 5", "sleep 0")
    assert fast != script
    return fast


def test_the_founding_step_installs_with_cluster_init_and_the_steady_install_rewrites_the_join_restarting_nothing(tmp_path, ha):
    (tmp_path / "state").mkdir()
    founding = _on_stand_ins(tmp_path, k3s.found_cluster_script(ha))
    installs = _install_runs(tmp_path, founding, "token-one")
    assert len(installs) == 1 and "--cluster-init" not in installs[0] and "--tls-san" not in installs[0]
    written = tmp_path / "state" / "config.yaml"
    assert written.read_text() == "cluster-init: true\ntls-san:\n- 10.27.27.10\n- 10.27.27.11\n"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    manifest = tmp_path / "state" / "manifests" / "kube-vip.yaml"
    assert manifest.read_text() == kubevip.manifest_text(ha) and "token-one" not in written.read_text()
    (tmp_path / "state" / "etcd-wal").mkdir()  # K3s initialized its etcd
    steady = _ha_server_script(tmp_path, ha, ha.servers[0])
    assert len(_install_runs(tmp_path, steady, "token-one")) == 1, "only the join key changed: nothing restarts"
    assert written.read_text() == "server: https://10.27.27.10:6443\ntls-san:\n- 10.27.27.10\n- 10.27.27.11\n"
    assert len(_install_runs(tmp_path, steady, "token-one")) == 1
    moved = parse_config({**_raw(ha), "k3s": {**_raw(ha)["k3s"], "vip": "10.27.27.9"}})
    assert len(_install_runs(tmp_path, _ha_server_script(tmp_path, moved, moved.servers[0]), "token-one")) == 2
    assert "10.27.27.9" in written.read_text()


def test_the_founding_step_founds_nothing_where_a_cluster_already_answers_at_the_vip(tmp_path, ha):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "served-ca").write_text("a running cluster's CA\n")
    done = _run_install(tmp_path, _on_stand_ins(tmp_path, k3s.found_cluster_script(ha)), "token-one")
    assert done.returncode == 1 and "a K3s cluster already answers at https://10.27.27.10:6443: not founding a second one" in done.stderr
    assert not (tmp_path / "state" / "installs").exists()


def test_the_founding_step_founds_nothing_on_a_server_that_already_runs_etcd(tmp_path, ha):
    """A stack deployed before the step existed gets it on its next up: the first server's own install,
    in the one-at-a-time chain, applies what changed; the founding step touches nothing."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "etcd-wal").mkdir()
    (tmp_path / "state" / "served-ca").write_text("the running cluster's CA\n")
    done = _run_install(tmp_path, _on_stand_ins(tmp_path, k3s.found_cluster_script(ha)), "token-one")
    assert done.returncode == 0 and "cp1 already runs an etcd member: there is no cluster to found" in done.stdout, done.stderr
    assert not (tmp_path / "state" / "installs").exists() and not (tmp_path / "state" / "config.yaml").exists()


def test_a_server_without_etcd_joins_through_the_vip_once_it_answers_and_not_before(tmp_path, ha):
    (tmp_path / "state").mkdir()
    script = _fast(_ha_server_script(tmp_path, ha, ha.servers[1]))
    done = _run_install(tmp_path, script, "token-one")
    assert done.returncode == 1 and "did not answer within 300s" in done.stderr
    assert not (tmp_path / "state" / "installs").exists(), "nothing installed while no server answers at the VIP"
    (tmp_path / "state" / "served-ca").write_text("the cluster's CA\n")
    assert len(_install_runs(tmp_path, script, "token-one")) == 1
    assert (tmp_path / "state" / "config.yaml").read_text() == "server: https://10.27.27.10:6443\ntls-san:\n- 10.27.27.10\n- 10.27.27.12\n"
    assert not (tmp_path / "state" / "manifests").exists()


def test_a_server_with_etcd_re_applies_without_the_vip(tmp_path, ha):
    """A cold start of every server: the VIP answers only once a server runs, and an initialized
    server does not need it (K3s skips the join): its install does not wait for it."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "etcd-wal").mkdir()
    assert len(_install_runs(tmp_path, _fast(_ha_server_script(tmp_path, ha, ha.servers[1])), "token-one")) == 1


def _raw(config) -> dict:
    raw, _ = read_stack_file(stack_file("homelab-ha"))
    return copy.deepcopy(raw)
