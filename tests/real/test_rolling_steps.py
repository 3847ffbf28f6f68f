"""The rolling steps' scripts run for real against a stand-in `k3s` (its `kubectl` keeps one node's
state in files) and a stand-in `qm`: drain honours what the eviction says and names the pods that
blocked it, restores exactly the prior schedulable state (kured's rule), and the ready step undoes
only netstab's own cordon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from components.config import parse_config
from components.render.guest import via_guest_agent
from components.render.rolling import (
    CORDONED_BY,
    DRAIN_TIMEOUT_S,
    ETCD_REMOVE,
    MEMBER_WAIT_S,
    drain_script,
    forget_script,
    ready_script,
    remove_script,
)

KUBECTL = r'''
import json, os, sys
state = os.environ["KUBE_STATE"]
def path(name): return os.path.join(state, name)
def has(name): return os.path.exists(path(name))
def read(name): return open(path(name)).read() if has(name) else ""
def write(name, text): open(path(name), "w").write(text)
args = sys.argv[2:] if sys.argv[1] == "kubectl" else sys.exit("only kubectl")
with open(path("calls"), "a") as log: log.write(" ".join(args) + "\n")
if args[:2] == ["get", "--raw"]:
    polls = int(read("api_polls") or 0); write("api_polls", str(polls + 1))
    sys.exit(0 if polls >= int(read("api_down_for") or 0) else 1)
if args[:4] == ["-n", "kube-node-lease", "get", "lease"]:
    if has("lease_fails"): sys.exit("error: the server was unable to return a response in the time allotted")
    if not has("lease"): sys.exit(f'Error from server (NotFound): leases.coordination.k8s.io "{args[4]}" not found')
    reads = int(read("lease_reads") or 0) + 1; write("lease_reads", str(reads))
    # the kubelet's last renewal (RFC 3339); a running kubelet ("renewing") moves it between reads
    print(read("lease") + (f".{reads:06d}Z" if has("renewing") else ""), end=""); sys.exit(0)
if args[:2] == ["get", "node"]:
    if has("get_fails"): sys.exit("The connection to the server 127.0.0.1:6443 was refused")
    if not has("node"): sys.exit(f'Error from server (NotFound): nodes "{args[2]}" not found')
    out = args[args.index("-o") + 1] if "-o" in args else ""
    if "unschedulable" in out: print("true" if has("cordoned") else "", end="")
    elif "removed-node-name" in out: print(read("removed"), end="")
    elif "node-name" in out: print(args[2] + "-1a2b3c4d" if has("member") else "", end="")  # the etcd member annotation
    elif "annotations" in out: print(read("annotation"), end="")
    elif "conditions" in out:
        polls = int(read("ready_polls") or 0); write("ready_polls", str(polls + 1))
        print("True" if polls >= int(read("not_ready_for") or 0) else "False", end="")
    sys.exit(0)
if args[:2] == ["get", "pods"]:
    print(read("pods"), end=""); sys.exit(0)
if args[0] == "annotate" and args[-1] == "etcd.k3s.cattle.io/remove=true":
    # K3s's etcd member controller: removes the member and records its name (unless it is stuck)
    if not has("stuck"): has("member") and os.remove(path("member")); write("removed", args[-2] + "-etcd")
    sys.exit(0)
if args[0] == "annotate":
    key = args[-1]
    if key.endswith("-"): os.path.exists(path("annotation")) and os.remove(path("annotation"))
    else: write("annotation", key.split("=", 1)[1])
    sys.exit(0)
if args[:2] == ["delete", "node"]:
    if has("member") and not has("stuck"): os.remove(path("member"))  # its OnRemove handler
    os.remove(path("node")); sys.exit(0)
if args[0] == "cordon": write("cordoned", ""); sys.exit(0)
if args[0] == "uncordon": has("cordoned") and os.remove(path("cordoned")); sys.exit(0)
if args[0] == "drain":
    if has("pdb"):
        print('evicting pod apps/web-0\nerror when evicting pods/"web-0" -n "apps" (will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.')
        print("error: timed out waiting for the condition"); sys.exit(1)
    sys.exit(0)
sys.exit("unexpected kubectl " + " ".join(args))
'''


@pytest.fixture
def node(homelab_raw):
    return parse_config(homelab_raw).nodes[1]


@pytest.fixture
def kube(tmp_path):
    """A bin folder with the stand-ins (k3s, a sleep that returns at once) and the node's state folder."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    (bin_dir / "k3s").write_text(f"#!{sys.executable}\n{KUBECTL}")
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for tool in ("k3s", "sleep"):
        (bin_dir / tool).chmod(0o755)
    (state / "node").write_text("")
    return bin_dir, state


def run(script: str, kube: tuple[Path, Path], with_k3s: bool = True) -> subprocess.CompletedProcess[str]:
    bin_dir, state = kube
    if not with_k3s:
        (bin_dir / "k3s").unlink()
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "KUBE_STATE": str(state)})


def calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines()


def test_a_schedulable_node_is_cordoned_and_drained_by_eviction_and_marked_as_netstabs(node, kube):
    _, state = kube
    done = run(drain_script(node), kube)
    assert done.returncode == 0 and "worker1 cordoned and drained" in done.stdout, done.stderr
    assert (state / "cordoned").exists() and (state / "annotation").read_text() == "netstab"
    assert f"drain worker1 --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT_S}s" in calls(state)
    assert calls(state).index(f"annotate --overwrite node worker1 {CORDONED_BY}=netstab") < calls(state).index("cordon worker1"), \
        "the prior state is recorded before the cordon"


def test_a_drain_a_budget_blocks_names_the_pods_restores_the_node_and_fails(node, kube):
    _, state = kube
    (state / "pdb").write_text("")
    (state / "pods").write_text("apps/web-0 StatefulSet\nkube-system/svclb-traefik-x DaemonSet\napps/web-1 ReplicaSet\n")
    done = run(drain_script(node), kube)
    assert done.returncode == 1
    assert "draining worker1 did not finish within 300s; these pods blocked it: apps/web-0 apps/web-1." in done.stderr
    assert "svclb" not in done.stderr.split("blocked it:")[1].split("\n")[0], "DaemonSet pods are not what blocks a drain"
    assert "nothing was restarted" in done.stderr and "disruption budget" in done.stderr
    assert not (state / "cordoned").exists() and not (state / "annotation").exists(), "back as it was: schedulable"


def test_a_node_an_operator_cordoned_stays_cordoned_through_drain_and_ready(node, kube):
    _, state = kube
    (state / "cordoned").write_text("")
    assert run(drain_script(node), kube).returncode == 0
    assert not (state / "annotation").exists()
    done = run(ready_script(node, timeout_s=30), kube)
    assert done.returncode == 0 and "left as it was: netstab did not cordon it" in done.stdout
    assert (state / "cordoned").exists() and "uncordon worker1" not in calls(state)


def test_ready_waits_for_the_node_then_undoes_netstabs_cordon(node, kube):
    _, state = kube
    run(drain_script(node), kube)
    (state / "not_ready_for").write_text("3")
    (state / "api_down_for").write_text("0")
    done = run(ready_script(node, timeout_s=60), kube)
    assert done.returncode == 0 and "worker1 Ready and uncordoned" in done.stdout, done.stderr
    assert (state / "ready_polls").read_text() == "4", "it polled until Ready"
    assert not (state / "cordoned").exists() and not (state / "annotation").exists()


def test_ready_waits_for_a_restarting_api_within_its_bound(node, kube):
    _, state = kube
    (state / "api_down_for").write_text("3")
    done = run(ready_script(node, timeout_s=60, api_wait_s=60), kube)
    assert done.returncode == 0 and (state / "api_polls").read_text() == "4"


@pytest.mark.parametrize("script", ["drain", "ready"])
def test_an_api_that_never_answers_fails_within_the_bound_and_changes_nothing(node, kube, script):
    _, state = kube
    (state / "api_down_for").write_text("1000000")
    text = drain_script(node, api_wait_s=0) if script == "drain" else ready_script(node, timeout_s=0, api_wait_s=0)
    done = run(text, kube)
    assert done.returncode == 1 and "the Kubernetes API did not answer within 0s" in done.stderr
    assert not (state / "cordoned").exists()


def test_a_node_that_never_turns_ready_fails_naming_it_and_stays_cordoned(node, kube):
    _, state = kube
    run(drain_script(node), kube)
    (state / "not_ready_for").write_text("1000000")
    done = run(ready_script(node, timeout_s=0), kube)
    assert done.returncode == 1 and "worker1 is not Ready after 0s: the next node waits" in done.stderr
    assert (state / "cordoned").exists(), "a node that is not back is not uncordoned"


def test_nothing_to_drain_without_k3s_or_without_the_node(node, kube):
    _, state = kube
    (state / "node").unlink()
    done = run(drain_script(node), kube)
    assert done.returncode == 0 and "worker1 is not in the cluster: nothing to drain" in done.stdout
    done = run(drain_script(node), kube, with_k3s=False)
    assert done.returncode == 0 and "no K3s on the server yet" in done.stdout


def test_the_proxmox_wrapper_says_so_when_the_server_vm_does_not_exist(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qm").write_text("#!/bin/sh\necho \"$*\" >> \"$QM_LOG\"\n[ \"$1\" = status ] && exit 2\nexit 0\n")
    (bin_dir / "qm").chmod(0o755)
    script = via_guest_agent(2711, "echo inside\n", absent_ok="the server VM 2711 does not exist: nothing to drain on worker1")
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "QM_LOG": str(tmp_path / "qm.log")})
    assert done.returncode == 0 and "netstab: the server VM 2711 does not exist: nothing to drain on worker1" in done.stdout
    assert (tmp_path / "qm.log").read_text().splitlines() == ["status 2711"], "no guest exec into a VM that is not there"


QM = """#!/bin/sh
echo "$*" >> "$STATE/qm.log"
[ "$1" = status ] && exit 0
cat > /dev/null
printf '{"exited": 1, "exitcode": %s, "out-data": "inside\\\\n", "err-data": ""}' "$(cat "$STATE/exitcode" 2>/dev/null || echo 0)"
"""


def proxmox_run(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    """A Proxmox-side rolling step against a stand-in qm; netstab's state folder under tmp_path."""
    from components.render.shell import STATE_DIR

    bin_dir = tmp_path / "pbin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "qm").write_text(QM)
    (bin_dir / "qm").chmod(0o755)
    script = script.replace(STATE_DIR, str(tmp_path / "netstab"))
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(tmp_path)})


def test_the_drain_runs_only_until_the_node_came_back_with_its_restart_key(tmp_path, homelab):
    """A rotated SSH key updates the drain step too (its connection changed): it must not drain then."""
    from components.render.rolling import rolling_steps

    steps = rolling_steps(homelab, homelab.nodes[1])
    first = proxmox_run(tmp_path, steps.drain_update)
    assert first.returncode == 0 and "guest exec 2711" in (tmp_path / "qm.log").read_text(), first.stderr
    (tmp_path / "exitcode").write_text("1")
    failed = proxmox_run(tmp_path, steps.ready)
    assert failed.returncode == 1 and not (tmp_path / "netstab").exists(), "a node that is not back keeps no key: the next up drains again"
    (tmp_path / "exitcode").write_text("0")
    assert proxmox_run(tmp_path, steps.ready).returncode == 0
    (tmp_path / "qm.log").unlink()
    again = proxmox_run(tmp_path, steps.drain_update)
    assert again.returncode == 0 and "came back with this restart key: nothing to drain" in again.stdout
    assert not (tmp_path / "qm.log").exists(), "nothing dialed"


def test_a_removed_node_is_drained_then_its_node_object_deleted(node, kube):
    _, state = kube
    done = run(remove_script(node), kube)
    assert done.returncode == 0 and "worker1 drained and its Node object deleted" in done.stdout, done.stderr
    assert not (state / "node").exists()
    assert calls(state).index(f"drain worker1 --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT_S}s") < \
        calls(state).index("delete node worker1 --wait=false")


def test_a_removal_a_budget_blocks_deletes_nothing_and_says_which_pods(node, kube):
    _, state = kube
    (state / "pdb").write_text("")
    (state / "pods").write_text("apps/web-0 StatefulSet\n")
    done = run(remove_script(node), kube)
    assert done.returncode == 1 and "these pods blocked it: apps/web-0." in done.stderr and "nothing was deleted" in done.stderr
    assert (state / "node").exists() and not (state / "cordoned").exists()


@pytest.fixture
def ha_server():
    """cp2 of the HA example stack (docs/ha.md)."""
    from components.stack import read_stack_file, stack_file
    return parse_config(read_stack_file(stack_file("homelab-ha"))[0]).nodes[1]


def test_a_removed_ha_server_leaves_etcd_before_its_node_object_is_deleted(ha_server, kube):
    _, state = kube
    (state / "member").write_text("")
    done = run(remove_script(ha_server, etcd=True), kube)
    assert done.returncode == 0 and "cp2 drained, its etcd member removed and its Node object deleted" in done.stdout, done.stderr
    assert not (state / "member").exists() and not (state / "node").exists()
    said = calls(state)
    drain = said.index(f"drain cp2 --ignore-daemonsets --delete-emptydir-data --timeout={DRAIN_TIMEOUT_S}s")
    leave = said.index(f"annotate --overwrite node cp2 {ETCD_REMOVE}=true")
    assert drain < leave < said.index(f"delete node cp2 --timeout={MEMBER_WAIT_S}s"), said


def test_an_ha_server_whose_member_k3s_does_not_remove_keeps_its_node_and_fails_within_the_bound(ha_server, kube):
    _, state = kube
    (state / "member").write_text("")
    (state / "stuck").write_text("")
    done = run(remove_script(ha_server, member_wait_s=1, etcd=True), kube)
    assert done.returncode == 1 and "K3s did not remove the etcd member of cp2 within 1s" in done.stderr, done.stderr
    assert (state / "member").exists() and (state / "node").exists(), "nothing deleted: its VM stays too (the step failed)"
    assert not any(c.startswith("delete node") for c in calls(state))


def test_an_agent_leaves_without_touching_etcd(node, kube):
    _, state = kube
    assert run(remove_script(node), kube).returncode == 0
    assert not any(ETCD_REMOVE in c for c in calls(state)), "old behaviour for an agent: no etcd step"


# ---------------------------------------------------------------- a rebuilt HA server's old etcd member

def forget(node, **kw):
    """The forget script with a 1 s lease watch (the sleep stand-in returns at once)."""
    return forget_script(node, lease_watch_s=1, **kw)


def test_a_rebuilt_servers_old_member_is_removed_when_no_kubelet_renews_its_lease(ha_server, kube):
    _, state = kube
    (state / "member").write_text("")
    (state / "lease").write_text("2026-12-06T09:00:00.000000Z")  # the old VM's last renewal, before it went
    done = run(forget(ha_server), kube)
    assert done.returncode == 0 and "no kubelet renewed the lease of cp2 for 1s (last 2026-12-06T09:00:00.000000Z)" in done.stdout, done.stderr
    assert "the etcd member of cp2 removed" in done.stdout
    assert not (state / "member").exists() and (state / "node").exists(), "the Node stays: the rebuilt server registers as it again"
    assert f"annotate --overwrite node cp2 {ETCD_REMOVE}=true" in calls(state)
    assert int((state / "lease_reads").read_text()) >= 2, "watched, not read once"


def test_a_node_without_a_lease_has_no_kubelet_and_its_member_goes(ha_server, kube):
    _, state = kube
    (state / "member").write_text("")
    assert run(forget(ha_server), kube).returncode == 0
    assert not (state / "member").exists()


def test_a_running_servers_live_member_is_left_alone(ha_server, kube):
    """A server deployed before the step existed gets the step on the next up: its kubelet renews."""
    _, state = kube
    for name in ("member", "renewing"):
        (state / name).write_text("")
    (state / "lease").write_text("2026-12-06T09:00:00")
    done = run(forget(ha_server), kube)
    assert done.returncode == 0 and "cp2 runs (its kubelet renewed its lease): its etcd member cp2-1a2b3c4d is live" in done.stdout
    assert (state / "member").exists() and not any(c.startswith("annotate") for c in calls(state))


@pytest.mark.parametrize("failing,said", [
    ("get_fails", "could not read the Node cp2 (The connection to the server 127.0.0.1:6443 was refused)"),
    ("lease_fails", "could not read the Lease of cp2 (error: the server was unable to return a response in the time allotted)"),
])
def test_a_read_that_fails_for_another_reason_fails_the_step_and_removes_nothing(ha_server, kube, failing, said):
    _, state = kube
    for name in ("member", failing):
        (state / name).write_text("")
    (state / "lease").write_text("2026-12-06T09:00:00.000000Z")
    done = run(forget(ha_server), kube)
    assert done.returncode == 1 and said in done.stderr, done.stderr
    assert (state / "member").exists() and not any(c.startswith("annotate") for c in calls(state))


@pytest.mark.parametrize("setup,said", [
    (lambda state: (state / "node").unlink(), "cp2 is not in the cluster: no old etcd member to remove"),
    (lambda state: None, "cp2 holds no etcd member: nothing to remove"),
])
def test_a_first_build_has_no_member_to_forget(ha_server, kube, setup, said):
    _, state = kube
    setup(state)
    done = run(forget(ha_server), kube)
    assert done.returncode == 0 and said in done.stdout, done.stderr
    assert not any(c.startswith("annotate") for c in calls(state))


def test_no_k3s_on_the_peer_yet_means_no_cluster_holds_the_member(ha_server, kube):
    done = run(forget(ha_server), kube, with_k3s=False)
    assert done.returncode == 0 and "no cluster holds a member of cp2" in done.stdout


def test_a_member_k3s_does_not_remove_stops_the_join_within_the_bound(ha_server, kube):
    _, state = kube
    for name, text in (("member", ""), ("stuck", ""), ("lease", "2026-12-06T09:00:00.000000Z")):
        (state / name).write_text(text)
    done = run(forget(ha_server, member_wait_s=1), kube)
    assert done.returncode == 1 and "cp2 does not join (K3s refuses a duplicate node name)" in done.stderr, done.stderr
