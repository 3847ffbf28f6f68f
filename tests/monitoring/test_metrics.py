"""`python -m probes metrics`: the exposition promtool accepts, whose series never depend on the
outcome, whose label values come from the plan and fixed enums, and whose counts are the documents'."""

from __future__ import annotations

import json
import re

import pytest

from probes import agent, metrics
from probes.__main__ import main
from tests import promtool
from tests.monitoring.docs import doc, http, pull, sweep

PLAN_DOCS_OK = [
    doc("http", [http("https://ghcr.io/v2/", True), http("https://api.doppler.com/v3/projects", True),
                 http("https://ghcr.io/v2/", True, big=True)]),
    doc("pull", [pull("ghcr.io/fluxcd/helm-controller:v1.5.1", True, manifest=True)]),
]
PLAN_DOCS_BAD = [
    doc("http", [http("https://ghcr.io/v2/", False, "tls_handshake_timeout"), http("https://api.doppler.com/v3/projects", False, "connect_timeout"),
                 http("https://ghcr.io/v2/", False, "tls_handshake_timeout", big=True)]),
    doc("pull", [pull("ghcr.io/fluxcd/helm-controller:v1.5.1", False, "tls_handshake_timeout", manifest=True)]),
    sweep("ghcr.io:443", "black-hole", 1240),
]


def series(text: str) -> set[str]:
    """Every sample's name and labels, without its value."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def value(text: str, name: str, **labels: str) -> str:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines()
             if line.startswith(name + "{") and all(w in line.split("{", 1)[1] for w in want)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_promtool_accepts_the_exposition_of_the_fixtures(tmp_path):
    text = metrics.render({"cp1": PLAN_DOCS_BAD, "pve": PLAN_DOCS_OK}, {"cp1": "node", "pve": "reference"})
    done = promtool.run("check", "metrics", stdin=text)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_would_refuse_a_counter_without_total():
    """The check has teeth: the same text with a counter renamed off `_total` fails it (exit 3)."""
    text = metrics.render({"cp1": PLAN_DOCS_OK}, {}).replace("netstab_probe_store_errors_total", "netstab_probe_store_errors")
    done = promtool.run("check", "metrics", stdin=text)
    assert done.returncode == 3 and "_total" in done.stdout + done.stderr


def test_which_series_exist_never_depends_on_the_outcome():
    good = metrics.render({"cp1": PLAN_DOCS_OK}, {})
    bad = metrics.render({"cp1": PLAN_DOCS_BAD}, {})
    assert series(good) == series(bad)
    assert good != bad


def test_every_result_and_phase_is_precreated_at_zero():
    text = metrics.render({"cp1": PLAN_DOCS_OK}, {})
    for result in agent.RESULTS:
        assert value(text, "netstab_probe_attempts_total", probe="http", target="ghcr.io/v2/", result=result) == ("1" if result == "ok" else "0")
    for phase in agent.PHASES:
        assert value(text, "netstab_probe_phase_duration_seconds_count", probe="http", target="ghcr.io/v2/", phase=phase) == "1"
    assert value(text, "netstab_probe_phase_duration_seconds_count", probe="manifest", phase="total") == "1"
    assert 'probe="manifest",target="ghcr.io/fluxcd/helm-controller:v1.5.1",phase="tls"' not in text  # pulls time only their total


def test_counts_are_the_documents():
    text = metrics.render({"cp1": PLAN_DOCS_BAD + PLAN_DOCS_OK}, {})
    assert value(text, "netstab_probe_attempts_total", probe="http", target="ghcr.io/v2/", result="tls_handshake_timeout") == "1"
    assert value(text, "netstab_probe_attempts_total", probe="http_big_hello", target="ghcr.io/v2/", result="tls_handshake_timeout") == "1"
    assert value(text, "netstab_probe_attempts_total", probe="http", target="api.doppler.com/v3/projects", result="connect_timeout") == "1"
    assert value(text, "netstab_probe_attempts_total", probe="manifest", result="tls_handshake_timeout") == "1"
    assert value(text, "netstab_probe_sweeps_total", target="ghcr.io", path="direct", verdict="black-hole") == "1"
    assert value(text, "netstab_probe_sweep_black_hole", target="ghcr.io", path="direct") == "1"
    assert value(text, "netstab_probe_sweep_black_hole", target="api.doppler.com", path="direct") == "0"
    assert value(text, "netstab_probe_sweep_working_mss_bytes", target="ghcr.io", path="direct") == "1240"
    assert value(text, "netstab_probe_sweep_working_mss_bytes", target="api.doppler.com", path="direct") == "NaN"


def test_the_histogram_is_cumulative_and_bounded_from_both_sides():
    """tls 30 ms lands in le=0.05 and above, not in le=0.025."""
    text = metrics.render({"cp1": PLAN_DOCS_OK}, {})
    labels = {"probe": "http", "target": "ghcr.io/v2/", "phase": "tls"}
    assert value(text, "netstab_probe_phase_duration_seconds_bucket", **labels, le="0.025") == "0"
    assert value(text, "netstab_probe_phase_duration_seconds_bucket", **labels, le="0.05") == "1"
    assert value(text, "netstab_probe_phase_duration_seconds_bucket", **labels, le="+Inf") == "1"
    assert value(text, "netstab_probe_phase_duration_seconds_sum", **labels) == "0.03"


def test_last_run_timestamp_and_duration_come_from_the_newest_document():
    late = doc("http", [http("https://ghcr.io/v2/", True)], started="2026-12-06T06:00:00.000000Z", finished="2026-12-06T06:00:02.250000Z")
    text = metrics.render({"cp1": [*PLAN_DOCS_OK, late]}, {})
    assert float(value(text, "netstab_probe_last_run_timestamp_seconds")) == pytest.approx(1796536802.25)
    assert float(value(text, "netstab_probe_last_run_duration_seconds")) == pytest.approx(2.25)


def test_a_blob_host_sweep_counts_for_the_registry_that_redirected_there():
    docs = [doc("pull", [pull("docker.io/rancher/mirrored-library-busybox:1.37.0", False, "tls_handshake_timeout",
                              hosts=["registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com"])]),
            sweep("production.cloudflare.docker.com:443", "black-hole", 1200)]
    text = metrics.render({"cp1": docs}, {})
    assert value(text, "netstab_probe_sweep_black_hole", target="registry-1.docker.io", path="blob-redirect") == "1"
    assert "cloudflare" not in text  # a name a registry chose is no label


def test_label_values_come_only_from_the_plan_and_the_enums():
    """A class the agent does not know and a sweep to a host nobody planned add no label value."""
    odd = doc("http", [http("https://ghcr.io/v2/", False, "martian_error")])
    text = metrics.render({"cp1": [*PLAN_DOCS_OK, odd, sweep("elsewhere.example:443", "black-hole", 1000)]}, {})
    values = set(re.findall(r'="([^"]*)"', text))
    allowed = {"cp1", "node", "http", "http_big_hello", "manifest", "ghcr.io/v2/", "api.doppler.com/v3/projects",
               "ghcr.io/fluxcd/helm-controller:v1.5.1", "ghcr.io", "api.doppler.com", "+Inf", *agent.RESULTS, *agent.PHASES,
               *agent.SWEEP_VERDICTS, *agent.SWEEP_PATHS} | {agent.number(float(b)) for b in agent.BUCKETS_S}
    assert values <= allowed, values - allowed
    assert "martian" not in text and "elsewhere" not in text
    assert value(text, "netstab_probe_attempts_total", probe="http", target="ghcr.io/v2/", result="bad_response") == "1"


def test_every_family_has_one_help_from_the_one_table():
    text = metrics.render({"cp1": PLAN_DOCS_BAD}, {})
    helps = re.findall(r"^# HELP (\S+) (.*)$", text, re.M)
    assert [name for name, _ in helps] == [agent.METRIC_PREFIX + name for name in agent.METRICS]
    assert all(text_ == agent.METRICS[name[len(agent.METRIC_PREFIX):]][1] for name, text_ in helps)
    counters = [name for name, (kind, _) in agent.METRICS.items() if kind == "counter"]
    assert counters and all(name.endswith("_total") for name in counters)


def test_label_values_are_escaped():
    assert agent.escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_the_cli_prints_it_and_names_hosts(tmp_path, capsys):
    (tmp_path / "cp1.json").write_text(json.dumps(PLAN_DOCS_BAD))
    (tmp_path / "pve.json").write_text(json.dumps(PLAN_DOCS_OK))
    assert main(["metrics", f"cp1={tmp_path / 'cp1.json'}", str(tmp_path / "pve.json"), "--host", "pve", "--reference", "pve"]) == 0
    out = capsys.readouterr().out
    assert 'host="cp1",role="node"' in out and 'host="pve",role="reference"' in out


@pytest.mark.parametrize("content,message", [("{", "not JSON"), ('{"schema": "x"}', "not a netstab.probe/v1")])
def test_the_cli_refuses_what_it_cannot_read(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["metrics", str(bad)]) == 2
    assert message in capsys.readouterr().err


def test_last_success_is_the_newest_ok_attempt_or_the_first_run_before_any():
    docs = [doc("http", [http("https://api.doppler.com/v3/projects", True, at="2026-12-06T05:00:00.000000Z"),
                         http("https://ghcr.io/v2/", False, "tls_handshake_timeout", at="2026-12-06T05:00:00.000000Z")]),
            doc("http", [http("https://api.doppler.com/v3/projects", False, "connect_timeout", at="2026-12-06T05:05:00.000000Z"),
                         http("https://ghcr.io/v2/", False, "tls_handshake_timeout", at="2026-12-06T05:05:00.000000Z")])]
    text = metrics.render({"cp1": docs}, {}, interval=60)
    first = 1796533200.0  # 2026-12-06T05:00:00Z
    assert float(value(text, "netstab_probe_last_success_timestamp_seconds", target="api.doppler.com/v3/projects")) == first
    assert float(value(text, "netstab_probe_last_success_timestamp_seconds", target="ghcr.io/v2/")) == first  # never: since the first run
    assert value(text, "netstab_probe_interval_seconds") == "60"
