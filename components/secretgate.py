"""SecretGate: a Pulumi dynamic resource that waits for the generated Secrets bootstrap needs.

For each critical ExternalSecret it waits until its target Secret exists with every expected key
(key names only: values are never read into logs, outputs or errors), force-syncing the
ExternalSecret at a bounded interval, bounded by a timeout. It talks to the Kubernetes API with
`requests` from the kubeconfig (no kubectl). The provider holds no secrets: the kubeconfig arrives
as a (secret) input and leaves no trace in the outputs. Errors read as a diagnosis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult

from components.gate import GateProvider, cluster_of, digest
from components.kubeapi import GateError, KubeApi
from components.kubeconfig import KubeconfigError, parse
from components.sdkvalues import unwrap

FORCE_SYNC = "external-secrets.io/force-sync"
ESO = "/apis/external-secrets.io/v1"


def secret_keys(api: KubeApi, namespace: str, name: str) -> set[str] | None:
    """Key names of a Secret, or None when it does not exist. Values are dropped unread."""
    _, doc = api.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
    if doc is None:
        return None
    return set((doc.get("data") or {}).keys()) | set((doc.get("stringData") or {}).keys())


def force_sync(api: KubeApi, namespace: str, name: str, now: float) -> None:
    api.request("PATCH", f"{ESO}/namespaces/{namespace}/externalsecrets/{name}", {"metadata": {"annotations": {FORCE_SYNC: str(int(now))}}})


def ready_condition(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "not found"
    for cond in (doc.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return f"Ready={cond.get('status')} reason={cond.get('reason', '-')}: \"{cond.get('message', '')}\""
    return "no Ready condition yet (the operator has not reconciled it)"


def wait(api: KubeApi, spec: dict[str, Any], clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
         wall: Callable[[], float] = time.time) -> dict[str, Any]:
    """Wait for every critical Secret; return per Secret the time to ready and the force-syncs."""
    start = clock()
    deadline = start + float(spec["timeout_s"])
    interval = float(spec["force_sync_interval_s"])
    pending = {f"{s['namespace']}/{s['target']}": s for s in spec["critical"]}
    results: dict[str, dict[str, Any]] = {key: {"seconds_to_ready": None, "force_syncs": 0} for key in pending}
    last_sync: dict[str, float] = {}
    missing: dict[str, list[str]] = {}
    while True:
        for key, item in list(pending.items()):
            keys = secret_keys(api, item["namespace"], item["target"])
            missing[key] = sorted(set(item["keys"]) - (keys or set())) if keys is not None else list(item["keys"])
            if keys is not None and not missing[key]:
                results[key]["seconds_to_ready"] = round(clock() - start, 1)
                del pending[key]
        now = clock()
        if not pending:
            return {"secrets": results}
        if now >= deadline:
            raise GateError(diagnosis(api, spec, pending, missing, results))
        for key, item in pending.items():
            if now - last_sync.get(key, -1e9) >= interval:
                force_sync(api, item["namespace"], item["name"], wall())
                results[key]["force_syncs"] += 1
                last_sync[key] = now
        sleep(max(0.05, min(2.0, deadline - now)))


def diagnosis(api: KubeApi, spec: dict[str, Any], pending: dict[str, dict[str, Any]], missing: dict[str, list[str]],
              results: dict[str, dict[str, Any]]) -> str:
    lines = [f"netstab secret gate: {len(pending)} of {len(spec['critical'])} bootstrap Secrets not ready after {float(spec['timeout_s']):g}s"]
    for key, item in pending.items():
        _, es = api.request("GET", f"{ESO}/namespaces/{item['namespace']}/externalsecrets/{item['name']}")
        what = "Secret does not exist" if secret_keys(api, item["namespace"], item["target"]) is None else "keys missing"
        lines.append(f"- {key} (ExternalSecret {item['name']}): {what}: {', '.join(missing.get(key, item['keys']))}")
        lines.append(f"  ExternalSecret {ready_condition(es)}; force-synced {results[key]['force_syncs']} times")
    _, store = api.request("GET", f"{ESO}/clustersecretstores/{spec['store']}")
    lines.append(f"- ClusterSecretStore {spec['store']}: {ready_condition(store)}")
    lines.append(f"Check Doppler from a node: {spec['probe_hint']}")
    return "\n".join(lines)


class SecretGateProvider(GateProvider):
    id_prefix = "gate"

    def fingerprint(self, props: dict[str, Any]) -> str:
        """The spec and which cluster: a changed spec or cluster re-runs the wait in place."""
        return digest(props.get("spec"), cluster_of(props))

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        spec = news.get("spec") or {}
        if not spec.get("critical"):
            failures.append(CheckFailure("spec", "no critical ExternalSecrets: nothing for the gate to wait for"))
        for item in spec.get("critical") or []:
            if not item.get("keys"):
                failures.append(CheckFailure("spec", f"{item.get('namespace')}/{item.get('target')} lists no keys to wait for"))
        if float(spec.get("timeout_s") or 0) <= 0:
            failures.append(CheckFailure("spec", "timeout_s must be positive"))
        return CheckResult(news, failures)

    def judge(self, props: dict[str, Any]) -> dict[str, Any]:
        try:
            access = parse(str(unwrap(props["kubeconfig"])))
        except KubeconfigError as exc:
            raise GateError(f"netstab secret gate: {exc}") from None
        api = KubeApi(access, "netstab secret gate")
        try:
            outs = wait(api, props["spec"])
        finally:
            api.close()
        return outs


class SecretGate(pulumi.dynamic.Resource):
    secrets: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, kubeconfig: pulumi.Input[str], spec: dict[str, Any], opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            SecretGateProvider(),
            name,
            {"kubeconfig": pulumi.Output.secret(kubeconfig), "spec": spec, "secrets": None, "fingerprint": None},
            opts,
        )
