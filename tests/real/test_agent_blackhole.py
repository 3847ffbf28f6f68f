"""PMTU black holes on a real kernel: namespaces, a narrow link, routers that drop ICMP frag-needed."""

from __future__ import annotations

import pytest

from lab.blackhole import SERVER_IP, build, start_https
from lab.netns import Topology
from tests.real.conftest import agent, require_root

URL = "https://lab.test/"


@pytest.fixture(scope="module")
def both_ways(lab_cert):
    """A narrow (1280) link in the middle; the black hole swallows big segments both ways."""
    require_root()
    with Topology("nstb-") as topo:
        build(topo, both_directions=True)
        start_https(topo, "server", SERVER_IP, lab_cert)
        yield topo


@pytest.fixture(scope="module")
def one_way(lab_cert):
    """Only client->server crosses the narrow link; the replies come back on a wide one."""
    require_root()
    with Topology("nsto-") as topo:
        build(topo, both_directions=False)
        start_https(topo, "server", SERVER_IP, lab_cert)
        yield topo


def test_plain_http_across_the_black_hole_is_a_tls_handshake_timeout_after_a_good_connect(both_ways, lab_cert):
    rc, doc = agent("http", URL, "--ca-file", str(lab_cert.ca), "--timeout", "2", "--repeat", "2", netns=both_ways.ns("client"))
    assert rc == 1
    for rec in doc["records"]:
        assert rec["error_class"] == "tls_handshake_timeout", rec
        assert rec["phases_ms"]["connect"] > 0, "TCP connect must have succeeded"
        assert rec["remote_ip"] == SERVER_IP


def test_mss_sweep_finds_the_exact_working_mss_both_ways(both_ways, lab_cert):
    rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), "--timeout", "1", "--repeat", "1",
                    "--tracepath-timeout", "4", netns=both_ways.ns("client"))
    sweep = doc["mss_sweep"]
    assert rc == 1
    assert sweep["default_mss_works"] is False
    assert sweep["working_mss"] == 1280 - 40 and sweep["path_mtu"] == 1280
    assert sweep["black_hole"] and sweep["recommended_clamp"] == 1240
    assert sweep["tracepath"] is not None, "tracepath evidence belongs beside the verdict"


def test_one_way_black_hole_passes_plain_http_but_fails_a_big_hello(one_way, lab_cert):
    ns = one_way.ns("client")
    rc, doc = agent("http", URL, "--ca-file", str(lab_cert.ca), "--timeout", "2", "--repeat", "2", netns=ns)
    assert rc == 0, doc["records"]
    rc, doc = agent("http", URL, "--ca-file", str(lab_cert.ca), "--timeout", "2", "--big-hello", netns=ns)
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_handshake_timeout"


def test_mss_sweep_finds_the_one_way_black_hole(one_way, lab_cert):
    rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), "--timeout", "1", "--repeat", "1", "--no-tracepath",
                    netns=one_way.ns("client"))
    sweep = doc["mss_sweep"]
    assert sweep["black_hole"] and sweep["working_mss"] == 1240
    # the small hello alone would have passed at the default MSS: the big one found it
    default_trials = [t for t in sweep["trials"] if t["mss"] is None]
    assert [t["ok"] for t in default_trials][:1] == [True] and not default_trials[-1]["ok"]


def test_a_clean_path_needs_no_clamp(lab_cert):
    require_root()
    with Topology("nstc-") as topo:
        build(topo, both_directions=True, narrow_mtu=1500)
        start_https(topo, "server", SERVER_IP, lab_cert)
        rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), "--timeout", "1", "--repeat", "1", "--no-tracepath",
                        netns=topo.ns("client"))
    sweep = doc["mss_sweep"]
    assert rc == 0 and sweep["verdict"] == "clean" and sweep["recommended_clamp"] is None


def test_a_dns_failure_in_a_namespace_is_a_dns_error(both_ways):
    both_ways.set_resolv_conf("client", ["127.0.0.1"])
    rc, doc = agent("http", "https://unknown-host.lab.test/", "--timeout", "3", netns=both_ways.ns("client"))
    assert rc == 1 and doc["records"][0]["error_class"] == "dns_error"


def test_namespaces_are_removed_after_use(lab_cert):
    require_root()
    from lab.netns import list_namespaces

    with Topology("nstd-") as topo:
        build(topo, both_directions=True)
        assert any(n.startswith("nstd-") for n in list_namespaces())
    assert not any(n.startswith("nstd-") for n in list_namespaces())
