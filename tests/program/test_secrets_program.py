"""The secrets layer under mocks: provider, ordering, no waiting on Doppler, the token a secret."""

from __future__ import annotations

import pytest

from tests.conftest import DYNAMIC, EXTERNAL_SECRET, SECRET_STORE
from tests.program.harness import DUMMY_SECRETS, SECRET_SIG, run_program


def k8s_resources(recording):
    return [r for r in recording.resources if r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers")]


def test_every_kubernetes_resource_uses_the_cluster_provider(homelab_run):
    provider = homelab_run.named("secrets-cluster")
    assert provider.type == "pulumi:providers:kubernetes"
    assert provider.inputs["deleteUnreachable"] == "true" or provider.inputs["deleteUnreachable"] is True
    assert SECRET_SIG in provider.inputs["kubeconfig"], "the kubeconfig must stay a secret"
    resources = k8s_resources(homelab_run)
    assert len(resources) >= 6
    for r in resources:
        assert r.provider.startswith(provider.urn), f"{r.urn} does not use the cluster provider"


def test_crds_before_store_before_external_secrets(homelab_run):
    chart = homelab_run.named("secrets-external-secrets")
    store = homelab_run.of_type(SECRET_STORE)[0]
    assert homelab_run.depends_on(store, chart), "the store needs the operator's CRDs"
    for es in homelab_run.of_type(EXTERNAL_SECRET):
        assert homelab_run.depends_on(es, store), f"{es.urn} must come after the store"


def test_the_store_and_external_secrets_are_not_awaited(homelab_run):
    for r in [*homelab_run.of_type(SECRET_STORE), *homelab_run.of_type(EXTERNAL_SECRET)]:
        assert r.inputs["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true", r.urn


def test_nothing_but_the_gate_depends_on_the_store_or_external_secrets(homelab_run):
    watched = {r.urn for r in [*homelab_run.of_type(SECRET_STORE), *homelab_run.of_type(EXTERNAL_SECRET)]}
    for r in homelab_run.resources:
        if r.urn in watched or r.type == DYNAMIC:
            continue
        for other in watched:
            blocked = homelab_run.depends_on(r, next(x for x in homelab_run.resources if x.urn == other))
            if blocked:
                assert r.type == EXTERNAL_SECRET, f"{r.urn} waits on {other}: only ExternalSecrets (on the store) and the gate may"


def test_the_gate_waits_only_for_the_critical_external_secrets(homelab_run):
    gate = homelab_run.named("secrets-gate")
    critical = homelab_run.named("secrets-es-cattle-system-rancher-bootstrap")
    optional = homelab_run.named("secrets-es-tailscale-tailscale-operator-oauth")
    assert homelab_run.depends_on(gate, critical) and not homelab_run.depends_on(gate, optional)
    spec = gate.inputs["spec"]
    assert spec["critical"] == [{"namespace": "cattle-system", "name": "rancher-bootstrap", "target": "bootstrap-secret", "keys": ["bootstrapPassword"]}]
    assert SECRET_SIG in gate.inputs["kubeconfig"]


def test_the_doppler_token_appears_only_as_a_secret(homelab_run):
    token = homelab_run.named("secrets-doppler-token")
    assert SECRET_SIG in token.inputs["stringData"] or SECRET_SIG in token.inputs["stringData"]["dopplerToken"]
    for r in homelab_run.resources:
        assert DUMMY_SECRETS["dopplerToken"] not in r.plain_text(), r.urn


def test_a_second_run_with_the_same_config_registers_identical_inputs(homelab_raw):
    first, second = run_program(homelab_raw), run_program(homelab_raw)

    def inputs(rec):
        # the post-up gates take a new run id on every `pulumi up` by design (validation.run: always): compared apart
        return {r.urn: {k: v for k, v in r.inputs.items() if k not in ("__provider", "run_id")}
                for r in rec.resources if r.type.startswith(("kubernetes", "pulumi-python"))}

    assert inputs(first) == inputs(second)
    gates = [r.name for r in first.of_type(DYNAMIC) if "run_id" in r.inputs]
    assert sorted(gates) == ["validation-cluster-gate", "validation-network-gate"]
    assert all(first.named(g).inputs["run_id"] != second.named(g).inputs["run_id"] for g in gates)


def test_a_missing_doppler_token_names_the_command(homelab_raw):
    secrets = {k: v for k, v in DUMMY_SECRETS.items() if k != "dopplerToken"}
    with pytest.raises(SystemExit, match="netstab:dopplerToken: missing secret; set it with: pulumi config set --secret netstab:dopplerToken"):
        run_program(homelab_raw, secrets=secrets)


def test_with_the_operator_managed_elsewhere_only_the_objects_are_managed(homelab_raw):
    homelab_raw["secrets"]["operator"] = {"install": False}
    recording = run_program(homelab_raw)
    assert not [r for r in recording.resources if "Chart" in r.type]
    assert recording.of_type(SECRET_STORE)
