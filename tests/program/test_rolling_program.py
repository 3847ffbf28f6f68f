"""The rolling chain as the program registers it: each node's VM waits for its drain, each drain for
the previous node's ready step (servers first), and each ready step for that node's K3s install."""

from __future__ import annotations

from tests.lifecycle.values import unwrap


def test_the_nodes_are_chained_one_at_a_time_servers_first(homelab_run):
    run = homelab_run
    order = ["cp1", "worker1", "worker2"]
    for i, node in enumerate(order):
        drain, vm, ready = run.named(f"nodes-{node}-drain"), run.named(f"nodes-{node}-vm"), run.named(f"k3s-{node}-ready")
        assert run.depends_on(vm, drain) and run.depends_on(ready, run.named(f"k3s-{node}-k3s"))
        assert run.depends_on(run.named("k3s-nodes-ready"), ready)
        for j, other in enumerate(order):
            if j < i:
                assert run.depends_on(drain, run.named(f"k3s-{other}-ready")), f"{node} waits for {other}"
            else:
                assert not run.depends_on(drain, run.named(f"k3s-{other}-ready")), f"{node} does not wait for {other}"
    assert not run.depends_on(run.named("mirror-vm-vm"), run.named("nodes-cp1-drain")), "the mirror is no cluster node"


def test_the_rolling_steps_run_on_the_proxmox_host_and_the_first_up_drains_nothing(homelab_run):
    for node in ("cp1", "worker1", "worker2"):
        drain = homelab_run.named(f"nodes-{node}-drain")
        assert unwrap(drain.inputs["connection"])["host"] == "pve.lan"
        assert "nothing to drain" in drain.inputs["create"] and "qm guest exec" not in drain.inputs["create"]
        assert "qm guest exec 2711" in drain.inputs["update"] and f"# netstab drain node {node}" in drain.inputs["update"]
        assert unwrap(homelab_run.named(f"k3s-{node}-ready").inputs["connection"])["host"] == "pve.lan"
