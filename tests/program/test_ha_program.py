"""The HA stack (stacks/Pulumi.homelab-ha.yaml: 3 servers + 2 agents over 3 Proxmox nodes) under
Pulumi mocks (issue 19): one cluster-init server, the others join it, agents join through the VIP,
the kubeconfig points at the VIP, and every VM, its snippets, its image and its guest-agent steps go
to its own Proxmox node."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex

import pytest
import yaml

from components.sdkvalues import unwrap
from components.stack import read_stack_file, stack_file
from tests.conftest import COMMAND, SNIPPET, VM
from tests.program.harness import SECRET_SIG, run_program

DOWNLOAD = "proxmoxve:download/file:File"
PLACED = {"cp1": "pve1", "cp2": "pve2", "cp3": "pve3", "worker1": "pve2", "worker2": "pve3", "mirror": "pve1"}
ADDRESS = {"pve1": "pve1.lan", "pve2": "pve2.lan", "pve3": "pve3.lan"}


@pytest.fixture(scope="module")
def ha_raw():
    raw, _ = read_stack_file(stack_file("homelab-ha"))
    return raw


@pytest.fixture(scope="module")
def ha_run(ha_raw):
    return run_program(copy.deepcopy(ha_raw))


def _script(text: str) -> str:
    """The script inside `sudo -n sh -c '...'` (as_root), as the node's shell reads it."""
    words = shlex.split(text)
    return words[-1] if words[:4] == ["sudo", "-n", "sh", "-c"] else text


def _install(run, node: str) -> str:
    return _script(unwrap(run.named(f"k3s-{node}-k3s").inputs["create"]))


def _config_yaml(script: str) -> dict:
    body = re.search(r"<<'NETSTAB_CONFIG'\n(.*?)NETSTAB_CONFIG\n", script, re.S)
    return yaml.safe_load(body.group(1)) if body else {}


def test_one_step_founds_the_cluster_once_and_every_server_joins_through_the_vip(ha_run):
    founding = ha_run.named("k3s-found-cluster")
    assert _config_yaml(_script(unwrap(founding.inputs["create"]))) == {"cluster-init": True, "tls-san": ["10.27.27.10", "10.27.27.11"]}
    assert unwrap(founding.inputs["connection"])["host"] == "10.27.27.11"
    # a record of the first up: no input is compared again, so nothing replaces or re-runs it
    assert {"connection", "create", "stdin", "triggers"} <= set(founding.ignore_changes)
    assert not founding.replace_with and not founding.deleted_with
    configs = {n: _config_yaml(_install(ha_run, n)) for n in ("cp1", "cp2", "cp3")}
    assert {n: c.get("server") for n, c in configs.items()} == dict.fromkeys(("cp1", "cp2", "cp3"), "https://10.27.27.10:6443")
    assert not any(c.get("cluster-init") for c in configs.values())
    first = ha_run.named("k3s-cp1-k3s")
    assert ha_run.depends_on(first, founding)
    for joining in ("cp2", "cp3"):
        assert ha_run.depends_on(ha_run.named(f"k3s-{joining}-k3s"), first)
    assert not ha_run.depends_on(first, ha_run.named("k3s-cp2-k3s"))
    # one server at a time: each waits for the previous server back and Ready (joins, and every K3s restart)
    assert ha_run.depends_on(ha_run.named("k3s-cp2-k3s"), ha_run.named("k3s-cp1-ready"))
    assert ha_run.depends_on(ha_run.named("k3s-cp3-k3s"), ha_run.named("k3s-cp2-ready"))
    for server in ("cp1", "cp2", "cp3"):
        install = _install(ha_run, server)
        ready = _script(unwrap(ha_run.named(f"k3s-{server}-ready").inputs["create"]))
        assert f"after its K3s install {hashlib.sha256(install.encode()).hexdigest()[:16]}" in ready


def test_before_a_server_joins_another_server_forgets_the_member_its_old_vm_left(ha_run):
    peers = {"cp1": ("cp2", "pve2.lan", 2712), "cp2": ("cp1", "pve1.lan", 2711), "cp3": ("cp1", "pve1.lan", 2711)}
    for name, (_peer, pve, peer_vm) in peers.items():
        forget = ha_run.named(f"k3s-{name}-forget")
        assert unwrap(forget.inputs["connection"])["host"] == pve
        create = _script(unwrap(forget.inputs["create"]))
        assert f"qm guest exec {peer_vm} " in create and f"# netstab forget node {name}" in create
        assert "kubectl annotate" not in _script(unwrap(forget.inputs["update"])), "a changed step never removes a member"
        assert ha_run.depends_on(ha_run.named(f"k3s-{name}-k3s"), forget)
        assert ha_run.named(f"nodes-{name}-vm").urn in forget.replace_with, "created again with every new VM of the server"
    assert not any(r.name in ("k3s-worker1-forget", "k3s-worker2-forget") for r in ha_run.resources)


def test_agents_join_through_the_vip_after_every_server(ha_run):
    for agent in ("worker1", "worker2"):
        script = _install(ha_run, agent)
        assert "K3S_URL=https://10.27.27.10:6443 " in script and "10.27.27.11" not in script
        for server in ("cp1", "cp2", "cp3"):
            assert ha_run.depends_on(ha_run.named(f"k3s-{agent}-k3s"), ha_run.named(f"k3s-{server}-k3s"))


def test_the_kubeconfig_and_the_api_address_are_the_vip(ha_run):
    value, is_secret = ha_run.outputs["kubeconfig"]
    assert is_secret and "https://10.27.27.10:6443" in value and "10.27.27.11" not in value
    assert ha_run.outputs["apiAddress"] == ("10.27.27.10", False)


def test_readiness_is_the_ha_check_on_the_first_server(ha_run):
    ready = ha_run.named("k3s-nodes-ready")
    assert "etcd" in unwrap(ready.inputs["create"]) and "/readyz" in unwrap(ready.inputs["create"])
    assert unwrap(ready.inputs["connection"])["host"] == "10.27.27.11"


def test_every_vm_its_snippets_and_its_image_are_on_its_proxmox_node(ha_run):
    vms = {r.inputs["name"]: r for r in ha_run.of_type(VM)}
    assert {name: vm.inputs["nodeName"] for name, vm in vms.items()} == PLACED
    snippets = {s.urn: s for s in ha_run.of_type(SNIPPET)}
    downloads = {d.urn: d for d in ha_run.of_type(DOWNLOAD)}
    assert sorted(d.inputs["nodeName"] for d in downloads.values()) == ["pve1", "pve2", "pve3"]
    for name, vm in vms.items():
        own = [snippets[u] for u in vm.dependencies if u in snippets]
        assert len(own) == 2 and {s.inputs["nodeName"] for s in own} == {PLACED[name]}, name
        image = [downloads[u] for u in vm.dependencies if u in downloads]
        assert [d.inputs["nodeName"] for d in image] == [PLACED[name]], f"{name} boots from the copy on its own node"


def test_guest_agent_steps_run_on_the_vms_own_proxmox_node_with_its_pinned_key(ha_run):
    for name, where in PLACED.items():
        step = ha_run.named(f"{'mirror' if name == 'mirror' else 'nodes-' + name}-network")
        connection = unwrap(step.inputs["connection"])
        assert connection["host"] == ADDRESS[where], name
        assert f"root@{where}" in connection["hostKey"], f"{name}: the key pinned is {where}'s"
        assert "qm guest exec" in unwrap(step.inputs["create"])


def test_the_provider_can_upload_to_every_proxmox_node(ha_run):
    provider = ha_run.named("proxmox")
    ssh = unwrap(provider.inputs["ssh"])
    nodes = json.loads(ssh)["nodes"] if isinstance(ssh, str) else ssh["nodes"]
    assert nodes == [{"name": "pve1", "address": "pve1.lan"}, {"name": "pve2", "address": "pve2.lan"}, {"name": "pve3", "address": "pve3.lan"}]


def test_the_single_server_stack_keeps_one_node_one_image_and_its_endpoint(homelab_run):
    downloads = homelab_run.of_type(DOWNLOAD)
    assert [d.name for d in downloads] == ["cloud-image"]
    assert {vm.inputs["nodeName"] for vm in homelab_run.of_type(VM)} == {"pve"}
    assert unwrap(homelab_run.named("nodes-cp1-network").inputs["connection"])["host"] == "pve.lan"
    assert "apiAddress" in homelab_run.outputs and homelab_run.outputs["apiAddress"][0] == "10.27.27.11"
    assert len(homelab_run.of_type(COMMAND)) > 0


def test_an_ha_member_step_is_deleted_with_its_peer_and_never_replaced_with_it(ha_run):
    """Before Pulumi CLI 3.260 a replaced step's delete runs even when its deleted_with target goes too
    (tests/lifecycle/test_ha_lifecycle.py shows the removed running servers): no replace_with here."""
    peers = {"cp1": "cp2", "cp2": "cp1", "cp3": "cp1", "worker1": "cp1", "worker2": "cp1"}
    for name, peer in peers.items():
        member = ha_run.named(f"k3s-{name}-member")
        assert member.deleted_with == ha_run.named(f"nodes-{peer}-vm").urn
        assert member.replace_with == []


def test_every_kubectl_step_about_a_server_runs_in_its_peer(ha_run):
    for name, vm_id in (("cp1", 2712), ("cp2", 2711), ("cp3", 2711)):
        for step in ("drain", "ready"):
            res = ha_run.named(f"nodes-{name}-drain" if step == "drain" else f"k3s-{name}-ready")
            text = _script(unwrap(res.inputs["update"]))
            assert f"qm guest exec {vm_id} " in text, (name, step)
    first_ready = _script(unwrap(ha_run.named("k3s-cp1-ready").inputs["create"]))
    assert "qm status 2712" in first_ready, "on the first up cp1's peer does not exist yet: nothing to wait in"
    # a new token restarts every server's K3s: its ready step is replaced (runs again) then
    assert SECRET_SIG in str(ha_run.named("k3s-cp2-ready").inputs["triggers"])
