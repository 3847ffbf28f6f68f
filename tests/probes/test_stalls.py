"""Which hosts the gate sweeps (probes/stalls.py): every host whose handshake stalled, a pull's
redirect host included, as the agent names it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from probes import STALLS_PATH, agent
from probes.stalls import stalled_targets

STALL = "tls_handshake_timeout"


def http(host: str, error_class: str | None = STALL, port: int | None = None, remote_ip: str | None = None) -> dict:
    where = f"{host}:{port}" if port else host
    return {"kind": "http", "target": f"https://{where}/v2/", "ok": error_class is None, "error_class": error_class, "remote_ip": remote_ip}


def pull(host: str, port: int = 443, fallbacks: list[dict] | None = None, error_class: str = STALL) -> dict:
    error = str(agent.handshake_failure(TimeoutError(), host, 1000.0)) if error_class == STALL else f"HTTP 503 for layer at {host}"
    return {"kind": "pull", "target": "ghcr.io/netstab/app:1", "ok": False, "error_class": error_class, "error": error,
            "remote_ip": "203.0.113.30", "remote_port": port, "fallbacks": fallbacks or []}


def docs(*records: dict) -> list[dict]:
    return [{"schema": "netstab.probe/v1", "records": list(records)}]


def test_the_agents_own_words_name_the_stalled_host_of_a_pull():
    """The contract with probes/agent.py: its handshake-timeout message is what names a blob host."""
    assert stalled_targets(docs(pull("pkg-containers.githubusercontent.com")), 4) == ["pkg-containers.githubusercontent.com:443"]


def test_a_pulls_redirect_host_is_swept_at_its_port_and_an_endpoint_at_its_own():
    found = stalled_targets(docs(http("ghcr.io"), http("quay.io", None), http("registry.k8s.io", port=8443), pull("blobs.example.net", 9443)), 4)
    assert found == ["ghcr.io:443", "registry.k8s.io:8443", "blobs.example.net:9443"]


def test_a_mirror_pull_that_fell_back_names_every_endpoint_that_stalled():
    """A stall at the mirror's endpoint, then one upstream at the blob host: both are in the record."""
    mirror_try = {"endpoint": "https://10.27.27.5:5001", "role": "mirror", "error_class": STALL,
                  "error": str(agent.handshake_failure(TimeoutError(), "10.27.27.5", 1000.0))}
    record = pull("blobs.example.net", 443)
    record["fallbacks"] = [mirror_try, {"endpoint": "https://ghcr.io", "role": "upstream", "error_class": STALL, "error": record["error"]}]
    assert stalled_targets(docs(record), 4) == ["10.27.27.5:5001", "blobs.example.net:443"]


def test_each_host_once_in_the_order_met_and_at_most_the_limit():
    records = [http("a.example"), http("a.example"), pull("b.example"), http("c.example"), http("d.example")]
    assert stalled_targets(docs(*records), 3) == ["a.example:443", "b.example:443", "c.example:443"]
    assert stalled_targets(docs(*records), 4) == ["a.example:443", "b.example:443", "c.example:443", "d.example:443"]
    assert stalled_targets(docs(*records), 0) == []


def test_names_that_share_an_address_and_port_are_swept_once():
    """ghcr.io and quay.io at one address share its path; the blob host at that address on another
    port, and a host at another address, are swept; a pull's fallback stall without an address is too."""
    records = [http("ghcr.io", remote_ip="203.0.113.10"), http("quay.io", remote_ip="203.0.113.10"),
               http("registry.k8s.io", port=8443, remote_ip="203.0.113.10"), pull("blobs.example.net"),
               pull("cdn.example.net")]  # both pulls' failures at 203.0.113.30
    assert stalled_targets(docs(*records), 8) == ["ghcr.io:443", "registry.k8s.io:8443", "blobs.example.net:443"]


@pytest.mark.parametrize("record", [http("ghcr.io", "connect_timeout"), http("ghcr.io", "tls_certificate"),
                                    pull("ghcr.io", error_class="http_status"), http("ghcr.io", None)],
                         ids=["connect_timeout", "certificate", "pull_5xx", "ok"])
def test_only_a_stalled_handshake_is_swept(record):
    assert stalled_targets(docs(record), 4) == []


@pytest.mark.parametrize("host", ["-x", "a b", "a;rm", "$(id)"], ids=["option", "space", "semicolon", "substitution"])
def test_a_host_an_argument_parser_or_a_shell_could_misread_is_not_swept(host):
    record = pull("x")
    record["error"] = record["error"].replace("with x did", f"with {host} did")
    assert stalled_targets(docs(record, http("ghcr.io")), 4) == ["ghcr.io:443"]


def test_an_ipv6_host_is_bracketed():
    assert stalled_targets(docs(http("[2001:db8::1]")), 4) == ["[2001:db8::1]:443"]


def test_as_a_script_it_skips_documents_that_are_missing_or_broken(tmp_path):
    good = tmp_path / "http.json"
    good.write_text(json.dumps(docs(http("ghcr.io"))[0]))
    broken = tmp_path / "pull-direct.json"
    broken.write_text('{"schema": "netstab.probe/v1", "rec')
    with open(STALLS_PATH) as source:
        done = subprocess.run([sys.executable, "-", "4", str(broken), str(tmp_path / "absent.json"), str(good)], stdin=source,
                              capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ghcr.io:443\n", "")


def test_it_runs_where_the_agent_runs_standard_library_and_python_3_8():
    import ast

    source = STALLS_PATH.read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    modules = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)
