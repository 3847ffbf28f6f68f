"""The converge step's netplan comparison, run for real: the file cloud-init wrote for the same
config (its header, its own YAML layout: cloud-init @04eacd06 cloudinit/net/netplan.py and
safeyaml.dumps) is the same config, so the first network update after boot rewrites nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.render.cloudinit import network_document
from components.render.guest import SAME_NETPLAN, netplan

CLOUD_INIT_HEADER = "# This file is generated from information provided by the datasource.  Changes\n# to it will not persist across an instance reboot.\n"
OLD_COMPARISON = 'same_netplan() { cmp -s "$1" "$2"; }\n'  # before issue 22: the text, byte for byte


def cloud_init_file(document: dict) -> str:
    """As cloud-init writes a v2 passthrough: header + yaml.dump(indent=4, explicit start and end, block style)."""
    return CLOUD_INIT_HEADER + yaml.dump({"network": document}, line_break="\n", indent=4, explicit_start=True, explicit_end=True,
                                          default_flow_style=False, Dumper=yaml.SafeDumper)


def same(tmp_path: Path, want: str, have: str, function: str = SAME_NETPLAN, path: str = "/usr/bin:/bin") -> bool:
    (tmp_path / "want.yaml").write_text(want)
    (tmp_path / "have.yaml").write_text(have)
    script = f'work={tmp_path}\n{function}same_netplan "$work/want.yaml" "$work/have.yaml"\n'
    return subprocess.run(["sh", "-c", script], timeout=30, env={"PATH": path}).returncode == 0


@pytest.fixture
def rendered(homelab) -> tuple[str, dict]:
    return netplan(homelab.server, homelab.network), network_document(homelab.server, homelab.network)


def test_the_file_cloud_init_wrote_for_the_same_config_is_the_same(tmp_path, rendered):
    text, document = rendered
    assert text != cloud_init_file(document)
    assert same(tmp_path, text, cloud_init_file(document))


def test_the_old_byte_comparison_rewrote_it_on_every_node(tmp_path, rendered):
    text, document = rendered
    assert not same(tmp_path, text, cloud_init_file(document), OLD_COMPARISON)


def test_another_mtu_is_another_config(tmp_path, rendered):
    text, document = rendered
    other = {**document, "ethernets": {"eth0": {**document["ethernets"]["eth0"], "mtu": 1450}}}
    assert not same(tmp_path, text, cloud_init_file(other))


def test_without_python_yaml_the_text_without_comments_decides(tmp_path, rendered):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text("#!/bin/sh\nexit 1\n")  # a python3 that cannot import yaml
    (bin_dir / "python3").chmod(0o755)
    text, _ = rendered
    path = f"{bin_dir}:/usr/bin:/bin"
    assert same(tmp_path, text, "# another header\n" + text.split("\n", 1)[1], path=path)
    assert not same(tmp_path, text, text.replace("mtu: 1400", "mtu: 1450"), path=path)
