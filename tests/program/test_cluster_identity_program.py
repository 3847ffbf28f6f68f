"""The cluster identity is the first resource the program registers, and every cluster VM waits for it:
a change it refuses touches nothing, even with `pulumi up --skip-preview`."""

from __future__ import annotations

from tests.conftest import DYNAMIC, VM


def test_the_identity_is_registered_first_and_every_cluster_vm_waits_for_it(homelab_run):
    custom = [r for r in homelab_run.resources if r.custom]
    identity = homelab_run.named("cluster-identity")
    assert custom[0] is identity and identity.type == DYNAMIC
    assert identity.inputs["nodes"] == {"cp1": {"role": "server", "vmId": 2711}, "worker1": {"role": "agent", "vmId": 2721},
                                        "worker2": {"role": "agent", "vmId": 2722}}
    for vm in homelab_run.of_type(VM):
        if "k3s" in vm.inputs["tags"]:
            assert homelab_run.depends_on(vm, identity), vm.urn
