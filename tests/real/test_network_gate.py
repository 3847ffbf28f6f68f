"""NetworkGate's provider served by the real dynamic-provider host, driven over gRPC, on evidence
recorded from the lab: it fails on the black hole with the grouped diagnosis and the exact clamp,
and passes on the evidence after the verified fix."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2

from components.config import CriteriaConfig
from components.networkgate import NetworkGateProvider
from probes.gate import RUN_SCHEMA
from tests.real.conftest import struct, unstruct

URN = "urn:pulumi:test::netstab::pulumi-python:dynamic:Resource::validation-network-gate"
FIXTURES = Path(__file__).resolve().parents[1] / "probes" / "fixtures"


def runs(evidence: dict[str, list], notes: dict[str, list[str]] | None = None) -> dict[str, str]:
    """The probe runs' stdout, one per vantage point, as the rendered probe script prints them (pve is the Proxmox host)."""
    named = {("proxmox" if host == "pve" else host): docs for host, docs in evidence.items()}
    return {point: json.dumps({"schema": RUN_SCHEMA, "vantage_point": point, "documents": docs, "notes": (notes or {}).get(point, [])})
            for point, docs in named.items()}


def props(tmp_path: Path, evidence_runs: dict[str, str], mode: str = "enforce", source: str = "auto", mss: int = 1360) -> dict:
    spec = {"mode": mode, "criteria": CriteriaConfig().judge_criteria(), "reference": ["proxmox"], "report_dir": str(tmp_path / "report"),
            "gateway_mss": mss, "mss_source": source, "remeasure": 0, "stack": "homelab"}
    return {"__provider": serialize_provider(NetworkGateProvider()), "runs": evidence_runs, "spec": spec, "run_id": "r1"}


def create(stub, p: dict) -> dict:
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(p)))
    assert not checked.failures, checked.failures
    return unstruct(stub.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs), timeout=60).properties)


@pytest.fixture(scope="module")
def blackhole() -> dict:
    return json.loads((FIXTURES / "blackhole.json").read_text())


def test_the_black_hole_fails_the_deploy_with_the_grouped_diagnosis_and_the_exact_clamp(host, tmp_path, blackhole):
    with pytest.raises(grpc.RpcError) as caught:
        create(host[0], props(tmp_path, runs(blackhole["evidence"])))
    message = caught.value.details()
    assert "netstab network gate (stack homelab): FAIL: pmtu-black-hole" in message.splitlines()[0]
    assert "MSS fix: applies; clamp 1240" in message
    assert "failures (class x target: host failed/attempts):" in message and "pull failures (image x node):" in message
    assert "the reference host (proxmox) passes while VM nodes fail" in message
    assert ("fix: clamp the VM subnet's TCP MSS at the gateway to 1240: re-measure it: pulumi config set --path "
            "netstab:gateway.remeasure 1, then pulumi up") in message, "the fix is said the way this stack (pathMtu: auto) takes it"
    assert "the gateway clamps to MSS 1360, the nodes now measure 1240: the path changed since the clamp was set" in message
    assert "netstab:gateway.mss" not in message
    assert "Traceback" not in message
    assert f"(report and evidence: {tmp_path / 'report' / 'REPORT.md'}; with charts: {tmp_path / 'report' / 'report.html'})" in message
    report = (tmp_path / "report" / "REPORT.md").read_text()
    assert "# netstab network gate: stack homelab" in report and "**FAIL**" in report
    for chart in ("mss-sweep", "phases", "pulls", "failures"):  # beside REPORT.md: the page and each chart it links
        assert f"(chart-{chart}.svg)" in report and (tmp_path / "report" / f"chart-{chart}.svg").read_text().startswith("<svg")
    assert "<figure class=\"chart\" id=\"mss-sweep\">" in (tmp_path / "report" / "report.html").read_text()
    assert json.loads((tmp_path / "report" / "cp1.json").read_text())[0]["schema"] == "netstab.probe/v1"


def test_after_the_fix_the_gate_passes_with_its_summary_table(host, tmp_path, blackhole):
    outs = create(host[0], props(tmp_path, runs(blackhole["after"]), mss=1240))
    assert outs["verdict"] == "pass" and outs["kind"] == "healthy"
    cells = {(row["host"], row["target"]) for row in outs["table"]}
    assert ("cp1", "ghcr.io/v2/") in cells and ("proxmox", "ghcr.io/v2/") in cells
    assert (tmp_path / "report" / "REPORT.md").exists()


def test_warn_mode_returns_the_failing_verdict_instead_of_failing(host, tmp_path, blackhole):
    outs = create(host[0], props(tmp_path, runs(blackhole["evidence"]), mode="warn", source="path_mtu"))
    assert outs["verdict"] == "fail" and outs["recommended_clamp"] == 1240
    assert "pulumi config set --path netstab:gateway.pathMtu 1280" in outs["text"]


def test_a_probe_run_that_printed_nothing_is_named(host, tmp_path, blackhole):
    broken = {**runs(blackhole["after"]), "worker1": "python3: command not found"}
    with pytest.raises(grpc.RpcError) as caught:
        create(host[0], props(tmp_path, broken))
    assert "netstab network gate: the probe run on worker1 printed no result ('python3: command not found')" in caught.value.details()


def test_what_did_not_run_in_the_budget_makes_a_healthy_path_a_warning(host, tmp_path, blackhole):
    outs = create(host[0], props(tmp_path, runs(blackhole["after"], {"cp1": ["mss-sweep: not run, the 120s budget was spent"]}), mss=1240))
    assert outs["verdict"] == "warn" and "cp1: mss-sweep: not run" in json.dumps(outs)


def test_an_unreadable_document_fails_the_gate_saying_where_without_a_traceback(host, tmp_path, blackhole):
    bad = [{**doc, "records": [{"target": "https://ghcr.io/v2/", "ok": True, "phases_ms": {"tls": "fast"}}]}
           for doc in blackhole["after"]["cp1"][:1]]
    with pytest.raises(grpc.RpcError) as caught:
        create(host[0], props(tmp_path, runs({**blackhole["after"], "cp1": bad})))
    assert ("netstab network gate: the evidence is unreadable: cp1, document 1: malformed: could not convert string to float: 'fast'"
            in caught.value.details()) and "Traceback" not in caught.value.details()


def test_the_next_up_judges_again_in_place_and_an_unchanged_one_does_not(host, tmp_path, blackhole):
    """The second `pulumi up`: a new run id (validation.run: always) or probe runs not known yet (a
    preview, where they are replaced) update the gate in place; the same inputs change nothing."""
    from components.sdkvalues import UNKNOWN

    stub = host[0]
    p = props(tmp_path, runs(blackhole["after"]), mss=1240)
    checked = stub.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(p)))
    created = stub.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs), timeout=60)

    def diff(news: dict) -> provider_pb2.DiffResponse:
        return stub.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=struct(news)))

    same = diff(p)
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE and not same.replaces
    for news in (dict(p, run_id="r2"), dict(p, runs={point: UNKNOWN for point in p["runs"]})):
        changed = diff(news)
        assert changed.changes == provider_pb2.DiffResponse.DIFF_SOME and not changed.replaces and not changed.deleteBeforeReplace


def test_every_failed_run_leaves_a_new_nonce_and_a_pass_leaves_it(host, tmp_path, blackhole):
    """With validation.run: on-change the run id covers the nonce (components/validation.py): the up after a
    failure probes again; the up after a pass is quiet again."""
    from components.gate import last_failure

    report = tmp_path / "report"
    assert last_failure(report) == ""
    with pytest.raises(grpc.RpcError):
        create(host[0], props(tmp_path, runs(blackhole["evidence"])))
    first = last_failure(report)
    outs = create(host[0], props(tmp_path, runs(blackhole["evidence"]), mode="warn"))
    assert outs["verdict"] == "fail"
    second = last_failure(report)
    assert len(first) == len(second) == 32 and first != second, "a failure in warn mode counts too"
    create(host[0], props(tmp_path, runs(blackhole["after"]), mss=1240))
    assert last_failure(report) == second
