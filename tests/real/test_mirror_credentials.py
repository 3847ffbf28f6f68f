"""Upstream credentials for the mirror, end to end on this machine: the stdin lines, the
credentials script writing the instance's environment file, and registry-serve handing
distribution the exact bytes (stand-ins for systemctl and docker-registry record what they get)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from components.render.mirror import CONFIG_DIR, SERVE_TEXT, credentials_script, credentials_stdin
from components.stack import load_stack_file, stack_file

PASSWORDS = ["plain-PASSWORD-1", "with\nnewline", "trailing newline\n", 'quo"te\'s \\ and $HOME `id`', "tab\there", "ünïcødé ✓", " lead and trail "]


def _bin(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(body)
    (folder / name).chmod(0o755)


@pytest.fixture
def machine(tmp_path):
    bins = tmp_path / "bin"
    bins.mkdir()
    _bin(bins, "systemctl", f"#!/bin/sh\necho \"$@\" >> {tmp_path}/systemctl.log\n")
    dump = "import json, os, sys; print(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith(('REGISTRY_', 'NETSTAB_'))}}))"
    _bin(bins, "docker-registry", f"#!{sys.executable}\n{dump}\n")
    (tmp_path / CONFIG_DIR.lstrip("/")).mkdir(parents=True)
    return tmp_path


def _env_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile for lines of KEY=VALUE whose value has no quote, space or backslash."""
    pairs = dict(line.split("=", 1) for line in path.read_text().splitlines())
    assert all(v.replace("+", "").replace("/", "").replace("=", "").isalnum() for v in pairs.values()), "base64 only"
    return pairs


@pytest.mark.parametrize("password", PASSWORDS, ids=range(len(PASSWORDS)))
def test_any_password_reaches_distribution_byte_for_byte_and_never_in_clear_on_disk_or_output(machine, password):
    mirror = load_stack_file(stack_file("homelab")).mirror
    env = {"PATH": f"{machine / 'bin'}:/usr/bin:/bin", "NETSTAB_ROOT": str(machine)}
    stdin = credentials_stdin({"docker.io": {"username": "hub-user", "password": password}})
    done = subprocess.run(["sh", "-c", credentials_script(mirror)], input=stdin, capture_output=True, text=True, env=env, timeout=20)
    assert done.returncode == 0, done.stderr
    assert password.strip() not in done.stdout + done.stderr
    written = machine / CONFIG_DIR.lstrip("/") / "docker.io.env"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert password.strip() not in written.read_text()
    assert "restart netstab-registry@docker.io.service" in (machine / "systemctl.log").read_text()
    served = subprocess.run(["sh", "-c", SERVE_TEXT, "registry-serve", "docker.io"], capture_output=True, text=True, timeout=20,
                            env={**env, **_env_file(written)})
    assert served.returncode == 0, served.stderr
    seen = json.loads(served.stdout)
    assert seen["env"]["REGISTRY_PROXY_PASSWORD"] == password
    assert seen["env"]["REGISTRY_PROXY_USERNAME"] == "hub-user"
    assert "NETSTAB_PROXY_PASSWORD_B64" not in seen["env"]
    assert seen["argv"] == ["serve", f"{CONFIG_DIR}/docker.io.yml"]


def test_without_credentials_an_instance_starts_with_none(machine):
    env = {"PATH": f"{machine / 'bin'}:/usr/bin:/bin"}
    served = subprocess.run(["sh", "-c", SERVE_TEXT, "registry-serve", "quay.io"], capture_output=True, text=True, env=env, timeout=20)
    assert json.loads(served.stdout)["env"] == {}


def test_malformed_credentials_are_refused_without_their_values():
    with pytest.raises(ValueError) as caught:
        credentials_stdin('{"docker.io": {"username": "u", "pass": "SECRET-value-9"}')
    assert str(caught.value) == "netstab:mirrorCredentials is not JSON"
    with pytest.raises(ValueError) as caught:
        credentials_stdin({"docker.io": {"username": "u", "pass": "SECRET-value-9"}})
    assert str(caught.value) == "netstab:mirrorCredentials: docker.io needs username and password"


def test_removing_the_credentials_takes_them_off_the_instances(machine):
    mirror = load_stack_file(stack_file("homelab")).mirror
    env = {"PATH": f"{machine / 'bin'}:/usr/bin:/bin", "NETSTAB_ROOT": str(machine)}
    script = credentials_script(mirror)
    given = credentials_stdin({"docker.io": {"username": "u", "password": "p"}, "quay.io": {"username": "v", "password": "q"}})
    subprocess.run(["sh", "-c", script], input=given, env=env, check=True, capture_output=True, text=True, timeout=20)
    folder = machine / CONFIG_DIR.lstrip("/")
    assert sorted(p.name for p in folder.glob("*.env")) == ["docker.io.env", "quay.io.env"]
    again = subprocess.run(["sh", "-c", script], input=credentials_stdin({"quay.io": {"username": "v", "password": "q"}}), env=env,
                           check=True, capture_output=True, text=True, timeout=20)
    assert [p.name for p in folder.glob("*.env")] == ["quay.io.env"]
    assert "credentials removed from the docker.io instance" in again.stdout and "quay.io instance unchanged" in again.stdout
    none = subprocess.run(["sh", "-c", script], input=credentials_stdin(None), env=env, check=True, capture_output=True, text=True, timeout=20)
    assert not list(folder.glob("*.env")) and "credentials removed from the quay.io instance" in none.stdout
    restarts = (machine / "systemctl.log").read_text().splitlines()
    assert restarts.count("restart netstab-registry@docker.io.service") == 2 and restarts.count("restart netstab-registry@quay.io.service") == 2
