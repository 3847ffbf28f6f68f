"""The registries.yaml update and remove scripts for real, with a fake systemctl standing in for the node's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from components.render.mirror import registries_remove_script, registries_update_script

OLD, NEW = "mirrors: {old: 1}\n", "mirrors: {new: 1}\n"


def run(tmp_path: Path, content: str | None, active: str = "", restart_fails: bool = False) -> subprocess.CompletedProcess[str]:
    """`active`: which service the fake systemctl reports running; restarts are logged to a file."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "systemctl"
    fake.write_text(f"""#!/bin/sh
case "$1" in
  is-active) [ "$3" = "{active}" ] ;;
  restart) echo "restart $2 with $(cat {tmp_path}/registries.yaml 2>/dev/null)" >> {tmp_path}/restarts; {"grep -q new " + str(tmp_path / "registries.yaml") + " && exit 1" if restart_fails and content else "exit 1" if restart_fails else "true"} ;;
esac
""")
    fake.chmod(0o755)
    script = (registries_update_script(content) if content is not None else registries_remove_script()).replace("target=/etc/rancher/k3s/registries.yaml", f"target={tmp_path}/registries.yaml")
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})


def test_before_k3s_runs_the_file_is_written_and_nothing_restarted(tmp_path):
    done = run(tmp_path, NEW)
    assert done.returncode == 0 and "K3s is not running yet" in done.stdout
    assert (tmp_path / "registries.yaml").read_text() == NEW
    assert not (tmp_path / "restarts").exists()


def test_unchanged_content_does_nothing(tmp_path):
    (tmp_path / "registries.yaml").write_text(NEW)
    done = run(tmp_path, NEW, active="k3s")
    assert "unchanged" in done.stdout and not (tmp_path / "restarts").exists()


def test_a_change_restarts_the_running_agent_service_with_the_new_file(tmp_path):
    (tmp_path / "registries.yaml").write_text(OLD)
    done = run(tmp_path, NEW, active="k3s-agent")
    assert done.returncode == 0 and "k3s-agent restarted" in done.stdout
    assert (tmp_path / "restarts").read_text().startswith("restart k3s-agent with mirrors: {new: 1}")
    assert (tmp_path / "registries.yaml.netstab-backup").read_text() == OLD


def test_a_failed_restart_restores_the_previous_file(tmp_path):
    (tmp_path / "registries.yaml").write_text(OLD)
    done = run(tmp_path, NEW, active="k3s", restart_fails=True)
    assert done.returncode == 1 and "restoring the previous file" in done.stderr
    assert (tmp_path / "registries.yaml").read_text() == OLD
    restarts = (tmp_path / "restarts").read_text().splitlines()
    assert restarts == ["restart k3s with mirrors: {new: 1}", "restart k3s with mirrors: {old: 1}"]


def test_remove_restarts_the_running_service_and_a_second_remove_does_nothing(tmp_path):
    (tmp_path / "registries.yaml").write_text(OLD)
    done = run(tmp_path, None, active="k3s")
    assert done.returncode == 0 and "k3s restarted and pulls upstream directly" in done.stdout
    assert (tmp_path / "restarts").read_text().splitlines() == ["restart k3s with "]
    again = run(tmp_path, None, active="k3s")
    assert "nothing to remove" in again.stdout and len((tmp_path / "restarts").read_text().splitlines()) == 1


def test_a_remove_cut_off_before_the_restart_restarts_on_the_next_run(tmp_path):
    (tmp_path / "registries.yaml").write_text(OLD)
    failed = run(tmp_path, None, active="k3s", restart_fails=True)
    assert failed.returncode != 0 and not (tmp_path / "registries.yaml").exists()
    retried = run(tmp_path, None, active="k3s")
    assert retried.returncode == 0 and "k3s restarted" in retried.stdout, "the file is gone but K3s still holds the mirror"
    assert not (tmp_path / "registries.yaml.netstab-restart-pending").exists()
    assert "nothing to remove" in run(tmp_path, None, active="k3s").stdout
