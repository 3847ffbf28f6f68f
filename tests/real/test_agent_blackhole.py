"""PMTU black holes on a real kernel: namespaces, a narrow link, routers that drop ICMP frag-needed."""

from __future__ import annotations

import pytest

from lab.blackhole import SERVER_IP, build, start_https
from lab.netns import Topology
from tests.real.conftest import agent, require_root

URL = "https://lab.test/"
NARROW_SOURCE = "192.0.2.2"  # build()'s client address
WIDE_SOURCE = "192.0.2.3"


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


def test_mss_sweep_with_its_defaults_finds_the_exact_working_mss_both_ways(both_ways, lab_cert):
    rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), netns=both_ways.ns("client"))
    sweep = doc["mss_sweep"]
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_handshake_timeout"
    assert (sweep["default_mss_works"], sweep["default_stalls"], sweep["direction"]) == (False, 3, "both")
    assert sweep["working_mss"] == 1280 - 40 and sweep["path_mtu"] == 1280
    assert sweep["black_hole"] and sweep["recommended_clamp"] == 1240
    # tracepath ran beside the sweep: its pmtu never came down from the local 1500
    assert "pmtu 1500" in sweep["tracepath"]


def test_an_untrusted_certificate_does_not_hide_the_black_hole(both_ways):
    rc, doc = agent("mss-sweep", "lab.test:443", "--no-tracepath", netns=both_ways.ns("client"))
    sweep = doc["mss_sweep"]
    assert sweep["black_hole"] and sweep["working_mss"] == 1240
    assert sweep["certificate_error"].startswith("certificate of lab.test: ")


def test_one_way_black_hole_passes_plain_http_but_fails_a_big_hello(one_way, lab_cert):
    ns = one_way.ns("client")
    rc, doc = agent("http", URL, "--ca-file", str(lab_cert.ca), "--timeout", "2", "--repeat", "2", netns=ns)
    assert rc == 0, doc["records"]
    rc, doc = agent("http", URL, "--ca-file", str(lab_cert.ca), "--timeout", "2", "--big-hello", netns=ns)
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_handshake_timeout"


def test_mss_sweep_finds_the_one_way_black_hole(one_way, lab_cert):
    rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), "--no-tracepath", netns=one_way.ns("client"))
    sweep = doc["mss_sweep"]
    assert sweep["black_hole"] and sweep["working_mss"] == 1240
    # the small hello alone passes at the default MSS: only the large one finds it
    assert sweep["direction"] == "toward-server"
    small = [t for t in sweep["trials"] if t["mss"] is None and not t["big_hello"]]
    assert len(small) == 3 and all(t["ok"] for t in small)


def test_a_clean_path_needs_no_clamp(lab_cert):
    require_root()
    with Topology("nstc-") as topo:
        build(topo, both_directions=True, narrow_mtu=1500)
        start_https(topo, "server", SERVER_IP, lab_cert)
        rc, doc = agent("mss-sweep", "lab.test:443", "--ca-file", str(lab_cert.ca), "--no-tracepath", netns=topo.ns("client"))
    sweep = doc["mss_sweep"]
    assert rc == 0 and sweep["verdict"] == "clean" and sweep["recommended_clamp"] is None and sweep["working_mss"] == 1460


@pytest.fixture(scope="module")
def two_sources(lab_cert):
    """The client has two addresses. Traffic from WIDE_SOURCE takes a wide r1-r2 link both ways
    (policy routing on r1, a host route on r2); traffic from the first address crosses the black hole."""
    require_root()
    with Topology("nsts-") as topo:
        build(topo, both_directions=True)
        topo.addr("client", "eth0", f"{WIDE_SOURCE}/29")
        topo.link("r1", "w0", "r2", "w0")
        topo.addr("r1", "w0", "198.51.100.9/29")
        topo.addr("r2", "w0", "198.51.100.10/29")
        topo.run("r1", "ip", "rule", "add", "from", WIDE_SOURCE, "lookup", "100")
        topo.run("r1", "ip", "route", "add", "203.0.113.0/29", "via", "198.51.100.10", "table", "100")
        topo.route("r2", f"{WIDE_SOURCE}/32", "198.51.100.9")
        start_https(topo, "server", SERVER_IP, lab_cert)
        yield topo


def test_source_binds_the_sweep_to_the_address_whose_path_it_measures(two_sources, lab_cert):
    ns = two_sources.ns("client")
    common = ("--ca-file", str(lab_cert.ca), "--no-tracepath")
    rc, narrow = agent("mss-sweep", "lab.test:443", "--source", NARROW_SOURCE, *common, netns=ns)
    assert narrow["mss_sweep"]["black_hole"] and narrow["mss_sweep"]["working_mss"] == 1240
    assert narrow["mss_sweep"]["source"] == NARROW_SOURCE
    rc, wide = agent("mss-sweep", "lab.test:443", "--source", WIDE_SOURCE, *common, netns=ns)
    assert rc == 0 and wide["mss_sweep"]["verdict"] == "clean" and wide["mss_sweep"]["working_mss"] == 1460


def test_source_binds_http_too(two_sources, lab_cert):
    ns = two_sources.ns("client")
    common = (URL, "--ca-file", str(lab_cert.ca), "--timeout", "2")
    assert agent("http", *common, "--source", WIDE_SOURCE, netns=ns)[0] == 0
    rc, doc = agent("http", *common, "--source", NARROW_SOURCE, netns=ns)
    assert rc == 1 and doc["records"][0]["error_class"] == "tls_handshake_timeout"


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
