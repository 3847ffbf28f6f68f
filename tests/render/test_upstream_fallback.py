"""The registry mirror is the first path, never the only one: K3s tries each registry's default
endpoint after the mirrors in registries.yaml unless it runs with --disable-default-registry-endpoint
(docs.k3s.io/installation/private-registry, "Default Endpoint Fallback"; the flag, its K3S_ env
variable or its config.yaml key). No rendered file may set it, so a mirror that is down only slows
pulls."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.render.files import files_of

# the flag, its config.yaml key, its environment variable (K3S_DISABLE_DEFAULT_REGISTRY_ENDPOINT)
DISABLES_FALLBACK = re.compile(r"disable[-_]default[-_]registry[-_]endpoint", re.IGNORECASE)


def fallback_disabled(files: dict[str, str]) -> list[str]:
    """The rendered files that would turn the upstream fallback off."""
    return sorted(path for path, text in files.items() if DISABLES_FALLBACK.search(text))


def test_no_rendered_file_turns_the_upstream_fallback_off(homelab):
    files = files_of(homelab)
    assert [p for p in files if p.endswith("k3s-install.sh")] and [p for p in files if p.endswith("registries.yaml")]
    assert fallback_disabled(files) == []


def test_every_mirrored_registry_lists_only_the_mirror_so_its_default_endpoint_stays_last(homelab):
    """K3s appends the default endpoint after the listed ones; a listed upstream is not needed, and
    a wildcard `*` would mirror registries the mirror does not serve."""
    mirrors = yaml.safe_load(files_of(homelab)["nodes/cp1/registries.yaml"])["mirrors"]
    assert "*" not in mirrors
    assert all(entry["endpoint"] and all(e.startswith(f"http://{homelab.mirror.ip}:") for e in entry["endpoint"]) for entry in mirrors.values())


@pytest.mark.parametrize("spelling", ["--disable-default-registry-endpoint", "K3S_DISABLE_DEFAULT_REGISTRY_ENDPOINT=true ",
                                      "disable-default-registry-endpoint: true"], ids=["flag", "environment", "config_key"])
def test_the_check_sees_every_spelling_of_the_switch(homelab, spelling):
    """The counterfactual: the install script with the switch added (as a flag, an env variable or a config line)."""
    files = files_of(homelab)
    files["nodes/worker1/k3s-install.sh"] = files["nodes/worker1/k3s-install.sh"].replace("--flannel-iface eth0", f"--flannel-iface eth0 {spelling}")
    assert fallback_disabled(files) == ["nodes/worker1/k3s-install.sh"]
