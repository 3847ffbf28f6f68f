"""Pieces of the rendered remote steps run for real: the bounded cloud-init wait against stand-in
`cloud-init` programs, the server token check against a token file, and the mirror health check's
reading of a real docker-registry's log, alone and in the whole health script."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
from pathlib import Path

import pytest

from components.render.k3s import (
    AGENT_DIR,
    HOST_KEY_FILE,
    NODE_PASSWORD_FILE,
    SERVER_TOKEN_FILE,
    SERVER_TOKEN_MATCHES,
    STAMP_DIR,
    agent_install_script,
    cloud_init_wait,
    cloud_init_wait_script,
    server_install_script,
)
from components.render.mirror import health_script, upstream_unreachable_check
from tests.real.conftest import free_port


def _fake_cloud_init(tmp_path: Path, body: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "cloud-init").write_text(f"#!/bin/sh\n{body}\n")
    (bin_dir / "cloud-init").chmod(0o755)
    return f"{bin_dir}:/usr/bin:/bin"


@pytest.mark.parametrize("body,outcome", [("exit 0", "done"), ("exit 2", "degraded"), ("exit 1", "failed"), ("sleep 30", "timeout")],
                         ids=["done", "degraded", "failed", "hangs"])
def test_the_cloud_init_wait_is_bounded_and_names_the_outcome(tmp_path, body, outcome):
    script = cloud_init_wait(timeout_s=1) + 'echo "$cloud_init"\n'
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=20,
                          env={"PATH": _fake_cloud_init(tmp_path, body)})
    assert done.stdout.strip() == outcome


# What 26.1 reports after a user-data that failed its schema (cloudinit/config/schema.py, cmd/status.py).
SCHEMA_WARNING = ("cloud-config failed schema validation! You may run 'sudo cloud-init schema --system' to\n"
                  "check the details.")
DEGRADED_JSON = json.dumps({"status": "done", "extended_status": "degraded done", "errors": [],
                            "recoverable_errors": {"WARNING": [SCHEMA_WARNING], "DEPRECATED": ["Key 'ssh_genkeytypes' is odd"]}})
# A stand-in `cloud-init`: `status --wait` runs $WAIT; `status --format json` and `status --long` print
# the files beside it.
STAND_IN = """case "$*" in
  *--wait*) eval "$WAIT" ;;
  *json*) cat "$STATUS/json" ;;
  *--long*) cat "$STATUS/long" ;;
  *) exit 9 ;;
esac"""


@pytest.mark.parametrize("wait,json_out,extended,rc,said", [
    ("exit 0", "{}", "done", 0, ["netstab: cloud-init finished on"]),
    ("exit 2", DEGRADED_JSON, "degraded done", 1,
     ["recoverable errors", "  DEPRECATED: Key 'ssh_genkeytypes' is odd",
      "  WARNING: cloud-config failed schema validation! You may run 'sudo cloud-init schema --system' to check the details."]),
    ("exit 2", "not json", "degraded done", 1, ["recoverable errors", "extended_status: degraded done"]),
    ("exit 1", "{}", "error", 1, ["cloud-init failed on", "(exit 1)", "extended_status: error"]),
    ("sleep 30", "{}", "running", 1, ["still running on", "after 1s", "extended_status: running"]),
], ids=["done", "degraded_names_its_warnings", "degraded_without_json_shows_the_long_status", "error", "still_running"])
def test_the_cloud_init_wait_step_goes_on_only_when_done_and_says_why_not(tmp_path, wait, json_out, extended, rc, said):
    """The step as the cluster runs it (k3s/cloud-init-wait.sh), against a stand-in `cloud-init`: a degraded
    boot (exit 2, e.g. a user-data that failed the schema) stops the deploy and names the warnings."""
    (tmp_path / "json").write_text(json_out + "\n")
    (tmp_path / "long").write_text(f"status: done\nextended_status: {extended}\n")
    done = subprocess.run(["sh", "-c", cloud_init_wait_script(timeout_s=1)], capture_output=True, text=True, timeout=20,
                          env={"PATH": _fake_cloud_init(tmp_path, STAND_IN), "WAIT": wait, "STATUS": str(tmp_path)})
    out = done.stdout + done.stderr
    assert done.returncode == rc, out
    for line in said:
        assert line in out, out
    assert (rc == 0) == ("finished on" in done.stdout), out


HELD = "K10" + "ab" * 32 + "::server:s3cret-value"


@pytest.mark.parametrize("given,accepted", [("s3cret-value", True), (HELD, True), ("other-value", False),
                                            ("K10" + "cd" * 32 + "::server:s3cret-value", False)],
                         ids=["bare", "full_k10_form", "another_secret", "another_ca"])
def test_a_server_refuses_a_token_it_does_not_hold_in_either_form(tmp_path, given, accepted):
    token_file = tmp_path / "token"
    token_file.write_text(HELD + "\n")
    script = SERVER_TOKEN_MATCHES.replace(SERVER_TOKEN_FILE, str(token_file)) + "echo went-on\n"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10,
                          env={"PATH": "/usr/bin:/bin", "K3S_TOKEN": given})
    assert (done.returncode == 0 and "went-on" in done.stdout) is accepted, done.stderr
    assert accepted or "cannot change in place" in done.stderr


def test_a_server_without_a_token_file_yet_takes_the_token(tmp_path):
    script = SERVER_TOKEN_MATCHES.replace(SERVER_TOKEN_FILE, str(tmp_path / "absent")) + "echo went-on\n"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10,
                          env={"PATH": "/usr/bin:/bin", "K3S_TOKEN": "anything"})
    assert done.returncode == 0 and "went-on" in done.stdout


def _registry_log(tmp_path: Path, config: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(config)
    try:
        done = subprocess.run(["docker-registry", "serve", str(path)], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"docker-registry kept running with {config!r}") from exc
    return done.stdout + done.stderr


def _reads_as_upstream_unreachable(log: str) -> bool:
    script = upstream_unreachable_check() + "upstream_unreachable\n"
    return subprocess.run(["sh", "-c", script], input=log, text=True, timeout=10).returncode == 0


BASE = "version: 0.1\nhttp: {{addr: 127.0.0.1:{port}}}\n"


def test_an_unreachable_upstream_is_a_warning_and_a_broken_config_is_a_failure(tmp_path):
    port = free_port()
    storage = f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
    refused = _registry_log(tmp_path, BASE.format(port=port) + storage + f"proxy: {{remoteurl: 'https://127.0.0.1:{free_port()}'}}\n")
    bad_driver = _registry_log(tmp_path, BASE.format(port=port) + "storage: {nosuchdriver: {}}\n")
    bad_yaml = _registry_log(tmp_path, "version: 0.1\nstorage: [\n")
    assert "connection refused" in refused, refused[-500:]
    assert _reads_as_upstream_unreachable(refused)
    assert not _reads_as_upstream_unreachable(bad_driver), bad_driver[-500:]
    assert not _reads_as_upstream_unreachable(bad_yaml), bad_yaml[-500:]


STAND_INS = {
    "cloud-init": "exit 0",
    # only the docker.io instance (:5001) serves; every other try is logged with its URL
    "curl": 'case "$*" in *:5001/v2/*) exit 0;; esac; echo "$*" >> "$CALLS"; exit 7',
    "sleep": "exec /bin/sleep 0.01",
    "systemctl": 'case "$*" in *SubState*) echo auto-restart;; *) echo activating;; esac',
    "journalctl": 'case "$*" in *quay.io*) cat "$LOGS/broken";; *) cat "$LOGS/unreachable";; esac',
}


def test_the_health_check_checks_every_instance_at_once_and_reports_each_in_order(tmp_path, homelab):
    """docker.io serves; ghcr.io and registry.k8s.io cannot reach their upstreams (a warning); quay.io's
    storage is broken (a failure). The logs are a real docker-registry's."""
    bin_dir, logs, scratch = tmp_path / "bin", tmp_path / "logs", tmp_path / "tmp"
    for directory in (bin_dir, logs, scratch):
        directory.mkdir()
    for name, body in STAND_INS.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    port = free_port()
    storage = f"storage: {{filesystem: {{rootdirectory: {tmp_path / 'data'}}}}}\n"
    (logs / "unreachable").write_text(_registry_log(tmp_path, BASE.format(port=port) + storage
                                                    + f"proxy: {{remoteurl: 'https://127.0.0.1:{free_port()}'}}\n"))
    (logs / "broken").write_text(_registry_log(tmp_path, BASE.format(port=port) + "storage: {nosuchdriver: {}}\n"))
    calls = tmp_path / "calls"
    done = subprocess.run(["sh", "-c", health_script(homelab.mirror)], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), "LOGS": str(logs), "TMPDIR": str(scratch)})
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "mirror: docker.io serving at http://10.27.27.5:5001",
        "mirror: WARNING ghcr.io is not serving (auto-restart): its upstream is unreachable; pulls fall back upstream until it serves",
        "mirror: WARNING registry.k8s.io is not serving (auto-restart): its upstream is unreachable; pulls fall back upstream until it serves"]
    assert done.stderr.startswith("mirror: FAILED quay.io: netstab-registry@quay.io.service is activating/auto-restart "
                                  "and not because of its upstream:\n")
    assert "nosuchdriver" in done.stderr
    ports = [line.split("/v2/")[0].rsplit(":", 1)[1] for line in calls.read_text().splitlines()]
    assert sorted(set(ports)) == ["5002", "5003", "5004"] and len(ports) == 3 * 30
    switches = sum(a != b for a, b in itertools.pairwise(ports))
    assert switches > 2, "the three failing instances were tried one after another, not at once"
    assert list(scratch.iterdir()) == [], "the per-instance output files are removed"


INSTALLER_STAND_INS = {
    # the service is active once an install ran, until the test stops it
    "systemctl": 'case "$1" in is-active) [ -f "$STATE/active" ];; *) exit 0;; esac',
    # /cacerts answers with $STATE/served-ca; the download hands over a stand-in installer that records how it was invoked
    "curl": """for arg in "$@"; do case "$arg" in http*) url=$arg;; esac; done
while [ $# -gt 1 ]; do [ "$1" = -o ] && out=$2; shift; done
case "$url" in */cacerts) [ -f "$STATE/served-ca" ] || exit 7; cat "$STATE/served-ca" > "$out"; exit 0;; esac
cat > "$out" <<'INSTALLER'
printf '%s token=%s url=%s args=%s\\n' "$INSTALL_K3S_VERSION" "$K3S_TOKEN" "${K3S_URL:-}" "$*" >> "$STATE/installs"
touch "$STATE/active"
INSTALLER""",
}


def _run_install(tmp_path: Path, script: str, token: str) -> subprocess.CompletedProcess[str]:
    """Run an install script against the stand-ins with the token on stdin; every node path is under tmp_path/state."""
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    for name, body in INSTALLER_STAND_INS.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    if not (state / "host-key").exists():
        (state / "host-key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nstand-in host key\n-----END OPENSSH PRIVATE KEY-----\n")
    for real, stand_in in ((STAMP_DIR, state / "stamps"), (NODE_PASSWORD_FILE, state / "node-password"),
                           (SERVER_TOKEN_FILE, state / "server-token"), (AGENT_DIR, state / "agent"), (HOST_KEY_FILE, state / "host-key")):
        script = script.replace(real, str(stand_in))
    assert "/var/lib/rancher" not in script, "the test must not touch this machine's K3s paths"
    return subprocess.run(["sh", "-c", script], input=token, capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE": str(state)})


def _install_runs(tmp_path: Path, script: str, token: str) -> list[str]:
    """Run an install script; return every install so far."""
    done = _run_install(tmp_path, script, token)
    assert done.returncode == 0, done.stderr
    installs = tmp_path / "state" / "installs"
    return installs.read_text().splitlines() if installs.exists() else []


def test_the_install_re_runs_exactly_when_its_invocation_or_token_changes(tmp_path, homelab_raw):
    """The K3s install script, run for real: the installer runs on the first apply, not on the same
    one again, and again on a new version, a new flag or a new token, or when the service is down."""
    from components.config import parse_config

    def agent_script(**k3s: str) -> str:
        raw = {**homelab_raw, "k3s": {**homelab_raw["k3s"], **k3s}}
        config = parse_config(raw)
        return agent_install_script(config, config.nodes[1])

    first = agent_script()
    assert len(_install_runs(tmp_path, first, "token-one")) == 1
    assert len(_install_runs(tmp_path, first, "token-one")) == 1, "the same invocation is not installed again"
    newer = agent_script(version="v1.34.1+k3s1")
    assert _install_runs(tmp_path, newer, "token-one")[-1].startswith("v1.34.1+k3s1 token=token-one url=https://10.27.27.11:6443 args=agent")
    assert len(_install_runs(tmp_path, newer, "token-two")) == 3, "a new token is applied"
    (tmp_path / "state" / "active").unlink()
    assert len(_install_runs(tmp_path, newer, "token-two")) == 4, "a stopped service is installed again"
    assert len(_install_runs(tmp_path, newer, "token-two")) == 4
    assert "token-" not in newer, "the token is never in the command text"


def test_a_new_server_address_re_applies_the_server_install_with_its_flags(tmp_path, homelab_raw):
    from components.config import parse_config

    moved = {**homelab_raw, "nodes": [{**homelab_raw["nodes"][0], "ip": "10.27.27.12"}, *homelab_raw["nodes"][1:]]}
    before, after = server_install_script(parse_config(homelab_raw)), server_install_script(parse_config(moved))
    assert len(_install_runs(tmp_path, before, "token-one")) == 1
    assert len(_install_runs(tmp_path, before, "token-one")) == 1
    installs = _install_runs(tmp_path, after, "token-one")
    assert len(installs) == 2 and "--node-ip 10.27.27.12" in installs[-1] and "--tls-san 10.27.27.12" in installs[-1]


def _ca(name: str) -> str:
    return f"-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"


def _k10(ca: str) -> str:
    return f"K10{hashlib.sha256(ca.encode()).hexdigest()}::server:s3cret"


@pytest.fixture
def rebuilt_server(tmp_path, homelab):
    """An agent that joined the cluster whose CA is `old`, and a server now answering with `new`."""
    agent = tmp_path / "state" / "agent"
    agent.mkdir(parents=True)
    (agent / "server-ca.crt").write_text(_ca("old"))
    (tmp_path / "state" / "served-ca").write_text(_ca("new"))
    return agent_install_script(homelab, homelab.nodes[1]), agent


def test_an_agent_refuses_a_new_server_ca_that_its_k10_token_does_not_pin(tmp_path, rebuilt_server):
    script, agent = rebuilt_server
    done = _run_install(tmp_path, script, _k10(_ca("old")))
    assert done.returncode == 1 and "presents a cluster CA that does not match netstab:k3sToken's CA hash" in done.stderr
    assert (agent / "server-ca.crt").exists(), "the agent keeps its cluster"
    assert not (tmp_path / "state" / "installs").exists()


def test_an_agent_rejoins_a_rebuilt_server_whose_ca_its_k10_token_pins(tmp_path, rebuilt_server):
    script, agent = rebuilt_server
    assert len(_install_runs(tmp_path, script, _k10(_ca("new")))) == 1
    assert not (agent / "server-ca.crt").exists(), "its old cluster state is gone, so it rejoins"


def test_with_a_bare_token_an_agent_follows_any_new_server_ca(tmp_path, rebuilt_server):
    """The documented limit of a bare token (docs/trust.md): nothing pins the CA."""
    script, agent = rebuilt_server
    assert len(_install_runs(tmp_path, script, "s3cret")) == 1
    assert not (agent / "server-ca.crt").exists()


OLD_PASSWORD = """printf 'netstab-node-password %s %s' worker1 "$K3S_TOKEN" | sha256sum"""  # before issue 22: from the token


@pytest.mark.parametrize("derivation", ["host key", "token (before issue 22)"])
def test_a_rebuilt_agent_presents_the_same_node_password_after_a_token_rotation(tmp_path, homelab, derivation):
    """The server keeps the password a node first joined with; a rebuilt VM (no password file) must present it again."""
    script = agent_install_script(homelab, homelab.nodes[1])
    if derivation != "host key":
        script = script.replace("""printf 'netstab-node-password %s %s' worker1 "$seed" | sha256sum""", OLD_PASSWORD)
        assert OLD_PASSWORD in script
    password = tmp_path / "state" / "node-password"
    assert len(_install_runs(tmp_path, script, "token-one")) == 1
    joined = password.read_text()
    password.unlink()  # the VM is rebuilt: the same host key (from its user-data), no password file
    assert len(_install_runs(tmp_path, script, "token-rotated")) == 2
    assert (password.read_text() == joined) is (derivation == "host key")
    assert len(joined.strip()) == 32 and "token" not in joined


def test_without_a_host_key_the_install_stops_before_it_invents_a_password(tmp_path, homelab):
    script = agent_install_script(homelab, homelab.nodes[1])
    done = _run_install(tmp_path, script.replace(HOST_KEY_FILE, str(tmp_path / "state" / "absent-key")), "token-one")
    assert done.returncode == 1 and "has no SSH host key" in done.stderr
    assert not (tmp_path / "state" / "node-password").exists()
