"""The mirror layer under mocks: the mirror VM, and mirror healthy -> registries.yaml -> K3s."""

from __future__ import annotations

from tests.conftest import VM
from tests.program.harness import DUMMY_SECRETS, SECRET_SIG, run_program

NODES = ("cp1", "worker1", "worker2")


def test_the_mirror_vm_is_at_the_stack_mtu_on_the_vm_subnet(homelab_run):
    vm = next(r for r in homelab_run.of_type(VM) if r.inputs["name"] == "mirror")
    assert [nic["mtu"] for nic in vm.inputs["networkDevices"]] == [1400]
    snippet = homelab_run.named("mirror-vm-network-config")
    assert "10.27.27.5/24" in snippet.inputs["sourceRaw"]["data"] and "mtu: 1400" in snippet.inputs["sourceRaw"]["data"]


def test_on_every_node_registries_yaml_is_written_before_k3s_is_installed(homelab_run):
    health = homelab_run.named("mirror-health")
    for node in NODES:
        written = homelab_run.named(f"registries-{node}")
        install = homelab_run.named(f"k3s-{node}-k3s")
        assert homelab_run.depends_on(install, written), f"{install.urn} must wait for {written.urn}"
        assert homelab_run.depends_on(written, health), f"{written.urn} must wait for the mirror to be healthy"
        assert homelab_run.depends_on(written, homelab_run.named(f"nodes-{node}-cloud-init"))
        assert "/etc/rancher/k3s/registries.yaml" in written.inputs["create"]


def test_new_registries_content_updates_in_place_and_disabling_the_mirror_removes_the_file(homelab_raw):
    base = run_program(homelab_raw)
    homelab_raw["mirror"]["upstreams"] = [{"registry": "ghcr.io", "port": 5102}]
    changed = run_program(homelab_raw)
    written = changed.named("registries-cp1")
    assert "http://10.27.27.5:5102" in written.inputs["create"]
    assert "triggers" not in written.inputs, "a command with a delete must update in place, never replace create-first"
    assert base.named("registries-cp1").inputs["delete"] == written.inputs["delete"]
    assert 'rm -f "$target"' in written.inputs["delete"] and "systemctl restart" in written.inputs["delete"]


def test_warmup_runs_after_health_with_the_agent_on_stdin(homelab_run):
    warm = homelab_run.named("mirror-warmup")
    assert homelab_run.depends_on(warm, homelab_run.named("mirror-health"))
    assert "netstab probe agent" in warm.inputs["stdin"]
    assert not any(homelab_run.depends_on(homelab_run.named(f"k3s-{n}-k3s"), warm) for n in NODES), "K3s must not wait for warm-up"


def test_upstream_credentials_travel_as_a_secret_on_stdin_only(homelab_raw):
    homelab_raw["mirror"]["credentialsOpenToSubnet"] = True
    secrets = {**DUMMY_SECRETS, "mirrorCredentials": '{"docker.io": {"username": "hubuser", "password": "hub-PASSWORD-77"}}'}
    recording = run_program(homelab_raw, secrets=secrets)
    creds = recording.named("mirror-credentials")
    import base64

    assert SECRET_SIG in creds.inputs["stdin"]
    assert base64.b64encode(b"hub-PASSWORD-77").decode() in creds.inputs["stdin"]["value"]
    assert creds.inputs["logging"] == "none"
    for resource in recording.resources:
        for form in ("hub-PASSWORD-77", base64.b64encode(b"hub-PASSWORD-77").decode()):
            assert form not in resource.plain_text(), resource.urn
    assert recording.depends_on(recording.named("mirror-health"), creds)


def test_a_disabled_mirror_leaves_nodes_pulling_upstream(homelab_raw):
    homelab_raw["mirror"] = {"enabled": False}
    recording = run_program(homelab_raw)
    assert not [r for r in recording.resources if r.name.startswith(("mirror", "registries"))]
