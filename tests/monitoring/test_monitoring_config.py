"""The `monitoring` section: its defaults, and bad input refused at render with the key named."""

from __future__ import annotations

import pytest

from components.config import parse_config
from probes import plan
from tests.conftest import problems_of


def with_monitoring(raw, **values):
    raw["monitoring"] = {**raw.get("monitoring", {}), **values}
    return raw


def test_the_homelab_stack_probes_continuously_with_the_gates_targets(homelab):
    m = homelab.monitoring
    assert (m.enabled, m.interval_seconds, m.retention_hours, m.max_store_bytes, m.output, m.textfile_dir) == \
        (True, 300, 24, 50 * 1024 * 1024, "textfile", "/var/lib/prometheus/node-exporter")
    assert homelab.monitoring_endpoints == plan.ENDPOINTS and homelab.monitoring_images == plan.TEST_IMAGES


def test_own_targets_replace_the_gates(homelab_raw):
    config = parse_config(with_monitoring(homelab_raw, endpoints=["https://ghcr.io/v2/"], images=["ghcr.io/fluxcd/helm-controller:v1.5.1"]))
    assert config.monitoring_endpoints == ("https://ghcr.io/v2/",)
    assert config.monitoring_images == ("ghcr.io/fluxcd/helm-controller:v1.5.1",)


@pytest.mark.parametrize("values,message", [
    ({"intervalSeconds": 0}, "monitoring.intervalSeconds: 0 is not an integer in 1..86400"),
    ({"intervalSeconds": -300}, "monitoring.intervalSeconds: -300 is not an integer in 1..86400"),
    ({"textfileDir": "var/lib/prometheus/node-exporter"}, "monitoring.textfileDir: 'var/lib/prometheus/node-exporter' is not an absolute path"),
    ({"retentionHours": 0}, "monitoring.retentionHours: 0 is not an integer in 1..8760"),
    ({"output": "pushgateway"}, "monitoring.output: 'pushgateway' is not one of textfile, listener"),
    ({"output": "listener"}, "monitoring.proxmoxAddress: output listener binds each host's listener to its VM-subnet address"),
    ({"endpoints": ["http://ghcr.io/v2/"]}, "monitoring.endpoints:"),
    ({"images": ["busybox"]}, "monitoring.images:"),
])
def test_bad_input_is_refused_with_its_key(homelab_raw, values, message):
    problems = problems_of(with_monitoring(homelab_raw, **values))
    assert any(p.startswith(message) for p in problems), problems


@pytest.mark.parametrize("interval,refused", [(199, True), (200, False)])
def test_an_interval_below_one_run_is_refused_from_both_sides(homelab_raw, interval, refused):
    """The homelab's defaults (6 endpoints, 5 images through the mirror, 3 sweeps) take at most 200 s."""
    raw = with_monitoring(homelab_raw, intervalSeconds=interval)
    if refused:
        assert problems_of(raw) == ["monitoring.intervalSeconds: 199 s is shorter than one run can take with these settings (200 s when "
                                    "every request times out); raise it, or lower repeats, timeoutSeconds, maxSweeps or sweepBudgetSeconds"]
    else:
        assert parse_config(raw).monitoring.interval_seconds == 200


def test_a_disabled_monitoring_is_not_held_to_its_interval(homelab_raw):
    assert parse_config(with_monitoring(homelab_raw, enabled=False, intervalSeconds=10)).monitoring.enabled is False
