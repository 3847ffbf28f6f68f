"""The program's remote steps over SSH into the booted node, as the program runs them (command text
from components/render/shell.py): the bounded cloud-init wait, and the registries step before K3s.

K3s itself is not available here (no internet to fetch it from): the install script runs with the
stand-ins tests/real/test_remote_steps.py uses (curl hands over a recording installer, systemctl
answers for the service), inside the real guest, after registries.yaml is on disk.
"""

from __future__ import annotations

import shlex

from components.render.bundle import render_registries
from components.render.k3s import NODE_PASSWORD_FILE, SERVER_TOKEN_FILE, STAMP_DIR, cloud_init_wait_script, server_install_script
from components.render.mirror import REGISTRIES_PATH
from components.render.shell import as_root
from tests.real.test_remote_steps import INSTALLER_STAND_INS

STANDINS = "/var/tmp/netstab-ring/bin"
STATE = "/var/tmp/netstab-ring/state"


def test_the_bounded_cloud_init_wait_says_finished(guest):
    done = guest.ssh(as_root(cloud_init_wait_script()))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"netstab: cloud-init finished on {guest.node.name}"


def test_the_registries_step_writes_registries_yaml_as_rendered_and_then_does_nothing(guest):
    artifacts = render_registries(guest.config)
    assert artifacts is not None
    first = guest.ssh(as_root(artifacts.update))
    assert first.returncode == 0, first.stderr
    assert "K3s is not running yet and reads it when it starts" in first.stdout
    assert guest.sh(f"cat {REGISTRIES_PATH}")["out-data"] == artifacts.content
    assert guest.sh(f"stat -c %a {REGISTRIES_PATH}")["out-data"].strip() == "644"
    second = guest.ssh(as_root(artifacts.update))
    assert second.returncode == 0 and "registries.yaml unchanged" in second.stdout


def test_the_k3s_install_runs_after_registries_yaml_with_the_token_from_stdin(guest):
    """K3s is not available: its installer is the stand-in; the script, its stamps and token handling are real."""
    setup = [f"mkdir -p {STANDINS} {STATE}"]
    for name, body in INSTALLER_STAND_INS.items():
        setup.append(f"cat > {STANDINS}/{name} <<'NETSTAB_STANDIN'\n#!/bin/sh\n{body}\nNETSTAB_STANDIN\nchmod 755 {STANDINS}/{name}")
    assert guest.sh("\n".join(setup) + "\n")["exitcode"] == 0
    script = server_install_script(guest.config)
    for real, stand_in in ((STAMP_DIR, f"{STATE}/stamps"), (NODE_PASSWORD_FILE, f"{STATE}/node-password"), (SERVER_TOKEN_FILE, f"{STATE}/server-token")):
        script = script.replace(real, stand_in)
    command = f"sudo -n env PATH={STANDINS}:/usr/sbin:/usr/bin:/sbin:/bin STATE={STATE} sh -c {shlex.quote(script)}"
    token = "ring-token-value"
    first = guest.ssh(command, input_text=token)
    assert first.returncode == 0, first.stderr
    installs = guest.sh(f"cat {STATE}/installs")["out-data"].splitlines()
    assert len(installs) == 1 and installs[0].startswith(f"{guest.config.k3s.version} token={token} url= args=server")
    assert "--node-ip 10.27.27.11" in installs[0] and "--flannel-iface eth0" in installs[0]
    again = guest.ssh(command, input_text=token)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert token not in command
    assert guest.sh(f"test -f {REGISTRIES_PATH}")["exitcode"] == 0, "registries.yaml was on disk before K3s was installed"
