"""`python -m probes metrics [--host NAME] [--role ROLE] [--reference HOST] DOC...`

Prints the Prometheus text exposition of `netstab.probe/v1` documents: attempts by host, probe,
target and result (counters), per-phase latency (histogram), mss-sweep verdicts and the last
working MSS per target, the last run's timestamp and duration. A DOC is a file with one document
or a JSON list of them, or HOST=FILE to name its host; without a HOST the document's hostname is
the `host` label (--host overrides it). The series are the agent's own (`probes/agent.py`,
section "metrics"): the cycle runner on the nodes writes the same families, with the same HELP.

Exit 0, or 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from probes import agent
from probes.evidence import EvidenceError, collect


class MetricsUsageError(Exception):
    pass


def add_parser(sub: Any) -> None:
    m = sub.add_parser("metrics", help="Prometheus text exposition of probe documents", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("documents", nargs="+", metavar="DOC")
    m.add_argument("--host", help="the host label for documents given without HOST=")
    m.add_argument("--role", choices=agent.ROLES, default="node", help="the role label of every host (default node)")
    m.add_argument("--reference", action="append", default=[], metavar="HOST", help="a host whose role is reference; repeatable")
    m.add_argument("--interval", type=float, default=300.0, metavar="S", help="the probe interval the documents were taken at (default 300)")


def load(pairs: list[str], default_host: str | None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for pair in pairs:
        host, sep, file = pair.partition("=")
        if not sep:
            host, file = "", pair
        try:
            data = json.loads(Path(file).read_text())
        except OSError as exc:
            raise MetricsUsageError(f"{file}: cannot read it: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MetricsUsageError(f"{file}: not JSON ({exc})") from None
        docs = data if isinstance(data, list) else [data]
        try:
            collect({host or file: docs})
        except EvidenceError as exc:
            raise MetricsUsageError(f"{file}: {exc}") from None
        for doc in docs:
            name = host or default_host or str((doc.get("host") or {}).get("hostname") or "")
            if not name:
                raise MetricsUsageError(f"{file}: the document names no host: give HOST={file} or --host")
            out.setdefault(name, []).append(doc)
    return out


def render(evidence: dict[str, list[dict[str, Any]]], roles: dict[str, str], interval: float | None = 300.0) -> str:
    """One exposition for every host's documents (counters from zero at the first document)."""
    views = []
    for host, docs in evidence.items():
        plan = agent.plan_of(docs)
        state = agent.new_state()
        agent.account(state, docs, plan, agent.blob_hosts_of(docs))
        times = [agent.document_times(d) for d in docs]
        finished = [t for t in times if t[0] is not None]
        last = max(finished, key=lambda t: t[0] or 0.0) if finished else (None, None)
        views.append(agent.HostView(host, roles.get(host, "node"), state, plan, last[0], last[1], interval))
    return agent.exposition(views)


def run(args: argparse.Namespace) -> str:
    evidence = load(args.documents, args.host)
    unknown = [h for h in args.reference if h not in evidence]
    if unknown:
        raise MetricsUsageError(f"--reference {', '.join(unknown)}: no document is from it")
    roles = {h: ("reference" if h in args.reference else args.role) for h in evidence}
    if not args.interval > 0:
        raise MetricsUsageError(f"--interval {args.interval:g}: not a positive number of seconds")
    return render(evidence, roles, args.interval)
