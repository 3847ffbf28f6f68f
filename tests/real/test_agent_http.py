"""`agent.py http` against servers on loopback that the tests start, each fault named by its class."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.servers import serve_in_thread
from tests.real.conftest import AGENT, agent, free_port


@pytest.fixture(scope="module")
def servers(localhost_cert):
    started = {mode: serve_in_thread(mode, localhost_cert.cert, localhost_cert.key) for mode in ("normal", "silent", "stall")}
    yield {mode: f"https://localhost:{s.server_address[1]}" for mode, s in started.items()}
    for s in started.values():
        s.shutdown()



def test_a_healthy_server_is_measured_phase_by_phase(servers, localhost_cert):
    rc, doc = agent("http", servers["normal"] + "/", "--ca-file", str(localhost_cert.ca), "--repeat", "3")
    assert rc == 0
    assert doc["schema"] == "netstab.probe/v1"
    for rec in doc["records"]:
        assert rec["ok"] and rec["status"] == 200 and rec["remote_ip"] == "127.0.0.1"
        assert set(rec["phases_ms"]) == {"dns", "connect", "tls", "ttfb", "total"}
        assert rec["tls_version"] in ("TLSv1.2", "TLSv1.3")
        assert rec["phases_ms"]["total"] >= rec["phases_ms"]["tls"]
    assert [r["attempt"] for r in doc["records"]] == [1, 2, 3]


def test_a_registry_401_on_v2_counts_as_reachable_unless_told_otherwise(servers, localhost_cert):
    rc, doc = agent("http", servers["normal"] + "/v2/", "--ca-file", str(localhost_cert.ca))
    assert rc == 0 and doc["records"][0]["status"] == 401
    rc, doc = agent("http", servers["normal"] + "/v2/", "--ca-file", str(localhost_cert.ca), "--expect", "200")
    assert rc == 1 and doc["records"][0]["error_class"] == "http_status"


def test_a_server_that_never_answers_the_hello_is_a_tls_handshake_timeout(servers, localhost_cert):
    rc, doc = agent("http", servers["silent"] + "/", "--ca-file", str(localhost_cert.ca), "--timeout", "1")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "tls_handshake_timeout"
    assert "connect" in rec["phases_ms"], "TCP connect succeeded and must be on record"
    assert "retransmits" in rec["kernel"] and "pmtu" in rec["kernel"]


def test_a_server_that_stalls_before_the_response_is_a_read_timeout(servers, localhost_cert):
    rc, doc = agent("http", servers["stall"] + "/", "--ca-file", str(localhost_cert.ca), "--timeout", "1")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "read_timeout" and "tls" in rec["phases_ms"]


def test_a_closed_port_is_connect_refused():
    rc, doc = agent("http", f"https://127.0.0.1:{free_port()}/", "--timeout", "2")
    assert rc == 1 and doc["records"][0]["error_class"] == "connect_refused"


def test_an_untrusted_certificate_is_a_tls_certificate_failure_until_its_ca_is_given(servers, localhost_cert):
    rc, doc = agent("http", servers["normal"] + "/")
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_certificate"
    assert "tls" not in doc["records"][0]["phases_ms"] and "connect" in doc["records"][0]["phases_ms"]
    rc, doc = agent("http", servers["normal"] + "/", "--ca-file", str(localhost_cert.ca))
    assert rc == 0


def test_resolve_pins_a_name_to_an_address(servers, localhost_cert):
    port = servers["normal"].rsplit(":", 1)[1]
    rc, doc = agent("http", f"https://registry.lab.test:{port}/v2/", "--resolve", f"registry.lab.test:{port}:127.0.0.1",
                    "--ca-file", str(localhost_cert.ca))
    rec = doc["records"][0]
    assert rc == 0 and rec["remote_ip"] == "127.0.0.1" and rec["phases_ms"]["dns"] == 0.0


def test_header_values_that_are_secrets_never_reach_the_output(servers, localhost_cert):
    secret = "dp.st.prd.NeverPrintThis123"
    argv = [sys.executable, str(AGENT), "http", servers["normal"] + "/v3/projects", "--ca-file", str(localhost_cert.ca),
            "--header", f"Authorization: Bearer {secret}", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert secret not in done.stdout + done.stderr
    assert "Authorization: <redacted>" in json.loads(done.stdout)["argv"]


def test_concurrency_and_repeat_cover_every_target_and_round(servers, localhost_cert):
    urls = [servers["normal"] + p for p in ("/a", "/b", "/v2/")]
    rc, doc = agent("http", *urls, "--ca-file", str(localhost_cert.ca), "--repeat", "4", "--concurrency", "3")
    assert rc == 0 and len(doc["records"]) == 12
    assert {(r["target"], r["attempt"]) for r in doc["records"]} == {(u, n) for u in urls for n in range(1, 5)}
    assert {s["target"] for s in doc["summary"]} == set(urls)


def test_the_agent_runs_from_stdin_on_the_system_python(servers, localhost_cert):
    """How the components run it on a node: `python3 - ARGS < agent.py`, no packages."""
    with open(AGENT) as source:
        done = subprocess.run(["/usr/bin/python3", "-", "http", servers["normal"] + "/", "--ca-file", str(localhost_cert.ca), "--json"],
                              stdin=source, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"][0]["ok"]


def test_the_table_shows_ratio_and_percentiles(servers, localhost_cert):
    done = subprocess.run([sys.executable, str(AGENT), "http", servers["normal"] + "/", "--ca-file", str(localhost_cert.ca), "--repeat", "2"],
                          capture_output=True, text=True, timeout=60)
    assert "2/2" in done.stdout and "p50" in done.stdout and "p95" in done.stdout


def test_bad_usage_exits_2():
    for argv in (["http"], ["http", "https://x/", "--repeat", "0"], ["http", "https://x/", "--resolve", "nonsense"], []):
        done = subprocess.run([sys.executable, str(AGENT), *argv], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, argv


def test_ctrl_c_prints_what_was_measured_so_far(servers, localhost_cert):
    proc = subprocess.Popen([sys.executable, str(AGENT), "http", servers["silent"] + "/", servers["normal"] + "/",
                             "--ca-file", str(localhost_cert.ca), "--repeat", "50", "--timeout", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    doc = json.loads(out)
    assert proc.returncode == 130 and doc["interrupted"]
    assert 0 < len(doc["records"]) < 100


def test_the_big_hello_does_not_fit_one_1400_mtu_segment():
    """The first TLS record's length is read by a raw listener: small hello vs --big-hello."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    lengths: list[int] = []

    def accept(n: int) -> None:
        for _ in range(n):
            conn, _ = listener.accept()
            conn.settimeout(5)
            head = b""
            while len(head) < 5:
                head += conn.recv(5 - len(head))
            lengths.append(int.from_bytes(head[3:5], "big"))
            conn.close()

    thread = threading.Thread(target=accept, args=(2,))
    thread.start()
    port = listener.getsockname()[1]
    agent("http", f"https://127.0.0.1:{port}/", "--timeout", "2")
    agent("http", f"https://127.0.0.1:{port}/", "--timeout", "2", "--big-hello")
    thread.join(10)
    listener.close()
    small, big = lengths
    assert small < 1360 < big, lengths


def test_facts_report_interfaces_routes_resolvers_and_mtu_probing():
    done = subprocess.run([sys.executable, str(AGENT), "facts"], capture_output=True, text=True, timeout=30)
    facts = json.loads(done.stdout)["host"]
    lo = next(i for i in facts["interfaces"] if i["name"] == "lo")
    assert lo["mtu"] == int(Path("/sys/class/net/lo/mtu").read_text())
    assert isinstance(facts["resolvers"], list) and isinstance(facts["default_routes"], list)
    assert facts["tcp_mtu_probing"] in (0, 1, 2)
    assert facts["hostname"] == socket.gethostname()


def test_progress_goes_to_stderr_on_long_runs(servers, localhost_cert):
    done = subprocess.run([sys.executable, str(AGENT), "http", servers["silent"] + "/", "--ca-file", str(localhost_cert.ca),
                           "--repeat", "5", "--timeout", "1"], capture_output=True, text=True, timeout=60, env={**os.environ})
    assert "netstab-probe: [" in done.stderr and "tls_handshake_timeout" in done.stderr


def _go_like_server(cert) -> tuple[socket.socket, threading.Thread]:
    """A TLS server that prefers h2 as Go's net/http does, and speaks it when picked: an HTTP/2
    SETTINGS frame where an HTTP/1.1 client expects a status line."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert.cert), str(cert.key))
    context.set_alpn_protocols(["h2", "http/1.1"])
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(4):
            try:
                conn, _ = listener.accept()
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    if tls.selected_alpn_protocol() == "h2":
                        tls.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
                    else:
                        tls.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_the_big_hello_speaks_http_1_1_to_a_server_that_prefers_h2(localhost_cert):
    """A Go registry picks h2 whenever the client offers it; the probe speaks HTTP/1.1, so it must not offer it."""
    listener, _ = _go_like_server(localhost_cert)
    try:
        code, doc = agent("http", f"https://localhost:{listener.getsockname()[1]}/v2/", "--big-hello", "--ca-file", str(localhost_cert.ca))
    finally:
        listener.close()
    assert code == 0, doc["records"][0]["error"]
    assert doc["records"][0]["status"] == 401


def test_a_resent_syn_does_not_stretch_the_handshake_bound():
    """A connect that took 1.03 s (a SYN resent) on a path whose round trip is sub-millisecond: the
    bound follows the kernel's RTT estimate, so a stall is still called within the floor."""
    sys.path.insert(0, str(AGENT.parent))
    import agent as probe_agent  # noqa: E402 (the stdlib agent, imported as a module)

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    try:
        assert probe_agent.round_trip_s(client, connect_s=1.03) < 0.1
        assert probe_agent.handshake_timeout(probe_agent.round_trip_s(client, 1.03), ceiling=10.0) == probe_agent.HANDSHAKE_FLOOR_S
    finally:
        client.close()
        listener.close()
