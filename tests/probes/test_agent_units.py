"""The agent's pure parts: image references, redaction, statuses, verdicts, summaries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "probes"))
import agent  # noqa: E402


@pytest.mark.parametrize(
    "text,registry,repository,reference",
    [
        ("busybox", "docker.io", "library/busybox", "latest"),
        ("docker.io/rancher/mirrored-library-busybox:1.37.0", "docker.io", "rancher/mirrored-library-busybox", "1.37.0"),
        ("ghcr.io/fluxcd/helm-controller:v1.5.1", "ghcr.io", "fluxcd/helm-controller", "v1.5.1"),
        ("oci.external-secrets.io/external-secrets/external-secrets:v2.1.0", "oci.external-secrets.io", "external-secrets/external-secrets", "v2.1.0"),
        ("localhost:5000/test/small:1", "localhost:5000", "test/small", "1"),
        ("quay.io/prometheus/node-exporter@sha256:" + "a" * 64, "quay.io", "prometheus/node-exporter", "sha256:" + "a" * 64),
        ("index.docker.io/library/alpine", "docker.io", "library/alpine", "latest"),
    ],
)
def test_image_references_resolve_like_docker(text, registry, repository, reference):
    ref = agent.parse_image(text)
    assert (ref.registry, ref.repository, ref.reference) == (registry, repository, reference)


def test_docker_io_is_reached_at_registry_1():
    assert agent.registry_endpoint("docker.io", []) == "https://registry-1.docker.io"
    assert agent.registry_endpoint("10.27.27.5:5000", ["10.27.27.5:5000"]) == "http://10.27.27.5:5000"


def test_invalid_repository_is_refused():
    with pytest.raises(ValueError):
        agent.parse_image("ghcr.io/Upper/Case")


@pytest.mark.parametrize("header", ["Authorization: Bearer s3cr3t", "authorization: Basic s3cr3t", "X-Api-Key: s3cr3t", "Cookie: s=s3cr3t"])
def test_sensitive_header_values_are_redacted(header):
    assert "s3cr3t" not in agent.redact_header(header)
    assert agent.redact_header(header).startswith(header.split(":")[0])


def test_plain_headers_are_kept():
    assert agent.redact_header("Accept: application/json") == "Accept: application/json"


def test_urls_lose_userinfo_and_token_query_values():
    url = "https://user:pa55@api.doppler.com/v3/projects?service_token=dp.st.x&page=2"
    clean = agent.redact_url(url)
    assert "pa55" not in clean and "dp.st.x" not in clean and "page=2" in clean and "api.doppler.com" in clean


def test_argv_redaction_covers_both_header_spellings():
    argv = ["http", "https://x/", "--header", "Authorization: Bearer abc", "--header=Authorization: Bearer def"]
    joined = " ".join(agent.redact_argv(argv))
    assert "abc" not in joined and "def" not in joined


def test_expected_statuses_include_401_by_default():
    expect = agent.parse_expect("200-399,401")
    assert expect(200) and expect(302) and expect(401)
    assert not expect(403) and not expect(500) and not expect(400)


@given(st.integers(min_value=537, max_value=1460))
def test_a_black_hole_recommends_the_working_mss_and_its_path_mtu(best):
    out = agent.verdict(default_ok=False, low_ok=True, best=best, overhead=40, high=1460)
    assert out["black_hole"] and out["recommended_clamp"] == best and out["path_mtu"] == best + 40


def test_ipv6_path_mtu_adds_sixty():
    out = agent.verdict(default_ok=False, low_ok=True, best=1220, overhead=60, high=1440)
    assert out["path_mtu"] == 1280


def test_unreachable_is_not_called_a_black_hole():
    out = agent.verdict(default_ok=False, low_ok=False, best=None, overhead=40, high=1460)
    assert out["verdict"] == "unreachable" and not out["black_hole"] and out["recommended_clamp"] is None


def test_a_clean_path_needs_no_clamp():
    out = agent.verdict(default_ok=True, low_ok=True, best=1460, overhead=40, high=1460)
    assert out["verdict"] == "clean" and out["recommended_clamp"] is None


@pytest.mark.parametrize(
    "stderr,cls",
    [
        ('pulling image: rpc error: ... net/http: TLS handshake timeout', "tls_handshake_timeout"),
        ("dial tcp: lookup ghcr.io on 10.27.27.1:53: no such host", "dns_error"),
        ("dial tcp 140.82.112.33:443: connect: connection refused", "connect_refused"),
        ("dial tcp 140.82.112.33:443: i/o timeout", "connect_timeout"),
        ("read tcp 10.27.27.11:4242->1.2.3.4:443: i/o timeout", "read_timeout"),
        ("x509: certificate signed by unknown authority", "tls_error"),
        ("unexpected status code 429 Too Many Requests", "http_status"),
        ("something odd", "runtime_error"),
    ],
)
def test_runtime_errors_are_classified(stderr, cls):
    assert agent.classify_runtime_error(stderr) == cls
    assert cls in agent.FAILURE_CLASSES


def test_summary_counts_errors_by_class_and_percentiles_of_successes():
    recs = [agent.record("http", "t", i, ok=True, phases_ms={"total": float(i)}) for i in range(1, 11)]
    recs.append(agent.failed(agent.record("http", "t", 11), agent.ProbeFailure("tls_handshake_timeout", "x")))
    (summary,) = agent.summarize(recs)
    assert summary["attempts"] == 11 and summary["ok"] == 10
    assert summary["errors"] == {"tls_handshake_timeout": 1}
    assert summary["phases_ms"]["total"]["max"] == 10.0
    assert summary["phases_ms"]["total"]["p50"] in (5.0, 6.0)


def test_the_agent_has_no_imports_beyond_the_standard_library():
    import ast

    source = Path(agent.__file__).read_text()
    modules = {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)}
    modules |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)


def test_the_agent_parses_as_python_3_8():
    import ast

    ast.parse(Path(agent.__file__).read_text(), feature_version=(3, 8))
