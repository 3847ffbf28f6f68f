"""The authorized_keys step run for real on a stand-in home: it adds every configured key, revokes
the keys it installed that are no longer configured, keeps keys added by hand, and says when there
is nothing to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

from components.render.sshkeys import MANAGED_FILE, authorized_keys_script

OLD = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKeyOfTheOperator000000000000000000000 old@laptop"
NEW = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKeyOfTheOperator000000000000000000000 new@laptop"
HAND = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddedByHandOnTheNode00000000000000000000 someone@else"


def run(tmp_path: Path, keys: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", authorized_keys_script("ubuntu", keys)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "NETSTAB_HOME": str(tmp_path / "home"), "NETSTAB_ROOT": str(tmp_path / "root")})


def authorized(tmp_path: Path) -> list[str]:
    return (tmp_path / "home" / ".ssh" / "authorized_keys").read_text().splitlines()


def first_boot(tmp_path: Path) -> None:
    """What cloud-init left: the configured key, and one someone added by hand since."""
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text(f"{OLD}\n{HAND}\n")


def test_on_first_boot_it_takes_the_keys_cloud_init_wrote_as_its_own(tmp_path):
    first_boot(tmp_path)
    done = run(tmp_path, [OLD])
    assert done.returncode == 0 and "as configured" in done.stdout, done.stderr
    assert authorized(tmp_path) == [OLD, HAND]
    assert (tmp_path / "root" / MANAGED_FILE.lstrip("/")).read_text().splitlines() == [OLD]


def test_a_rotation_adds_the_new_key_and_revokes_the_old_one_and_keeps_a_hand_added_key(tmp_path):
    first_boot(tmp_path)
    run(tmp_path, [OLD])
    both = run(tmp_path, [OLD, NEW])
    assert both.returncode == 0 and "2 configured, 0 revoked" in both.stdout
    assert authorized(tmp_path) == [OLD, HAND, NEW]
    rotated = run(tmp_path, [NEW])
    assert rotated.returncode == 0 and "1 configured, 1 revoked" in rotated.stdout, rotated.stderr
    assert authorized(tmp_path) == [HAND, NEW]
    again = run(tmp_path, [NEW])
    assert again.returncode == 0 and "as configured" in again.stdout and authorized(tmp_path) == [HAND, NEW]
    mode = (tmp_path / "home" / ".ssh" / "authorized_keys").stat().st_mode & 0o777
    assert mode == 0o600


def test_a_compromised_key_replaced_in_one_change_is_gone_in_one_run(tmp_path):
    first_boot(tmp_path)
    run(tmp_path, [OLD])
    done = run(tmp_path, [NEW])
    assert done.returncode == 0 and OLD not in authorized(tmp_path) and NEW in authorized(tmp_path)


def test_a_missing_user_is_waited_for_within_its_bound(tmp_path):
    script = authorized_keys_script("no-such-user-netstab", [NEW], user_wait_s=0)
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 1 and "the user no-such-user-netstab does not exist after 0s" in done.stderr
