"""Where the judge's rule order decides the kind: evidence that two neighbouring rules both match
(each is a finding), and which one names the kind, and why. A test per neighbouring pair, so
swapping any two rules of RULES changes a kind here (a swap of neighbours directly; any other swap
moves some rule past its neighbour)."""

from __future__ import annotations

import pytest

from probes.verdict import RULES, diagnose
from tests.probes.docs import doc, rec, sweep

BH = "tls_handshake_timeout"
GHCR, QUAY = "https://ghcr.io/v2/", "https://quay.io/v2/"
DOCKER, DOPPLER = "https://registry-1.docker.io/v2/", "https://api.doppler.com/v3/projects"
REF = ["pve"]


def http(*records: dict) -> dict:
    return doc("http", *records)


def times(n: int, target: str, cls: str | None = None, **kw: object) -> list[dict]:
    return [rec(target, cls, **kw) for _ in range(n)]  # type: ignore[arg-type]


CASES = {
    # A name that does not resolve stops the attempt before any packet, so it is named first; a
    # refusing server elsewhere is reported beside it.
    ("dns", "upstream-down"): {
        "cp1": [http(*times(3, GHCR, "dns_error"), *times(3, QUAY, "connect_error"))],
        "pve": [http(*times(3, GHCR), *times(3, QUAY, "connect_error"))],
    },
    # No TCP at all to one server is named before a server that accepts TCP and never answers TLS.
    ("upstream-down", "server-stall"): {
        "cp1": [http(*times(3, QUAY, "connect_error"), *times(3, GHCR, BH)), sweep("unreachable", host="ghcr.io", unreachable_class=BH)],
        "pve": [http(*times(3, QUAY, "connect_error"), *times(3, GHCR, BH))],
    },
    # ghcr.io stalls from every host and at MSS 536 (the reference host's sweep), quay.io stalls only
    # from the VMs and a sweep finds it passes at 1240: a server that never answers TLS is named
    # before a size limit, since no clamp fixes it.
    ("server-stall", "pmtu-black-hole"): {
        "cp1": [http(*times(3, GHCR, BH), *times(3, QUAY, BH)), sweep("black-hole", host="quay.io", clamp=1240)],
        "pve": [http(*times(3, GHCR, BH), *times(3, QUAY)), sweep("unreachable", host="ghcr.io", unreachable_class=BH)],
    },
    # A size limit on the VM path is named before a certificate another server presents.
    ("pmtu-black-hole", "tls-certificate"): {
        "cp1": [http(*times(3, GHCR, BH), *times(3, QUAY, "tls_certificate")), sweep("black-hole", host="ghcr.io", clamp=1240)],
        "pve": [http(*times(3, GHCR), *times(3, QUAY, "tls_certificate"))],
    },
    # A rejected certificate stops every request to that server; a 429 from another is named beside it.
    ("tls-certificate", "rate-limited"): {
        "cp1": [http(*times(3, QUAY, "tls_certificate"), *times(3, DOCKER, "http_status", status=429))],
    },
    # A 429 is the registry's own word on these hosts; a 5xx from another service is reported beside it.
    ("rate-limited", "server-error"): {
        "cp1": [http(*times(3, DOCKER, "http_status", status=429), *times(3, DOPPLER, "http_status", status=503))],
    },
    # A service that answers 5xx every time is named before timeouts that come and go elsewhere.
    ("server-error", "packet-loss"): {
        "cp1": [http(*times(3, DOPPLER, "http_status", status=503), rec(GHCR), rec(GHCR, "read_timeout"), rec(GHCR), rec(GHCR))],
    },
}


def test_every_pair_of_neighbouring_rules_has_a_case():
    kinds = [kind for kind, _ in RULES]
    assert sorted(CASES) == sorted(zip(kinds, kinds[1:], strict=False))


@pytest.mark.parametrize("pair", list(CASES), ids=[f"{a}-before-{b}" for a, b in CASES])
def test_when_two_rules_both_match_the_earlier_one_names_the_kind_and_the_other_is_reported_beside_it(pair):
    first, second = pair
    d = diagnose(CASES[pair], REF)
    assert [f.kind for f in d.findings] == [first, second], [(f.kind, f.summary) for f in d.findings]
    assert d.kind == first and d.verdict == "fail"
    assert d.mss_fix_applies is (first == "pmtu-black-hole")
    assert f"also found:\n  {second}: " in d.text()


def test_the_black_hole_named_second_keeps_its_clamp_in_the_findings_but_not_in_the_diagnosis():
    """server-stall wins: no clamp is offered for a server that never answers, though the other server's hole was measured."""
    d = diagnose(CASES[("server-stall", "pmtu-black-hole")], REF)
    assert (d.recommended_clamp, d.clamp_command) == (None, None)
    assert d.findings[1].recommended_clamp == 1240 and "never answers" in d.summary
