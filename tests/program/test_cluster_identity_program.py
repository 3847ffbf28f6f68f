"""Everything on Proxmox waits for the cluster identity (through the Proxmox provider): a change it
refuses touches no VM, snippet or image, even with `pulumi up --skip-preview`."""

from __future__ import annotations

from tests.conftest import DOWNLOAD, DYNAMIC, SNIPPET, VM


def test_everything_on_proxmox_waits_for_the_identity(homelab_run):
    identity = homelab_run.named("cluster-identity")
    assert identity.type == DYNAMIC and identity.dependencies == []
    provider = homelab_run.named("proxmox")
    assert identity.urn in provider.dependencies
    for res in (*homelab_run.of_type(VM), *homelab_run.of_type(SNIPPET), *homelab_run.of_type(DOWNLOAD)):
        assert res.provider.startswith(provider.urn), res.urn
    assert identity.inputs["nodes"] == {"cp1": {"role": "server", "vmId": 2711}, "worker1": {"role": "agent", "vmId": 2721},
                                        "worker2": {"role": "agent", "vmId": 2722}}
    for vm in homelab_run.of_type(VM):
        if "k3s" in vm.inputs["tags"]:
            assert homelab_run.depends_on(vm, identity), vm.urn
