"""`python -m components render`: offline, exit 2 with every problem on bad config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def stack_dir(tmp_path: Path, name: str, text: str) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    (stacks / f"Pulumi.{name}.yaml").write_text(text)
    return stacks


HOMELAB = (ROOT / "stacks/Pulumi.homelab.yaml").read_text()
MANIFEST = ".netstab-render.json"


def test_render_into_a_file_is_refused(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    result = run("render", "homelab", "--out", str(taken))
    assert (result.returncode, result.stderr) == (2, f"netstab: --out {taken}: is a file, not a folder; pick a folder to render into\n")
    assert taken.read_text() == "mine"


def test_render_below_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("mine")
    out = tmp_path / "taken" / "out"
    result = run("render", "homelab", "--out", str(out))
    assert (result.returncode, result.stderr) == (2, f"netstab: --out {out}: cannot write there (Not a directory); pick a folder you can write to\n")


def test_a_new_render_removes_only_what_the_previous_render_wrote(tmp_path):
    out = tmp_path / "out"
    assert run("render", "homelab", "--out", str(out)).returncode == 0
    first = json.loads((out / MANIFEST).read_text())["files"]
    (out / "notes.txt").write_text("mine")  # as with --out .: the folder holds other files too
    (out / "mirror" / "mine.txt").write_text("mine")
    stacks = stack_dir(tmp_path, "nomirror", HOMELAB.replace("  netstab:mirror:\n", "  netstab:mirror:\n    enabled: false\n", 1)
                       .replace("    enabled: true\n    name: mirror\n", "    name: mirror\n"))
    result = run("render", "nomirror", "--out", str(out), "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    second = json.loads((out / MANIFEST).read_text())["files"]
    stale = sorted(set(first) - set(second))
    assert stale and all(name.startswith(("mirror/", "k3s/registries", "nodes/", "monitoring/mirror/")) for name in stale), stale
    assert result.stdout.splitlines()[0] == (f"netstab: rendered {len(second)} files for stack 'nomirror' into {out}/ "
                                             f"and removed {len(stale)} left by the previous render")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted([*second, MANIFEST, "notes.txt", "mirror/mine.txt"])


def test_a_manifest_never_reaches_outside_the_output_folder(tmp_path):
    out = tmp_path / "out"
    assert run("render", "homelab", "--out", str(out)).returncode == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "hosts").write_text("mine")
    (out / "linked").symlink_to(tmp_path / "elsewhere")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"] += ["../victim.txt", str(victim), "linked/hosts", "nodes"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    assert run("render", "homelab", "--out", str(out)).returncode == 0
    assert victim.read_text() == "mine" and (tmp_path / "elsewhere" / "hosts").read_text() == "mine"
    assert (out / "nodes" / "cp1" / "user-data.yaml").is_file()


def test_a_broken_manifest_removes_nothing(tmp_path):
    out = tmp_path / "out"
    assert run("render", "homelab", "--out", str(out)).returncode == 0
    (out / "notes.txt").write_text("mine")
    for broken in ("{not json", '{"files": 5}', '["notes.txt"]'):
        (out / MANIFEST).write_text(broken)
        assert run("render", "homelab", "--out", str(out)).returncode == 0
        assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / MANIFEST).read_text())["files"]


@pytest.mark.parametrize("extra,edit,expected", [
    pytest.param("", lambda t: t,
                 ["netstab: before `pulumi up`, set the secrets netstab:proxmoxApiToken, netstab:sshPrivateKey, netstab:k3sToken, "
                  "netstab:dopplerToken (pulumi config set --secret KEY, which prompts, or reads the value on stdin); optional: netstab:mirrorCredentials"], id="none_set"),
    pytest.param("  netstab:k3sToken:\n    secure: v1:AAAA\n  netstab:mirrorCredentials:\n    secure: v1:BBBB\n",
                 lambda t: t.replace("    diskGb: 100\n", "    diskGb: 100\n    credentialsOpenToSubnet: true\n"),
                 ["netstab: before `pulumi up`, set the secrets netstab:proxmoxApiToken, netstab:sshPrivateKey, netstab:dopplerToken "
                  "(pulumi config set --secret KEY, which prompts, or reads the value on stdin)"], id="some_set"),
    pytest.param("  netstab:proxmoxApiToken:\n    secure: v1:A\n  netstab:sshPrivateKey:\n    secure: v1:B\n  netstab:k3sToken:\n    secure: v1:C\n",
                 lambda t: t.replace("    enabled: true\n    operator:", "    enabled: false\n    operator:"),
                 ["netstab: every secret `pulumi up` needs is set in the stack file; optional: netstab:mirrorCredentials"],
                 id="secrets_layer_disabled"),
])
def test_render_says_which_secrets_pulumi_up_still_needs(tmp_path, extra, edit, expected):
    stacks = stack_dir(tmp_path, "s", edit(HOMELAB) + extra)
    result = run("render", "s", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == expected


def test_render_with_a_path_mtu_writes_the_measured_stacks_apply_script(tmp_path):
    result = run("render", "homelab", "--out", str(tmp_path), "--path-mtu", "1280")
    assert result.returncode == 0, result.stderr
    assert "maxseg size set 1240" in (tmp_path / "gateway" / "apply.sh").read_text()
    assert not (tmp_path / "gateway" / "MEASURED.md").exists()
    bad = run("render", "homelab", "--out", str(tmp_path / "x"), "--path-mtu", "9999")
    assert bad.returncode == 2 and "--path-mtu 9999: MSS 9959 is outside 536..1360" in bad.stderr
