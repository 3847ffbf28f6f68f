"""The continuous probes' alert rules: `monitoring/rules.yaml` (a Prometheus rule file) and the same
group as a PrometheusRule (monitoring.coreos.com/v1) for clusters with the Prometheus operator.

Pure. The thresholds come from the judge's criteria (`probes.criteria.Criteria`), and every
annotation that names a duration renders it from the rule's own `for:` or threshold, so the text
cannot drift from what fires (the docs' AnotherInstanceDown says "5 minutes" of a `for: 10m`). The
series are the agent's (`probes/agent.py`, section "metrics"); staleness is `time()` against the
agent's own last-run timestamp, never `absent()`: a dead writer's textfile keeps its last values.
`tests/monitoring/rules_test.yaml` runs each alert through `promtool test rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from probes.criteria import Criteria
from probes.plan import DOPPLER_HOST

GROUP = "netstab-probes"
STALE_RUNS = 3  # a probe is stale after this many intervals without a run
HTTP = 'probe=~"http|http_big_hello"'
PULLS = 'probe=~"pull|manifest"'
FRESH = f"(time() - netstab_probe_last_run_timestamp_seconds) < {STALE_RUNS} * netstab_probe_interval_seconds"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str  # a Prometheus duration: 5m
    severity: str
    summary: str
    description: str

    def rule(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": self.for_, "labels": {"severity": self.severity},
                "annotations": {"summary": self.summary, "description": self.description}}


def minutes(duration: str) -> float:
    """`5m` -> 5.0, `1h` -> 60.0, `90s` -> 1.5: the unit the annotations speak."""
    match = re.fullmatch(r"(\d+)([smh])", duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration this module writes (N followed by s, m or h)")
    return int(match.group(1)) * {"s": 1 / 60, "m": 1, "h": 60}[match.group(2)]


def _min(value: float) -> str:
    return f"{value:g} minute{'' if value == 1 else 's'}"


def alerts(criteria: Criteria | None = None) -> tuple[Alert, ...]:
    c = criteria or Criteria()
    doppler = re.escape(DOPPLER_HOST).replace("\\", "\\\\")  # a PromQL string: its backslashes escaped once more
    tolerance_s = round(c.max_doppler_failure_minutes * 60)
    pull_failure = round(1 - c.min_pull_success, 6)
    window = "15m"
    stall = f'increase(netstab_probe_attempts_total{{{{role}}{HTTP},result="tls_handshake_timeout"}}[{window}])'
    vm_stall, ref_stall = stall.replace("{role}", 'role!="reference",'), stall.replace("{role}", 'role="reference",')
    ref_ok = f'increase(netstab_probe_attempts_total{{role="reference",{HTTP},result="ok"}}[{window}])'
    out = [
        Alert("NetstabHandshakeTimeoutsFromVMs",
              f"sum by (host, target) ({vm_stall}) > 0\n"
              f"and on (target) sum by (target) ({ref_ok}) > 0\n"
              f"unless on (target) sum by (target) ({ref_stall}) > 0",
              "5m", "warning",
              "TLS handshakes to {{ $labels.target }} time out from {{ $labels.host }} while the Proxmox host completes them",
              f"{{{{ $value }}}} handshake timeout(s) in the last {_min(minutes(window))}, for {_min(minutes('5m'))} now, while the "
              "reference host completed handshakes to the same target: the VM subnet's egress (MSS clamp, PMTU black hole). "
              "Run `python -m probes history` on the store, or mss-sweep from the node."),
        Alert("NetstabBlackHole",
              'max by (host, target, path) (increase(netstab_probe_sweeps_total{verdict="black-hole"}[30m])) > 0',
              "1m", "critical",
              "mss-sweep from {{ $labels.host }} found a PMTU black hole toward {{ $labels.target }} ({{ $labels.path }})",
              f"An mss-sweep after a stalled handshake found a PMTU black hole in the last {_min(minutes('30m'))}: large segments "
              "vanish and no ICMP says so. netstab_probe_sweep_working_mss_bytes has the MSS that works; clamp to it "
              "(pulumi config set --path netstab:gateway.mss N)."),
        Alert("NetstabDopplerFailing",
              f'(time() - netstab_probe_last_success_timestamp_seconds{{target=~"{doppler}/.*"}}) > {tolerance_s}\n'
              f"and on (host) {FRESH}",
              "1m", "critical",
              f"{DOPPLER_HOST} has failed from {{{{ $labels.host }}}} ({{{{ $labels.probe }}}}) for longer than "
              f"{_min(c.max_doppler_failure_minutes)}",
              f"No request to {{{{ $labels.target }}}} succeeded for {{{{ $value | humanizeDuration }}}}: longer than the plan "
              f"tolerates ({_min(c.max_doppler_failure_minutes)}, criteria max_doppler_failure_minutes), while the probe itself "
              "runs: External Secrets cannot refresh."),
        Alert("NetstabPullsFailing",
              f"sum by (host) (increase(netstab_probe_attempts_total{{{PULLS},result!=\"ok\"}}[1h]))\n"
              f"/ sum by (host) (increase(netstab_probe_attempts_total{{{PULLS}}}[1h])) > {pull_failure:g}",
              "15m", "warning",
              "Image pulls fail on {{ $labels.host }}",
              f"{{{{ $value | humanizePercentage }}}} of the manifest checks and pulls from {{{{ $labels.host }}}} failed in the last "
              f"{_min(minutes('1h'))}, for {_min(minutes('15m'))} now (the plan allows {pull_failure:.0%}, criteria min_pull_success)."),
        Alert("NetstabProbeStale",
              f"(time() - netstab_probe_last_run_timestamp_seconds) > {STALE_RUNS} * netstab_probe_interval_seconds",
              "5m", "warning",
              "netstab's probe on {{ $labels.host }} has not run for {{ $value | humanizeDuration }}",
              f"No probe run finished for more than {STALE_RUNS} intervals (for {_min(minutes('5m'))} now): its timer is stopped, "
              "the run hangs, or the metrics file cannot be written (netstab_probe_store_errors_total). Its other series "
              "keep their last values: check `systemctl status netstab-probe.timer` on the host."),
    ]
    return tuple(out)


def rule_group(criteria: Criteria | None = None) -> dict[str, Any]:
    return {"name": GROUP, "rules": [a.rule() for a in alerts(criteria)]}


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, so the rule file reads as PromQL."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000)


HEADER = "# Generated by `python -m components alerts` from components/render/alerts.py: edit that, then `make monitoring`.\n"


def rules_yaml(criteria: Criteria | None = None) -> str:
    return HEADER + _dump({"groups": [rule_group(criteria)]})


def prometheus_rule(namespace: str = "monitoring", criteria: Criteria | None = None) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": GROUP, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "netstab"}},
            "spec": {"groups": [rule_group(criteria)]}}


def prometheus_rule_yaml(namespace: str = "monitoring", criteria: Criteria | None = None) -> str:
    return HEADER + _dump(prometheus_rule(namespace, criteria))
