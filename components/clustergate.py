"""ClusterGate: the plan's Phase 5 on the Kubernetes side, as a Pulumi dynamic resource.

It reads the cluster through the Kubernetes API (requests, the kubeconfig; see kubeapi.py) and
judges, apart from each other:
- Flux sources (GitRepository, OCIRepository, HelmRepository, HelmChart, Bucket): a source that
  fails while its artifact is still in storage and every HelmRelease that uses it is Ready is a
  warning (the cached artifact is enough), otherwise a failure;
- HelmRelease readiness: Ready=False fails; not yet reconciled is a warning;
- image pulls: pods waiting in ErrImagePull/ImagePullBackOff fail; pull failures only in Events
  (since recovered) warn; both grouped by image x node.
When Flux is absent (its APIs answer 404) the Flux checks say so and pass. External Secrets stay
with SecretGate. The judgement is pure (`judge_cluster`); only `read_cluster` talks to the API.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult

from components.gate import GateProvider, cluster_of, digest, record_failure
from components.kubeapi import ApiUnreachable, GateError, KubeApi
from components.kubeconfig import KubeconfigError, parse
from components.sdkvalues import unwrap

WHO = "netstab cluster gate"
SOURCES = {  # kind -> collection path (Flux 2.x, source.toolkit.fluxcd.io/v1)
    "GitRepository": "/apis/source.toolkit.fluxcd.io/v1/gitrepositories",
    "OCIRepository": "/apis/source.toolkit.fluxcd.io/v1/ocirepositories",
    "HelmRepository": "/apis/source.toolkit.fluxcd.io/v1/helmrepositories",
    "HelmChart": "/apis/source.toolkit.fluxcd.io/v1/helmcharts",
    "Bucket": "/apis/source.toolkit.fluxcd.io/v1/buckets",
}
HELM_RELEASES = "/apis/helm.toolkit.fluxcd.io/v2/helmreleases"
PODS = "/api/v1/pods"
EVENTS = "/api/v1/events"
PULL_WAITING = ("ErrImagePull", "ImagePullBackOff")
PULL_EVENT = re.compile(r'Failed to pull image "([^"]+)"')
# A server that restarts in a rolling change may still be coming back when the gate reads: a refused or
# timed-out connection is retried within this bound (TLS and credential errors are not: they do not heal).
API_WAIT_S = 180
RETRY_S = 5.0


@dataclass(frozen=True)
class ClusterState:
    """What the gate read: None for a kind whose API is not installed."""

    sources: dict[str, list[dict[str, Any]] | None]
    helm_releases: list[dict[str, Any]] | None
    pods: list[dict[str, Any]]
    events: list[dict[str, Any]]


@dataclass
class Finding:
    level: str  # "warn" or "fail"
    section: str  # "flux sources", "helm releases", "image pulls"
    text: str


@dataclass
class ClusterVerdict:
    verdict: str  # pass, warn, fail
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pull_failures: dict[str, dict[str, int]] = field(default_factory=dict)  # image -> node -> failures seen

    def text(self) -> str:
        lines = [f"{WHO}: {self.verdict.upper()}"]
        lines += [f"  {note}" for note in self.notes]
        for section in ("flux sources", "helm releases", "image pulls"):
            found = [f for f in self.findings if f.section == section]
            if found:
                lines.append(f"{section}:")
                lines += [f"  {f.level.upper():<4} {f.text}" for f in found]
        return "\n".join(lines)

    def outputs(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "text": self.text(), "pull_failures": self.pull_failures,
                "findings": [{"level": f.level, "section": f.section, "text": f.text} for f in self.findings]}


def read_cluster(api: KubeApi) -> ClusterState:
    return ClusterState(
        sources={kind: api.items(path) for kind, path in SOURCES.items()},
        helm_releases=api.items(HELM_RELEASES),
        pods=api.items(PODS) or [],
        events=api.items(EVENTS) or [],
    )


def read_when_up(read: Callable[[], ClusterState], wait_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> ClusterState:
    """`read()`, retried while the API cannot be reached at all, for up to `wait_s`; then its error, saying how long it waited."""
    deadline = clock() + wait_s
    while True:
        try:
            return read()
        except ApiUnreachable as exc:
            left = deadline - clock()
            if left <= 0:
                raise ApiUnreachable(f"{exc} (retried for {wait_s:g}s)") from None
            sleep(min(RETRY_S, left))


def _ready(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, "reason: message") of the Ready condition; ("Unknown", ...) when there is none yet."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status")), f"{cond.get('reason', '-')}: {cond.get('message', '')}".strip()
    return "Unknown", "not reconciled yet"


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '-')}/{meta.get('name', '?')}"


def _sources_of(release: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, namespace/name) of every source a HelmRelease takes its chart from: its chartRef or its
    chart template's sourceRef, and the HelmChart the controller generated for a template, which the
    release names in status.helmChart as "namespace/name" (Flux helm-controller API v2)."""
    spec = release.get("spec") or {}
    namespace = (release.get("metadata") or {}).get("namespace", "-")
    found = set()
    ref = spec.get("chartRef") or ((spec.get("chart") or {}).get("spec") or {}).get("sourceRef")
    if ref and ref.get("kind") and ref.get("name"):
        found.add((str(ref["kind"]), f"{ref.get('namespace') or namespace}/{ref['name']}"))
    generated = (release.get("status") or {}).get("helmChart")
    if isinstance(generated, str) and "/" in generated:
        found.add(("HelmChart", generated))
    return found


def _judge_sources(state: ClusterState, out: ClusterVerdict) -> None:
    releases = state.helm_releases or []
    for kind, items in state.sources.items():
        for source in items or []:
            status, why = _ready(source)
            if status == "True":
                continue
            name = _name(source)
            users = [r for r in releases if (kind, name) in _sources_of(r)]
            cached = bool((source.get("status") or {}).get("artifact"))
            serving = cached and users and all(_ready(r)[0] == "True" for r in users)
            what = f"{kind} {name}: Ready={status} ({why})"
            if serving:
                out.findings.append(Finding("warn", "flux sources", f"{what}; its cached artifact still serves "
                                                                      f"{', '.join(_name(r) for r in users)}, all Ready"))
            else:
                reason = ("no artifact in storage" if not cached else "a HelmRelease that uses it is not Ready" if users
                          else "its cached artifact remains; no HelmRelease takes its chart from it")
                out.findings.append(Finding("fail" if not cached or users else "warn", "flux sources", f"{what}; {reason}"))


def _judge_releases(state: ClusterState, out: ClusterVerdict) -> None:
    for release in state.helm_releases or []:
        status, why = _ready(release)
        if status == "False":
            out.findings.append(Finding("fail", "helm releases", f"HelmRelease {_name(release)}: Ready=False ({why})"))
        elif status != "True":
            out.findings.append(Finding("warn", "helm releases", f"HelmRelease {_name(release)}: {why}"))


def _judge_pulls(state: ClusterState, out: ClusterVerdict) -> None:
    node_of = {_name(p): (p.get("spec") or {}).get("nodeName") or "(unscheduled)" for p in state.pods}
    stuck: dict[tuple[str, str], int] = {}
    for pod in state.pods:
        node = node_of[_name(pod)]
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in PULL_WAITING:
                image = str(status.get("image") or "?")
                stuck[(image, node)] = stuck.get((image, node), 0) + 1
    seen: dict[tuple[str, str], int] = {}
    for event in state.events:
        match = PULL_EVENT.search(str(event.get("message") or ""))
        if not match:
            continue
        involved = event.get("involvedObject") or {}
        node = node_of.get(f"{involved.get('namespace', '-')}/{involved.get('name', '?')}") or (event.get("source") or {}).get("host") or "?"
        seen[(match.group(1), node)] = seen.get((match.group(1), node), 0) + int(event.get("count") or 1)
    for (image, node), pods in sorted(stuck.items()):
        out.findings.append(Finding("fail", "image pulls", f"{image} on {node}: {pods} container(s) waiting in ErrImagePull/ImagePullBackOff"))
    for (image, node), count in sorted(seen.items()):
        if (image, node) not in stuck:
            out.findings.append(Finding("warn", "image pulls", f"{image} on {node}: {count} failed pull(s) in events, no pod waiting now"))
    for (image, node), count in {**seen, **{k: max(v, seen.get(k, 0)) for k, v in stuck.items()}}.items():
        out.pull_failures.setdefault(image, {})[node] = count


def judge_cluster(state: ClusterState) -> ClusterVerdict:
    out = ClusterVerdict("pass")
    if state.helm_releases is None and all(items is None for items in state.sources.values()):
        out.notes.append("Flux is not installed here (its APIs answer 404): no Flux sources or HelmReleases to check")
    else:
        _judge_sources(state, out)
        _judge_releases(state, out)
    _judge_pulls(state, out)
    levels = {f.level for f in out.findings}
    out.verdict = "fail" if "fail" in levels else "warn" if "warn" in levels else "pass"
    return out


class ClusterGateProvider(GateProvider):
    id_prefix = "cluster-gate"

    def fingerprint(self, props: dict[str, Any]) -> str:
        return digest(props.get("spec"), props.get("run_id"), cluster_of(props))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def judge(self, props: dict[str, Any]) -> dict[str, Any]:
        report_dir = props["spec"].get("report_dir")
        try:
            outs = self._judge(props)
        except GateError:
            if report_dir:
                record_failure(report_dir)
            raise
        if outs["verdict"] == "fail" and report_dir:
            record_failure(report_dir)
        return outs

    def _judge(self, props: dict[str, Any]) -> dict[str, Any]:
        try:
            access = parse(str(unwrap(props["kubeconfig"])))
        except KubeconfigError as exc:
            raise GateError(f"{WHO}: {exc}") from None
        enforce = props["spec"].get("mode", "enforce") == "enforce"
        checked_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        api = KubeApi(access, WHO)
        try:
            verdict = judge_cluster(read_when_up(lambda: read_cluster(api), float(props["spec"].get("api_wait_s", API_WAIT_S))))
        except GateError as exc:
            if enforce:
                raise
            # warn mode never fails the deploy: what stopped the gate is its (failing) verdict
            return {"verdict": "fail", "text": f"{WHO}: FAIL\n  {exc}", "findings": [], "pull_failures": {}, "checked_at": checked_at}
        finally:
            api.close()
        # which API answered: the VIP in an HA stack (the kubeconfig's server), so the report shows it
        verdict.notes.insert(0, f"read through the Kubernetes API at {access.server}")
        if verdict.verdict == "fail" and enforce:
            raise GateError(verdict.text())
        return {**verdict.outputs(), "checked_at": checked_at}


class ClusterGate(pulumi.dynamic.Resource):
    verdict: pulumi.Output[str]
    text: pulumi.Output[str]

    def __init__(self, name: str, kubeconfig: pulumi.Input[str], spec: dict[str, Any], run_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            ClusterGateProvider(), name,
            {"kubeconfig": pulumi.Output.secret(kubeconfig), "spec": spec, "run_id": run_id,
             "verdict": None, "text": None, "findings": None, "pull_failures": None, "fingerprint": None, "checked_at": None},
            opts,
        )
