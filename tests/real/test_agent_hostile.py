"""The agent against hostile peers on 127.0.0.1 and hostile command lines: a deadline per attempt,
bodies that stream, a failure class for every broken response, exit 2 with one line for every
usage error, and no secret in the evidence whatever its spelling. And the sweep against loopback
peers: why an unreachable target is unreachable, a certificate error that still sizes, a single
stalled default handshake that is noise. Every peer gives up by itself
(agent_peers.HOLD_S) and every agent run is bounded by its subprocess timeout."""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.real.agent_peers import Peer, answer, drip, read_request, send_file_like, serve_tls
from tests.real.conftest import AGENT, agent, free_port
from tests.real.fake_registry import FakeRegistry


@pytest.fixture
def peer():
    made: list[Peer] = []

    def make(handler, cert=None) -> Peer:
        made.append(Peer(handler, cert))
        return made[-1]

    yield make
    for p in made:
        p.close()


def run(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(AGENT), *argv], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- a deadline per attempt


def drip_headers(conn: socket.socket, peer: Peer, n: int) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    drip(conn, peer, b"X-Drip: " + b"x" * 60 + b"\r\nContent-Length: 0\r\n\r\n")


def drip_body(conn: socket.socket, peer: Peer, n: int) -> None:
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 80\r\n\r\n")
    drip(conn, peer, b"x" * 80)


@pytest.mark.parametrize("handler", [drip_headers, drip_body], ids=["headers", "body"])
def test_a_drip_fed_response_is_a_read_timeout_at_the_deadline(peer, handler):
    p = peer(handler)
    rc, doc = agent("http", p.url(), "--timeout", "1.5")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "read_timeout", rec
    assert rec["error"].endswith("within the 1.5s deadline")


def test_a_large_body_streams_instead_of_piling_up_in_memory(peer):
    size = 48 << 20

    def big(conn: socket.socket, peer: Peer, n: int) -> None:
        read_request(conn)
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        send_file_like(conn, size)

    p = peer(big)
    # the agent is the wrapper's only child, so the children's peak RSS is the agent's
    wrapper = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], capture_output=True); "
               "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.stdout.buffer.write(done.stdout)")
    done = subprocess.run([sys.executable, "-c", wrapper, sys.executable, str(AGENT), "http", p.url(), "--json", "--quiet"],
                          capture_output=True, text=True, timeout=60)
    rec = json.loads(done.stdout)["records"][0]
    peak_kib = int(done.stderr)
    assert rec["ok"] and rec["bytes"] == size
    assert peak_kib < size >> 10, f"peak RSS {peak_kib} KiB for a {size >> 20} MiB body"


# ---------------------------------------------------------------- a class for every broken peer


def respond_with(raw: bytes):
    def handler(conn: socket.socket, peer: Peer, n: int) -> None:
        read_request(conn)
        conn.sendall(raw)

    return handler


@pytest.mark.parametrize(
    "raw,words",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello", "Content-Length 'abc' is not one number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello", "is not one number"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello", "closed 95 bytes before the end of the body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello", "ended inside its chunked body"),
        (b"HTTP/1.1 200 OK\r\nX-Cut: ", "ended inside its headers"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "did not answer HTTP"),
        (b"", "closed the connection before any response"),
    ],
    ids=["chunk-size", "length-abc", "two-lengths", "short-body", "short-chunk", "cut-headers", "not-http", "closed"],
)
def test_a_broken_response_is_a_bad_response_not_a_traceback(peer, raw, words):
    p = peer(respond_with(raw))
    rc, doc = agent("http", p.url(), "--timeout", "5")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "bad_response" and words in rec["error"], rec


def pull_with_blobs_at(tmp_path: Path, blob_host: str) -> tuple[int, dict]:
    """A pull whose registry redirects every blob to `blob_host`."""
    from lab.images import write_layout

    write_layout(tmp_path / "layout", "v1")
    fake = FakeRegistry(tmp_path / "layout", "team/app", "v1", blob_host=blob_host)
    try:
        host = fake.url.split("//")[1]
        return agent("pull", f"{host}/team/app:v1", "--plain-http", host, "--platform", "linux/amd64", "--timeout", "5")
    finally:
        fake.close()


def test_a_broken_blob_host_fails_the_pull_with_a_class(tmp_path, peer):
    broken = peer(respond_with(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"))
    rc, doc = pull_with_blobs_at(tmp_path, f"127.0.0.1:{broken.port}")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "bad_response" and "bad chunk size" in rec["error"]


def test_a_redirect_to_an_unusable_url_fails_the_pull_with_a_class(tmp_path):
    rc, doc = pull_with_blobs_at(tmp_path, "127.0.0.1:99999")
    rec = doc["records"][0]
    assert rc == 1 and rec["error_class"] == "registry_error"
    assert rec["error"] == "config redirected to an unusable URL: Port out of range 0-65535"


# ---------------------------------------------------------------- a hostile registry

Reply = bytes | Callable[[socket.socket, Peer], None]
CONFIG = "sha256:" + "0" * 64
INDEX = "application/vnd.oci.image.index.v1+json"


def scripted_registry(routes: dict[str, Reply]):
    """A registry whose answers are scripted: the first route whose prefix the request's path has
    plays it (bytes, or a callable given the connection); any other path is a 404."""

    def handler(conn: socket.socket, peer: Peer, n: int) -> None:
        line = read_request(conn).split(b"\r\n", 1)[0].split(b" ")
        path = line[1].decode("latin-1") if len(line) > 1 else ""
        reply = next((r for prefix, r in routes.items() if path.startswith(prefix)), answer(404, b"{}"))
        if callable(reply):
            reply(conn, peer)
        else:
            conn.sendall(reply)

    return handler


def manifest_sized(size: object) -> bytes:
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": CONFIG, "size": size}
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []}).encode()


def pull_from(p: Peer, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    host = f"127.0.0.1:{p.port}"
    done = run("pull", f"{host}/team/app:v1", "--plain-http", host, "--platform", "linux/amd64", "--json", "--quiet", *extra)
    assert "Traceback" not in done.stderr, done.stderr
    return done, json.loads(done.stdout)["records"][0]


def ten_bytes_then_silence(conn: socket.socket, peer: Peer) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    peer.hold()


@pytest.mark.parametrize("size", [10**11, 10**18], ids=["1e11", "1e18"])
def test_a_blob_gets_the_deadline_of_its_content_length_not_of_the_size_its_manifest_declares(peer, size):
    p = peer(scripted_registry({"/v2/team/app/manifests/": answer(body=manifest_sized(size)), "/v2/team/app/blobs/": ten_bytes_then_silence}))
    start = time.monotonic()
    done, rec = pull_from(p, "--timeout", "1")
    # the peer holds its connection for agent_peers.HOLD_S (8 s): the deadline of 10 bytes ends first
    assert done.returncode == 1 and rec["error_class"] == "read_timeout", rec
    assert rec["error"].endswith("within the 1.0s deadline") and time.monotonic() - start < 5


@pytest.mark.parametrize(
    "document",
    [
        {"mediaType": INDEX, "manifests": 5},
        {"mediaType": INDEX, "manifests": [{"digest": CONFIG, "platform": None}]},
        {"mediaType": INDEX, "manifests": [{"digest": CONFIG, "platform": "linux/amd64"}]},
        {"mediaType": INDEX, "manifests": [{"digest": "sha256:\u20ac", "platform": {"os": "linux", "architecture": "amd64"}}]},
        {"mediaType": INDEX, "manifests": [{"digest": "sha256:0\r\nX-Injected: 1", "platform": {"os": "linux", "architecture": "amd64"}}]},
        json.loads(manifest_sized(0).replace(b'"size": 0', b'"size": 1e999')),
    ],
    ids=["manifests-a-number", "platform-null", "platform-a-string", "digest-not-ascii", "digest-with-a-line-break", "size-infinite"],
)
def test_a_malformed_index_or_manifest_is_a_registry_error(peer, document):
    p = peer(scripted_registry({"/v2/team/app/manifests/v1": answer(body=json.dumps(document).encode())}))
    done, rec = pull_from(p, "--timeout", "5")
    assert done.returncode == 1 and rec["error_class"] == "registry_error", rec
    assert p.accepted == 1, "nothing is requested on the strength of a malformed document"


def token_from_realm(token: str) -> dict[str, Reply]:
    def challenge(conn: socket.socket, peer: Peer) -> None:
        conn.sendall(answer(401, b"{}", (f'WWW-Authenticate: Bearer realm="http://127.0.0.1:{peer.port}/token",service="s"',)))

    return {"/token": answer(body=json.dumps({"token": token}).encode()), "/v2/": challenge}


@pytest.mark.parametrize("token", ["\u20ac-token", "t0ken\r\nX-Injected: 1"], ids=["not-ascii", "line-break"])
def test_a_token_that_cannot_be_a_header_value_is_a_registry_error(peer, token):
    p = peer(scripted_registry(token_from_realm(token)))
    done, rec = pull_from(p, "--timeout", "5")
    assert done.returncode == 1 and rec["error_class"] == "registry_error", rec
    assert rec["error"] == "the token service's token is not printable ASCII"
    assert p.accepted == 2, "the manifest is not asked for again with that token"


@pytest.mark.parametrize(
    "error",
    [TypeError("'int' object is not iterable"), AttributeError("'NoneType' object has no attribute 'get'"),
     ValueError("Invalid IPv6 URL"), UnicodeEncodeError("latin-1", "\u20ac", 0, 1, "ordinal not in range(256)"),
     OverflowError("timeout value is too large")],
    ids=lambda e: type(e).__name__,
)
def test_an_unforeseen_error_while_pulling_is_a_registry_error_not_a_traceback(monkeypatch, capsys, error):
    monkeypatch.syspath_prepend(str(AGENT.parent))
    module = importlib.import_module("agent")

    def pull(self: object) -> str:
        raise error

    monkeypatch.setattr(module.Puller, "pull", pull)
    args = argparse.Namespace(mirror=None, no_fallback=False, plain_http=["127.0.0.1:9"], platform="linux/amd64")
    rec = module.pull_attempt("127.0.0.1:9/team/app:v1", 1, args, module.Options(timeout=1.0))
    assert rec["error_class"] == "registry_error" and rec["error"] == f"the registry's answer broke the pull ({type(error).__name__}: {error})"
    assert rec["fallbacks"][0]["error_class"] == "registry_error"


# ---------------------------------------------------------------- usage errors: exit 2, one line, nothing sent


USAGE = [
    ("expect-word", ["http", "{url}", "--expect", "ok"], "argument --expect: 'ok' is not a status or a LOW-HIGH range of statuses"),
    ("timeout-nan", ["http", "{url}", "--timeout", "nan"], "argument --timeout: 'nan' is not a positive number of seconds"),
    ("timeout-zero", ["http", "{url}", "--timeout", "0"], "argument --timeout: '0' is not a positive number of seconds"),
    ("broken-ipv6-url", ["http", "http://[::1/"], "argument URL: http://[::1/: Invalid IPv6 URL"),
    ("port-out-of-range", ["http", "http://127.0.0.1:99999/"], "argument URL: http://127.0.0.1:99999/: Port out of range 0-65535"),
    ("no-scheme", ["http", "example.com/v2/"], "argument URL: example.com/v2/: no scheme, write https://example.com/v2/"),
    ("ftp", ["http", "ftp://example.com/"], "argument URL: ftp://example.com/: only http:// and https:// are probed"),
    ("resolve-short", ["http", "{url}", "--resolve", "x:1"], "argument --resolve: 'x:1' is not HOST:PORT:ADDR with ADDR an IP address"),
    ("resolve-name", ["http", "{url}", "--resolve", "x:443:example.com"], "is not HOST:PORT:ADDR with ADDR an IP address"),
    ("missing-ca-file", ["http", "{url}", "--ca-file", "/nonexistent/ca.pem"], "argument --ca-file: /nonexistent/ca.pem: not a readable PEM CA bundle"),
    ("repeat-zero", ["http", "{url}", "--repeat", "0"], "argument --repeat: '0' is not a positive whole number"),
    ("header-without-name", ["http", "{url}", "-H", "Bearer xyz"], "argument --header/-H: a header is NAME: VALUE on one line"),
    ("header-not-latin-1", ["http", "{url}", "-H", "X-A: \u20ac"], "argument --header/-H: the value of header X-A is not Latin-1 text"),
    ("header-control-character", ["http", "{url}", "-H", "X-A: a\x1bb"], "argument --header/-H: a header is NAME: VALUE on one line"),
    ("url-not-ascii", ["http", "{url}\u20ac"], "/\u20ac: a space, control or non-ASCII character: percent-encode it"),
    ("url-with-a-space", ["http", "{url}a b"], "/a b: a space, control or non-ASCII character: percent-encode it"),
    ("mirror-not-ascii", ["pull", "busybox", "--mirror", "{url}\u20ac"], "/\u20ac: a space, control or non-ASCII character: percent-encode it"),
    ("timeout-beyond-a-day", ["http", "{url}", "--timeout", "1e10"], "argument --timeout: '1e10' is more than 86400 seconds (a day)"),
    ("concurrency-beyond-256", ["http", "{url}", "--concurrency", "999999"], "argument --concurrency: '999999' is more than 256 at once"),
    ("parallel-beyond-256", ["mss-sweep", "127.0.0.1:1", "--parallel", "1000"], "argument --parallel: '1000' is more than 256 at once"),
    ("interval-beyond-a-day", ["http", "{url}", "--repeat", "2", "--interval", "1e300"], "argument --interval: '1e300' is more than 86400 seconds (a day)"),
    ("budget-beyond-a-day", ["mss-sweep", "127.0.0.1", "--budget", "86401"], "argument --budget: '86401' is more than 86400 seconds (a day)"),
    ("platform-without-arch", ["pull", "busybox", "--mirror", "{url}", "--platform", "linux"], "argument --platform: 'linux' is not OS/ARCH[/VARIANT]"),
    ("bad-image", ["pull", "Busy/Box", "--mirror", "{url}"], "argument IMAGE: Busy/Box: invalid repository name in 'Busy/Box'"),
    ("mirror-no-scheme", ["pull", "busybox", "--mirror", "127.0.0.1:5000"], "argument --mirror: 127.0.0.1:5000: no scheme, write https://127.0.0.1:5000"),
    ("image-port", ["pull", "localhost:99999/x:1"], "argument IMAGE: localhost:99999/x:1: Port out of range 0-65535"),
    ("sweep-port", ["mss-sweep", "127.0.0.1:99999"], "argument HOST[:PORT]: '127.0.0.1:99999' is not HOST[:PORT]"),
    ("source-not-here", ["mss-sweep", "127.0.0.1", "--source", "192.0.2.77"], "argument --source: '192.0.2.77' is not an IP address of this host"),
    ("no-subcommand", [], "agent.py: error: choose a subcommand: http, pull, mss-sweep or facts (see --help)"),
    ("unknown-subcommand", ["htp", "{url}"], "argument {http,pull,mss-sweep,facts}: invalid choice: 'htp'"),
]


@pytest.mark.parametrize("argv,message", [(a, m) for _, a, m in USAGE], ids=[i for i, _, _ in USAGE])
def test_every_usage_error_exits_2_with_one_line_before_any_connection(peer, argv, message):
    listener = peer(respond_with(answer()))
    done = run(*[a.replace("{url}", listener.url()) for a in argv])
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr, done.stderr
    assert listener.accepted == 0


def test_a_bad_header_value_in_a_usage_error_is_not_echoed():
    done = run("http", "https://x/", "--bogus", "X-Auth-Token: CANARY-usage")
    assert done.returncode == 2 and "CANARY" not in done.stderr and "X-Auth-Token: <redacted>" in done.stderr


def test_a_header_value_that_is_not_latin_1_is_a_usage_error_that_does_not_echo_it(peer):
    listener = peer(respond_with(answer()))
    done = run("http", listener.url(), "-H", "X-Auth-Token: CANARY-\u20ac")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "CANARY" not in done.stderr, done.stderr
    assert "the value of header X-Auth-Token is not Latin-1 text" in done.stderr and listener.accepted == 0


# ---------------------------------------------------------------- redaction by what a value is


def test_secrets_never_reach_the_evidence_whatever_their_spelling(peer):
    p = peer(respond_with(answer()))
    signed = p.url(path="/blob?X-Amz-Signature=CANARY1&sig=CANARY2&token=CANARY3&page=2").replace("://", "://user:CANARY7@")
    done = run("http", signed, "-HAuthorization: Bearer CANARY4", "--head", "X-Auth: CANARY5", "--header=Cookie: s=CANARY6", "--json")
    assert done.returncode == 0, done.stderr
    assert "CANARY" not in done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert doc["records"][0]["target"] == p.url(path="/blob?X-Amz-Signature=<redacted>&sig=<redacted>&token=<redacted>&page=2")
    assert doc["argv"][2:] == ["-HAuthorization: <redacted>", "--head", "X-Auth: <redacted>", "--header=Cookie: <redacted>", "--json"]


def test_a_fragment_and_sensitive_path_parameters_never_reach_the_evidence(peer):
    p = peer(respond_with(answer()))
    url = p.url(path="/a;jsessionid=CANARY11;v=1/b;session=CANARY12?page=2#access_token=CANARY13&token_type=bearer")
    done = run("http", url, "--json")
    assert done.returncode == 0, done.stderr
    assert "CANARY" not in done.stdout + done.stderr
    doc = json.loads(done.stdout)
    redacted = p.url(path="/a;jsessionid=<redacted>;v=1/b;session=<redacted>?page=2")
    assert doc["records"][0]["target"] == redacted and doc["argv"] == ["http", redacted, "--json"]


def test_a_pull_records_no_userinfo_and_no_signed_query(tmp_path):
    from lab.images import write_layout

    write_layout(tmp_path / "layout", "v1")
    fake = FakeRegistry(tmp_path / "layout", "team/app", "v1", blob_query="X-Amz-Signature=CANARY8&X-Amz-Credential=CANARY9")
    try:
        host = fake.url.split("//")[1]
        mirror = f"http://mirror-user:CANARY10@{host}"
        done = run("pull", f"{host}/team/app:v1", "--plain-http", host, "--mirror", mirror, "--platform", "linux/amd64", "--json")
    finally:
        fake.close()
    assert done.returncode == 0, done.stderr
    assert "CANARY" not in done.stdout + done.stderr
    rec = json.loads(done.stdout)["records"][0]
    assert rec["served_by"] == "mirror" and rec["endpoint"] == f"http://{host}"
    assert host in rec["hosts"] and {s["host"] for s in rec["steps"]} <= set(rec["hosts"])


# ---------------------------------------------------------------- timeouts that fit the path


def test_with_the_defaults_a_silent_tls_server_is_a_handshake_timeout(peer, localhost_cert):
    p = peer(lambda conn, peer, n: peer.hold(), localhost_cert)
    rc, doc = agent("http", p.url("https"), "--ca-file", str(localhost_cert.ca))
    rec = doc["records"][0]
    # loopback connects in microseconds: the one-second floor, not the 10 s --timeout, bounds it
    assert rc == 1 and rec["error_class"] == "tls_handshake_timeout" and rec["error"].endswith("did not finish in 1.0s")


def test_a_slow_but_working_tls_server_is_not_misclassified(peer, localhost_cert):
    def slow(conn: socket.socket, peer: Peer, n: int) -> None:
        peer.hold(0.6)  # the ClientHello waits, unanswered, for 0.6 s: 6000 loopback round trips
        tls = peer.tls(conn)
        read_request(tls)
        tls.sendall(answer())

    p = peer(slow, localhost_cert)
    rc, doc = agent("http", p.url("https"), "--ca-file", str(localhost_cert.ca), "--repeat", "2")
    assert rc == 0 and all(r["phases_ms"]["tls"] >= 600 for r in doc["records"]), doc["records"]


# ---------------------------------------------------------------- concurrency


def slow_answer(conn: socket.socket, peer: Peer, n: int) -> None:
    read_request(conn)
    peer.hold(0.3)
    conn.sendall(answer())


def test_repeats_overlap_up_to_the_concurrency_without_an_interval(peer):
    p = peer(slow_answer)
    rc, doc = agent("http", p.url(), "--repeat", "8", "--concurrency", "4")
    assert rc == 0 and len(doc["records"]) == 8 and p.most_active == 4
    assert [r["attempt"] for r in doc["records"]] == list(range(1, 9))


def test_with_an_interval_the_rounds_stay_apart(peer):
    p = peer(slow_answer)
    rc, doc = agent("http", p.url(), "--repeat", "3", "--concurrency", "4", "--interval", "0.05")
    assert rc == 0 and len(doc["records"]) == 3 and p.most_active == 1


# ---------------------------------------------------------------- the sweep against loopback peers


def sweep(port: int, *extra: str) -> tuple[int, dict]:
    return agent("mss-sweep", f"127.0.0.1:{port}", "--no-tracepath", *extra)


def test_a_closed_port_is_unreachable_because_tcp_is_refused():
    rc, doc = sweep(free_port())
    result = doc["mss_sweep"]
    assert rc == 1 and (result["verdict"], result["unreachable_class"], result["black_hole"]) == ("unreachable", "connect_refused", False)
    assert doc["records"][0]["error_class"] == "connect_refused"
    assert all(t["error_class"] == "connect_refused" for t in result["trials"])


def test_a_server_that_accepts_tcp_and_never_answers_tls_is_unreachable_because_it_stalls(peer, localhost_cert):
    p = peer(lambda conn, peer, n: peer.hold(), localhost_cert)
    rc, doc = sweep(p.port, "--ca-file", str(localhost_cert.ca))
    result = doc["mss_sweep"]
    assert rc == 1 and (result["verdict"], result["unreachable_class"]) == ("unreachable", "tls_handshake_timeout")
    assert result["explanation"].startswith("TCP connects but TLS never answers, even at MSS 536")
    assert doc["records"][0]["error_class"] == "tls_handshake_timeout"


def test_an_untrusted_certificate_still_sizes_and_is_reported(peer, localhost_cert):
    p = peer(serve_tls, localhost_cert)
    rc, doc = sweep(p.port)  # no --ca-file: the lab CA is not trusted
    result = doc["mss_sweep"]
    # loopback's MTU allows more than the largest MSS Linux lets a socket ask for
    assert result["verdict"] == "clean" and result["working_mss"] == min(result["route_mtu"] - 40, 32767)
    assert result["certificate_error"].startswith("certificate of 127.0.0.1: self")  # self-signed ... in the chain
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_certificate"


def test_one_stalled_default_handshake_is_noise(peer, localhost_cert):
    """The first connection of the sweep (a default-MSS try) is never answered; all others are."""

    def first_silent(conn: socket.socket, peer: Peer, n: int) -> None:
        if n == 1:
            peer.hold()
        else:
            serve_tls(conn, peer, n)

    p = peer(first_silent, localhost_cert)
    rc, doc = sweep(p.port, "--ca-file", str(localhost_cert.ca))
    result = doc["mss_sweep"]
    assert (result["verdict"], result["black_hole"], result["default_stalls"], result["recommended_clamp"]) == ("clean", False, 1, None)
    assert result["note"] == "1 of 3 default-MSS tries stalled and did not reproduce: noise, not a size limit"
    assert rc == 0
