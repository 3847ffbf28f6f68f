"""The `validation` section: each broken setting names its key, its value and what is expected."""

from __future__ import annotations

import pytest

from tests.conftest import problems_of

KINDS = "dns, upstream-down, server-stall, pmtu-black-hole, tls-certificate, rate-limited, server-error, packet-loss, unknown"
BROKEN_VALIDATION = [
    pytest.param({"endpoints": ["https://ghcr.io:99999/v2/"]}, "validation.endpoints: ['https://ghcr.io:99999/v2/'] is not a list of "
                 "https:// URLs (https://ghcr.io:99999/v2/ has no valid host and port)", id="port_out_of_range"),
    pytest.param({"endpoints": ["https://[::1]/v2/"]}, "validation.endpoints: ['https://[::1]/v2/'] is not a list of https:// URLs "
                 "(https://[::1]/v2/: name the host (IPv6 literals are not supported yet))", id="ipv6_literal"),
    pytest.param({"endpoints": []}, "validation.endpoints: [] is not a list of https:// URLs (at least one endpoint)", id="no_endpoint"),
    pytest.param({"images": []}, "validation.images: [] is not a list of image references (registry/repo:tag) (at least one image)",
                 id="no_image"),
    pytest.param({"criteria": {"tolerate": ["packet_loss"]}}, f"validation.criteria.tolerate: ['packet_loss'] is not a list of "
                 f"diagnosis kinds (packet_loss not a problem kind (one of {KINDS}))", id="tolerate_unknown_kind"),
    pytest.param({"criteria": {"minPullSuccess": 95}}, "validation.criteria.minPullSuccess: 95 is not a fraction from 0 to 1, such as 0.95",
                 id="percent_not_fraction"),
    pytest.param({"vantagePoints": ["cp1", "cp1"]}, "validation.vantagePoints[1]: cp1 is listed twice", id="vantage_point_twice"),
    pytest.param({"vantagePoints": ["cp9"]}, "validation.vantagePoints[0]: cp9 is neither a node nor proxmox; use one of: proxmox, cp1, "
                 "worker1, worker2", id="unknown_vantage_point"),
    pytest.param({"mode": "strict"}, "validation.mode: 'strict' is not one of enforce, warn", id="unknown_mode"),
]


@pytest.mark.parametrize("validation,expected", BROKEN_VALIDATION)
def test_validation_config_errors_name_their_key(homelab_raw, validation, expected):
    homelab_raw["validation"] = validation
    assert problems_of(homelab_raw) == [expected]
