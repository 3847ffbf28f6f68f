"""`mss-sweep` against peers on 127.0.0.1: why an unreachable target is unreachable, a certificate
error that still sizes, and a single stalled default handshake that is noise."""

from __future__ import annotations

import socket

import pytest

from tests.real.agent_peers import Peer, answer, read_request
from tests.real.conftest import agent, free_port


@pytest.fixture
def peer():
    made: list[Peer] = []

    def make(handler, cert=None) -> Peer:
        made.append(Peer(handler, cert))
        return made[-1]

    yield make
    for p in made:
        p.close()


def serve_tls(conn: socket.socket, peer: Peer, n: int) -> None:
    tls = peer.tls(conn)
    read_request(tls)
    tls.sendall(answer())


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
    assert (result["verdict"], result["black_hole"], result["default_failures"], result["recommended_clamp"]) == ("clean", False, 1, None)
    assert result["note"] == "1 of 3 default-MSS handshakes failed and did not reproduce: noise, not a size limit"
    assert rc == 0
