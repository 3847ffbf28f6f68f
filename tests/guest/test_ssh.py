"""sshd serves exactly the host key the program pinned, and the stack's user logs in with it checked."""

from __future__ import annotations

from components.hostkeys import generate


def _key(line: str) -> tuple[str, str]:
    words = line.split()
    return words[0], words[1]


def test_ssh_keyscan_returns_exactly_the_pinned_host_key(guest):
    scan = guest.topo.run("gw", "ssh-keyscan", "-T", "20", str(guest.node.ip), check=False, timeout=60)
    served = {_key(line.split(None, 1)[1]) for line in scan.stdout.splitlines() if line and not line.startswith("#")}
    assert served == {_key(guest.host_public_key)}, scan.stdout + scan.stderr


def test_the_stacks_user_logs_in_against_the_pinned_key_and_sudo_needs_no_password(guest):
    done = guest.ssh("sudo -n true && id -un")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == guest.config.ssh.user


def test_a_login_pinned_to_another_host_key_is_refused(guest, tmp_path):
    """The strict check is real: the same login with another key pinned does not get in."""
    _, other = generate("another-host")
    known = tmp_path / "known_hosts"
    known.write_text(f"{guest.node.ip} {other}\n")
    done = guest.ssh("true", known_hosts=known)
    assert done.returncode == 255 and "Host key verification failed" in done.stderr, done.stderr
