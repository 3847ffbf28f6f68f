"""Mirror instance configs, registries.yaml, the VM's cloud-init, warm-up, and config rules."""

from __future__ import annotations

import pytest
import yaml

from components.config import parse_config
from components.render import mirror as mirror_render
from tests.conftest import problems_of
from tests.render.files import files_of


def test_one_instance_per_upstream_on_its_own_port_and_storage(homelab):
    configs = {k: yaml.safe_load(v) for k, v in mirror_render.instance_configs(homelab.mirror).items()}
    assert set(configs) == {"docker.io", "ghcr.io", "quay.io", "registry.k8s.io"}
    assert configs["docker.io"]["proxy"]["remoteurl"] == "https://registry-1.docker.io"
    addrs = [c["http"]["addr"] for c in configs.values()]
    assert len(set(addrs)) == len(addrs) and all(a.startswith("10.27.27.5:") for a in addrs), "private address only, ports unique"
    dirs = [c["storage"]["filesystem"]["rootdirectory"] for c in configs.values()]
    assert len(set(dirs)) == len(dirs)
    for config in configs.values():
        assert config["storage"]["delete"]["enabled"] is True, "the proxy's expiry needs delete enabled"
        assert "username" not in config["proxy"] and "password" not in config["proxy"]


def test_registries_yaml_points_every_upstream_and_alias_at_its_instance(homelab):
    doc = yaml.safe_load(mirror_render.registries_yaml(homelab.mirror))
    assert doc["mirrors"]["docker.io"]["endpoint"] == ["http://10.27.27.5:5001"]
    assert doc["mirrors"]["oci.external-secrets.io"]["endpoint"] == doc["mirrors"]["ghcr.io"]["endpoint"]
    assert "configs" not in doc, "plain-HTTP mirror: no TLS configs"
    for registry, entry in doc["mirrors"].items():
        assert len(entry["endpoint"]) == 1, f"{registry}: only the mirror; the upstream stays K3s's implicit fallback"


def test_the_mirror_vm_installs_the_distribution_package_not_a_container(homelab):
    doc = yaml.safe_load(mirror_render.user_data(homelab.mirror, homelab.network, homelab.ssh))
    assert "docker-registry" in doc["packages"]
    paths = {f["path"] for f in doc["write_files"]}
    assert "/etc/netstab/registry/docker.io.yml" in paths and "/etc/systemd/system/netstab-registry@.service" in paths
    units = [c for c in doc["runcmd"] if "enable" in c and "--now" in c]
    assert any("netstab-registry@ghcr.io.service" in c for c in units)


def test_units_restart_forever_because_distribution_exits_when_the_upstream_is_down():
    assert "Restart=always" in mirror_render.UNIT_TEXT and "StartLimitIntervalSec=0" in mirror_render.UNIT_TEXT


def test_the_firewall_admits_only_the_vm_subnet(homelab):
    text = mirror_render.firewall(homelab.mirror, homelab.network)
    assert "tcp dport { 5001, 5002, 5003, 5004 } ip saddr != 10.27.27.0/24 drop" in text


def test_the_health_check_never_contacts_an_upstream(homelab):
    script = mirror_render.health_script(homelab.mirror)
    for upstream in ("registry-1.docker.io", "https://ghcr.io", "quay.io/v2"):
        assert upstream not in script
    assert "http://10.27.27.5:5001/v2/" not in script  # built from $2 at run time
    assert 'check docker.io http://10.27.27.5:5001' in script


def test_warmup_pulls_each_group_through_its_own_instance_without_fallback(homelab):
    plan = mirror_render.warmup_plan(homelab.mirror)
    assert "oci.external-secrets.io/external-secrets/external-secrets:v2.1.0" in plan["http://10.27.27.5:5002"]
    assert "quay.io/prometheus/node-exporter:v1.8.2" in plan["http://10.27.27.5:5003"]
    script = mirror_render.warmup_script(homelab.mirror, "v1.33.5+k3s1")
    assert "--no-fallback" in script and "k3s-images.txt" in script and "v1.33.5%2Bk3s1" in script
    assert 'echo "warmup: warning only' in script


def test_a_fatal_warmup_exits_non_zero(homelab_raw):
    homelab_raw["mirror"]["warmup"] = {"fatal": True}
    config = parse_config(homelab_raw)
    assert "  exit 1\n" in mirror_render.warmup_script(config.mirror, config.k3s.version)


def test_credentials_become_stdin_lines_and_never_script_text(homelab):
    stdin = mirror_render.credentials_stdin({"docker.io": {"username": "me", "password": "pa55"}})
    assert stdin == "docker.io bWU= cGE1NQ==\n", "registry, then base64 of username and password"
    assert "pa55" not in mirror_render.credentials_script(homelab.mirror)
    with pytest.raises(ValueError, match="needs username and password"):
        mirror_render.credentials_stdin({"docker.io": {"username": "me"}})


BROKEN_MIRRORS = [
    pytest.param(lambda m: m.update(upstreams=[{"registry": "ghcr.io", "port": 5002}, {"registry": "quay.io", "port": 5002}]),
                 "mirror.upstreams[1].port: 5002 is already used by ghcr.io; each instance needs its own port", id="port_used_twice"),
    pytest.param(lambda m: m.update(upstreams=[{"registry": "ghcr.io", "port": 5002}, {"registry": "ghcr.io", "port": 5003}]),
                 "mirror.upstreams[1].registry: ghcr.io is already served by the ghcr.io instance", id="registry_served_twice"),
    pytest.param(lambda m: m.update(upstreams=[{"registry": "ghcr.io", "port": 5002}, {"registry": "quay.io", "port": 5003, "aliases": ["ghcr.io"]}]),
                 "mirror.upstreams[1].registry: ghcr.io is already served by the ghcr.io instance", id="alias_served_twice"),
    pytest.param(lambda m: m.update(upstreams=[{"registry": "GHCR", "port": 5002}]),
                 "mirror.upstreams[0].registry: 'GHCR' is not a registry host name such as ghcr.io", id="bad_registry_name"),
    pytest.param(lambda m: m.update(upstreams=[{"registry": "ghcr.io", "port": 80}]),
                 "mirror.upstreams[0].port: 80 is not an integer in 1024..65535", id="privileged_port"),
    pytest.param(lambda m: m.update(upstreams=[]), "mirror.upstreams: needs at least one upstream registry", id="no_upstream"),
    pytest.param(lambda m: m.update(ip="10.27.27.11"), "mirror.ip: 10.27.27.11 is already used by nodes[0]; each VM needs its own",
                 id="ip_of_a_node"),
    pytest.param(lambda m: m.update(vmId=2711), "mirror.vmId: 2711 is already used by nodes[0]; each VM needs its own", id="vm_id_of_a_node"),
    pytest.param(lambda m: m.update(ip="10.99.0.5"), "mirror.ip: 10.99.0.5 is outside network.subnet 10.27.27.0/24; pick an address inside it",
                 id="ip_outside_subnet"),
    pytest.param(lambda m: m.update(warmup={"groups": {"x": ["busybox"]}}),
                 "mirror.warmup.groups: {'x': ['busybox']} is not a mapping of group name -> list of image references (registry/repo:tag)"
                 " (group 'x' has references without an explicit registry and tag: busybox)", id="warmup_image_without_registry"),
    pytest.param(lambda m: m.update(warmup={"fatl": True}), "mirror.warmup.fatl: unknown key; expected one of: fatal, k3sImages, groups",
                 id="unknown_warmup_key"),
    pytest.param(lambda m: m.pop("vmId"), "mirror.vmId: missing required key", id="enabled_without_vm_id"),
]


@pytest.mark.parametrize("edit,expected", BROKEN_MIRRORS)
def test_mirror_config_errors_name_their_key(homelab_raw, edit, expected):
    edit(homelab_raw["mirror"])
    assert problems_of(homelab_raw) == [expected]


def test_a_disabled_mirror_needs_nothing_else(homelab_raw):
    homelab_raw["mirror"] = {"enabled": False}
    assert parse_config(homelab_raw).mirror.enabled is False


def test_the_packages_own_registry_is_masked_before_it_can_start(homelab):
    doc = yaml.safe_load(mirror_render.user_data(homelab.mirror, homelab.network, homelab.ssh))
    assert doc["bootcmd"] == [["systemctl", "mask", "docker-registry.service"]], "bootcmd runs before the packages stage"
    assert not any("docker-registry.service" in " ".join(step) for step in doc["runcmd"])


def test_remote_scripts_use_private_temporary_folders(homelab):
    for text in files_of(homelab).values():
        assert "/tmp/" not in text, "root scripts on shared nodes use mktemp -d, never a fixed /tmp path"
