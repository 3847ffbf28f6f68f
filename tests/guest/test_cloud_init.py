"""What only a boot shows about the rendered seed: cloud-init finished clean, the user and its keys,
and the packages it asked for installed with no way out of the lab."""

from __future__ import annotations

import re

from lab.guest_image import REPO_ONLY

# cloud-init.log's format (its 05_logging.cfg): "<time> - <file>[<LEVEL>]: <message>"
PROBLEM = re.compile(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback")


def test_cloud_init_finished_with_no_warning_or_error(guest):
    status = guest.sh("cloud-init status --long")
    assert "status: done" in status["out-data"], status
    log = guest.sh("cat /var/log/cloud-init.log")["out-data"]
    assert "finished at" in guest.sh("cat /var/log/cloud-init-output.log")["out-data"]
    problems = [line for line in log.splitlines() if PROBLEM.search(line)]
    assert problems == [], "cloud-init logged:\n" + "\n".join(problems[:10])


def test_the_user_data_passes_cloud_inits_own_schema_in_the_guest(guest):
    schema = guest.sh("cloud-init schema --system")
    assert schema["exitcode"] == 0, schema.get("out-data", "") + schema.get("err-data", "")
    assert "Valid cloud-config: system userdata" in schema["out-data"]


def test_the_user_exists_with_only_the_stacks_keys(guest):
    user = guest.config.ssh.user
    passwd = guest.sh(f"getent passwd {user}")["out-data"].strip().split(":")
    assert passwd[0] == user and passwd[6] == "/bin/bash" and passwd[5] == f"/home/{user}"
    assert "sudo" in guest.sh(f"id -nG {user}")["out-data"].split()
    keys = guest.sh(f"cat /home/{user}/.ssh/authorized_keys")["out-data"]
    lines = [line for line in keys.splitlines() if line.strip() and not line.startswith("#")]
    assert lines == list(guest.config.ssh.public_keys)
    assert guest.sh(f"passwd -S {user}")["out-data"].split()[1] == "L", "the password is locked"


def test_the_packages_it_asked_for_came_from_the_gateway_with_no_internet(guest):
    """curl is in the offline repository only: cloud-init's package_update and packages fetched it
    through the VM subnet from the gateway's repository."""
    for package in REPO_ONLY:
        installed = guest.sh(f"dpkg-query -W -f '${{Status}}' {package}")["out-data"]
        assert installed == "install ok installed", package
        assert re.search(rf'"GET /(\./)?{package}_[^ ]+\.deb HTTP/1\.1" 200', guest.repo_log.read_text()), f"{package} was not fetched from the gateway"
    assert re.search(r'"GET /(\./)?Packages HTTP/1\.1" 200', guest.repo_log.read_text()), "package_update did not read the gateway's index"
    history = guest.sh("cat /var/log/apt/history.log")["out-data"]
    assert "Commandline: apt-get --option=Dpkg::Options::=--force-confold" in history and "curl" in history
