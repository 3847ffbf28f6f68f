"""The whole program from stacks/Pulumi.homelab.yaml under Pulumi mocks: graph rules."""

from __future__ import annotations

from tests.conftest import COMMAND, SNIPPET, VM
from tests.program.harness import DUMMY_SECRETS, SECRET_SIG, run_program


def test_three_cluster_vms_and_the_mirror_vm_are_declared(homelab_run):
    cluster = sorted(r.inputs["name"] for r in homelab_run.of_type(VM) if "k3s" in r.inputs["tags"])
    assert cluster == ["cp1", "worker1", "worker2"]
    assert [r.inputs["name"] for r in homelab_run.of_type(VM) if "mirror" in r.inputs["tags"]] == ["mirror"]


def test_every_nic_is_virtio_on_the_bridge_at_mtu_1400(homelab_run):
    for vm in homelab_run.of_type(VM):
        nics = vm.inputs["networkDevices"]
        assert nics, f"{vm.urn} has no network device"
        for nic in nics:
            assert nic["mtu"] == 1400, f"{vm.urn}: NIC MTU {nic['mtu']}"
            assert nic["model"] == "virtio" and nic["bridge"] == "vmbr0", vm.urn


def test_every_guest_gets_the_mtu_through_its_network_snippet(homelab_run):
    snippets = [s for s in homelab_run.of_type(SNIPPET) if s.name.endswith("-network-config")]
    assert len(snippets) == 4, "three nodes and the mirror"
    for snippet in snippets:
        assert "mtu: 1400" in snippet.inputs["sourceRaw"]["data"], snippet.urn
        assert snippet.inputs["contentType"] == "snippets"


def test_each_vm_boots_from_its_own_cloud_init_snippets_named_by_volume_id(homelab_run):
    snippets = {s.urn: s for s in homelab_run.of_type(SNIPPET)}
    for vm in homelab_run.of_type(VM):
        name = vm.inputs["name"]
        init = vm.inputs["initialization"]
        assert init["networkDataFileId"] == f"local:snippets/{name}-network-config.yaml", vm.urn
        assert init["userDataFileId"] == f"local:snippets/{name}-user-data.yaml", vm.urn
        assert init["type"] == "nocloud", vm.urn
        uploaded = {snippets[u].inputs["sourceRaw"]["fileName"] for u in vm.dependencies if u in snippets}
        assert uploaded == {f"{name}-network-config.yaml", f"{name}-user-data.yaml"}, f"{vm.urn} must wait for its snippets"


def test_agents_install_after_the_server(homelab_run):
    server = homelab_run.named("k3s-cp1-k3s")
    for agent in ("worker1", "worker2"):
        install = homelab_run.named(f"k3s-{agent}-k3s")
        assert homelab_run.depends_on(install, server), f"{install.urn} does not wait for {server.urn}"
    assert not homelab_run.depends_on(server, homelab_run.named("k3s-worker1-k3s"))


def test_k3s_installs_after_the_vm_has_booted(homelab_run):
    for node in ("cp1", "worker1", "worker2"):
        install = homelab_run.named(f"k3s-{node}-k3s")
        assert homelab_run.depends_on(install, homelab_run.named(f"nodes-{node}-cloud-init"))
        assert homelab_run.depends_on(install, homelab_run.named(f"nodes-{node}-vm"))


def test_readiness_waits_for_every_install_and_kubeconfig_for_readiness(homelab_run):
    ready = homelab_run.named("k3s-nodes-ready")
    for node in ("cp1", "worker1", "worker2"):
        assert homelab_run.depends_on(ready, homelab_run.named(f"k3s-{node}-k3s"))
    assert homelab_run.depends_on(homelab_run.named("k3s-kubeconfig"), ready)


def test_the_token_travels_on_stdin_as_a_secret(homelab_run):
    for node in ("cp1", "worker1", "worker2"):
        install = homelab_run.named(f"k3s-{node}-k3s")
        stdin = install.inputs["stdin"]
        assert SECRET_SIG in stdin and stdin["value"] == DUMMY_SECRETS["k3sToken"], install.urn
        assert "environment" not in install.inputs, f"{install.urn}: SSH setenv is refused by stock sshd"
        assert install.inputs["logging"] == "none", f"{install.urn}: logging must be off where a secret flows"


def test_no_secret_value_appears_in_plain_text_anywhere(homelab_run):
    for resource in homelab_run.resources:
        text = resource.plain_text()
        for key, secret in DUMMY_SECRETS.items():
            assert secret not in text, f"{resource.urn} carries {key} in plain text"


def test_the_kubeconfig_is_a_secret_pointing_at_the_server(homelab_run):
    value, is_secret = homelab_run.outputs["kubeconfig"]
    assert is_secret
    assert "https://10.27.27.11:6443" in value and "127.0.0.1" not in value
    assert "stdout" in homelab_run.named("k3s-kubeconfig").secret_outputs


def test_a_k3s_change_changes_the_install_text_and_nothing_else_of_the_node(homelab_raw):
    before = run_program(homelab_raw)
    homelab_raw["k3s"]["version"] = "v1.34.1+k3s1"
    after = run_program(homelab_raw)
    assert before.named("k3s-cp1-k3s").inputs["create"] != after.named("k3s-cp1-k3s").inputs["create"]
    assert "triggers" not in after.named("k3s-cp1-k3s").inputs, "a changed install updates in place"
    assert before.named("nodes-cp1-cloud-init").inputs == after.named("nodes-cp1-cloud-init").inputs


def test_proxmox_provider_gets_the_token_as_a_secret(homelab_run):
    provider = homelab_run.named("proxmox")
    assert SECRET_SIG in provider.inputs["apiToken"]
    assert provider.inputs["endpoint"] == "https://pve.lan:8006/"


def test_files_hooked_before_install_are_written_first(homelab_raw):
    """The hook a later layer (registries.yaml) uses: its resources precede that node's install."""
    import pulumi_command as command

    from components import remote
    from components.cluster import K3sCluster, K3sClusterArgs
    from components.render.bundle import render_cluster
    from components.stack import load_pulumi_config

    def program() -> None:
        config, secrets = load_pulumi_config()
        marker = command.local.Command("registries-worker1", create="true")
        booted = {n.name: command.local.Command(f"booted-{n.name}", create="true") for n in config.nodes}
        connections = {n.name: remote.connection(str(n.ip), "ubuntu", secrets.ssh_private_key, "ssh-ed25519 AAAA") for n in config.nodes}
        K3sCluster("k3s", K3sClusterArgs(config, render_cluster(config), connections, secrets.k3s_token,
                                         booted=booted, vms=booted, before_install={"worker1": [marker]}))

    recording = run_program(homelab_raw, program=program)
    marker = recording.named("registries-worker1")
    assert recording.depends_on(recording.named("k3s-worker1-k3s"), marker)
    assert not recording.depends_on(recording.named("k3s-worker2-k3s"), marker)


def test_no_remote_command_asks_sshd_to_accept_its_previous_output(homelab_run):
    """pulumi-command's default puts PULUMI_COMMAND_STDOUT/STDERR in the session's environment, which
    sshd refuses (AcceptEnv) with a warning on every update (tests/lifecycle/sources.md §2)."""
    commands = homelab_run.of_type(COMMAND)
    assert commands and all(c.inputs.get("addPreviousOutputInEnv") is False for c in commands), \
        [c.name for c in commands if c.inputs.get("addPreviousOutputInEnv") is not False]
