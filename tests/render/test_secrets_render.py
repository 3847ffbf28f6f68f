"""Manifests of the secrets layer and its config rules."""

from __future__ import annotations

import pytest
import yaml

from components.config import parse_config
from components.render import secrets as secrets_render
from tests.conftest import problems_of
from tests.render.files import files_of


def test_the_store_is_a_doppler_cluster_secret_store_reading_the_token_secret(homelab):
    store = secrets_render.cluster_secret_store(homelab.secrets)
    assert store["apiVersion"] == "external-secrets.io/v1" and store["kind"] == "ClusterSecretStore"
    ref = store["spec"]["provider"]["doppler"]["auth"]["secretRef"]["dopplerToken"]
    assert ref == {"name": "doppler-token", "key": "dopplerToken", "namespace": "external-secrets"}
    assert store["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}


def test_external_secrets_map_remote_keys_to_secret_keys(homelab):
    es = secrets_render.external_secret(homelab.secrets, homelab.secrets.external_secrets[1])
    assert es["spec"]["target"] == {"name": "operator-oauth", "creationPolicy": "Owner"}
    assert es["spec"]["data"] == [{"secretKey": "client_id", "remoteRef": {"key": "TS_OAUTH_CLIENT_ID"}},
                                  {"secretKey": "client_secret", "remoteRef": {"key": "TS_OAUTH_CLIENT_SECRET"}}]
    assert es["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "doppler"}
    assert es["metadata"]["annotations"] == {"pulumi.com/skipAwait": "true"}, "no timestamp that would change every run"


def test_render_writes_the_manifests_with_the_token_redacted(homelab):
    files = files_of(homelab)
    token = yaml.safe_load(files["kubernetes/doppler-token-secret.yaml"])
    assert token["stringData"]["dopplerToken"].startswith("<redacted")
    assert "kubernetes/externalsecret-cattle-system-rancher-bootstrap.yaml" in files
    chart = yaml.safe_load(files["kubernetes/external-secrets-chart.yaml"])
    assert chart["version"] == "2.1.0" and chart["values"] == {"installCRDs": True}


def test_the_gate_spec_lists_only_critical_secrets_and_their_key_names(homelab):
    spec = secrets_render.gate_spec(homelab.secrets, "hint")
    assert [c["target"] for c in spec["critical"]] == ["bootstrap-secret"]
    assert spec["critical"][0]["keys"] == ["bootstrapPassword"]


ES = {"name": "app", "namespace": "apps", "target": "app-secret", "data": {"K": "k"}}


ES_KEYS = "name, namespace, target, data, refreshInterval, critical"
BROKEN_EXTERNAL_SECRETS = [
    pytest.param([dict(ES, name="App_Secret")],
                 "secrets.externalSecrets[0].name: 'App_Secret' is not a Kubernetes object name (lowercase, digits, '-', '.')", id="bad_name"),
    pytest.param([dict(ES, namespace="my.ns")],
                 "secrets.externalSecrets[0].namespace: 'my.ns' is not a Kubernetes namespace name (lowercase, digits, '-')", id="bad_namespace"),
    pytest.param([ES, dict(ES, target="other")], "secrets.externalSecrets[1].name: apps/app is already declared by externalSecrets[0]",
                 id="declared_twice"),
    pytest.param([ES, dict(ES, name="app2")], "secrets.externalSecrets[1].target: apps/app-secret is already the target of externalSecrets[0]",
                 id="same_target_twice"),
    pytest.param([dict(ES, critical=True, data={})],
                 "secrets.externalSecrets[0].data: a critical secret needs at least one key: the gate checks that every key is there",
                 id="critical_without_keys"),
    pytest.param([dict(ES, refreshInterval="hourly")], "secrets.externalSecrets[0].refreshInterval: 'hourly' is not a duration such as 1h or 15m",
                 id="bad_refresh_interval"),
    pytest.param([dict(ES, colour="red")], f"secrets.externalSecrets[0].colour: unknown key; expected one of: {ES_KEYS}", id="unknown_key"),
    pytest.param([dict(ES, data={})],
                 "secrets.externalSecrets[0].data: an ExternalSecret needs at least one key: External Secrets' webhook refuses one without data",
                 id="non_critical_without_keys"),
    pytest.param([dict(ES, data={"USER": "login", "ADMIN_USER": "login"})],
                 "secrets.externalSecrets[0].data.ADMIN_USER: writes Secret key login, which USER already writes; give each its own key",
                 id="two_doppler_keys_into_one_secret_key"),
    pytest.param([dict(ES, data={"K": "bad key!"})],
                 "secrets.externalSecrets[0].data: {'K': 'bad key!'} is not a mapping of Doppler key -> Secret key (invalid Secret keys: ['bad key!'])",
                 id="bad_secret_key"),
]


@pytest.mark.parametrize("externals,expected", BROKEN_EXTERNAL_SECRETS)
def test_secrets_config_errors_name_their_key(homelab_raw, externals, expected):
    homelab_raw["secrets"]["externalSecrets"] = externals
    assert problems_of(homelab_raw) == [expected]


def test_the_target_defaults_to_the_name(homelab_raw):
    homelab_raw["secrets"]["externalSecrets"] = [{"name": "app", "namespace": "apps", "data": {"APP_KEY": "key"}}]
    assert parse_config(homelab_raw).secrets.external_secrets[0].target == "app"


def test_unknown_keys_in_the_gate_and_operator_are_reported(homelab_raw):
    homelab_raw["secrets"]["gate"]["timeout"] = 5
    homelab_raw["secrets"]["operator"]["chart"] = "x"
    assert sorted(problems_of(homelab_raw)) == [
        "secrets.gate.timeout: unknown key; expected one of: timeoutSeconds, forceSyncIntervalSeconds, manifests",
        "secrets.operator.chart: unknown key; expected one of: install, chartVersion, repository, namespace",
    ]
