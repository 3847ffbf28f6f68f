"""`python -m components render`: offline, exit 2 with every problem on bad config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.program.harness import DUMMY_SECRETS

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_render_homelab_writes_the_artifacts(tmp_path):
    result = run("render", "homelab", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "nodes/cp1/network-config.yaml").read_text().count("mtu: 1400") == 1
    assert (tmp_path / "nodes/worker2/k3s-install.sh").stat().st_mode & 0o111


def test_render_of_a_broken_stack_exits_2_listing_every_problem(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = (ROOT / "stacks/Pulumi.homelab.yaml").read_text()
    text = text.replace("mtu: 1400", "mtu: 100").replace("ip: 10.27.27.22", "ip: 10.27.27.21")
    (stacks / "Pulumi.broken.yaml").write_text(text)
    result = run("render", "broken", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks))
    assert result.returncode == 2
    assert "network.mtu: 100 is not an integer in 576..9000" in result.stderr
    assert "nodes[2].ip: 10.27.27.21 is already used by nodes[1]" in result.stderr
    assert not (tmp_path / "out").exists(), "nothing may be written for an invalid stack"


def test_render_of_an_unknown_stack_names_the_known_ones(tmp_path):
    result = run("render", "nosuch", "--out", str(tmp_path))
    assert result.returncode == 2 and "homelab" in result.stderr


def test_rendered_files_hold_no_secret_even_when_the_stack_has_them(tmp_path):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    text = (ROOT / "stacks/Pulumi.homelab.yaml").read_text()
    # an encrypted value as `pulumi config set --secret` stores it
    text += "  netstab:k3sToken:\n    secure: v1:AAAAencryptedAAAA\n"
    (stacks / "Pulumi.withsecret.yaml").write_text(text)
    result = run("render", "withsecret", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    rendered = "".join(p.read_text() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "v1:AAAAencryptedAAAA" not in rendered
    for secret in DUMMY_SECRETS.values():
        assert secret not in rendered


def test_gateway_script_prints_exactly_what_the_component_runs():
    from components.render.gateway import GatewayRules, gateway_script

    result = run("gateway-script", "apply", "--flavor", "iptables", "--stack", "homelab", "--subnet", "10.27.27.0/24", "--path-mtu", "1280", "--mtu", "1400")
    assert result.returncode == 0
    assert result.stdout == gateway_script("apply", "iptables", GatewayRules.build(["10.27.27.0/24"], stack="homelab", path_mtu=1280, mtu=1400))


def test_an_invalid_mss_is_refused_before_any_script_exists():
    result = run("gateway-script", "apply", "--flavor", "nftables", "--stack", "homelab", "--subnet", "10.27.27.0/24", "--mss", "1380", "--mtu", "1400")
    assert result.returncode == 2 and result.stdout == ""
    assert "MSS 1380 is outside 536..1360" in result.stderr


def test_gateway_script_needs_exactly_one_mss_source():
    result = run("gateway-script", "apply", "--flavor", "nftables", "--stack", "homelab", "--subnet", "10.27.27.0/24", "--mss", "1300", "--pmtu")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_schema_prints_the_stack_files_json_schema():
    from components.config.schema import schema_text

    result = run("schema")
    assert result.returncode == 0 and result.stdout == schema_text()
    assert json.loads(result.stdout)["properties"]["config"]["properties"]["netstab:network"] == {"$ref": "#/$defs/NetworkConfig"}


def test_schema_markdown_prints_the_config_reference():
    result = run("schema", "--markdown")
    assert result.returncode == 0 and result.stdout == (ROOT / "stacks/README.md").read_text()
