"""The agent's pure parts: image references, redaction, statuses, the timeout rule, the sweep's
search and verdict, summaries; and the rules that keep it one stdlib file for Python 3.8."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "probes"))
import agent  # noqa: E402

README = Path(agent.__file__).with_name("README.md")


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


@pytest.mark.parametrize("text", ["ghcr.io/Upper/Case", "busybox@sha256:abc", "busybox:bad tag"])
def test_invalid_references_are_refused(text):
    with pytest.raises(ValueError):
        agent.parse_image(text)


@pytest.mark.parametrize("header", ["Authorization: Bearer s3cr3t", "authorization: Basic s3cr3t", "X-Api-Key: s3cr3t",
                                    "Cookie: s=s3cr3t", "X-Auth: s3cr3t", "X-Auth-Token: s3cr3t", "Proxy-Authorization: s3cr3t"])
def test_sensitive_header_values_are_redacted(header):
    assert agent.redact_text(header) == header.split(":")[0] + ": <redacted>"


def test_plain_headers_are_kept():
    assert agent.redact_text("Accept: application/json") == "Accept: application/json"


def test_urls_lose_userinfo_and_secret_query_values():
    url = "https://user:pa55@api.doppler.com/v3/projects?service_token=dp.st.x&page=2"
    assert agent.redact_url(url) == "https://api.doppler.com/v3/projects?service_token=<redacted>&page=2"


def test_signed_url_parameters_are_redacted():
    url = ("https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA1&"
           "X-Amz-Signature=f00d&X-Amz-Security-Token=t0k&sig=az1&token=t2&se=2030")
    assert agent.redact_url(url) == (
        "https://bucket.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=<redacted>&"
        "X-Amz-Signature=<redacted>&X-Amz-Security-Token=<redacted>&sig=<redacted>&token=<redacted>&se=2030")


def test_argv_is_redacted_by_value_whatever_the_spelling():
    """The values come from the parsed arguments; the spellings are argparse's: attached short
    option, an abbreviated long one, `--header=`."""
    secrets = ["Bearer abc", "s3", "Bearer def"]
    argv = ["http", "https://x/", "-HAuthorization: Bearer abc", "--head", "X-Auth: s3", "--header=Authorization: Bearer def"]
    assert agent.redact_argv(argv, secrets) == [
        "http", "https://x/", "-HAuthorization: <redacted>", "--head", "X-Auth: <redacted>", "--header=Authorization: <redacted>"]


def test_redaction_leaves_urls_of_hosts_with_sensitive_looking_names_alone():
    text = "https://auth.docker.io:443/token?service=registry.docker.io"
    assert agent.redact_text(text) == text


def test_a_usage_message_never_echoes_a_header_secret():
    message = "unrecognized arguments: --bogus X-Auth-Token: abc123"
    assert agent.redact_text(message) == "unrecognized arguments: --bogus X-Auth-Token: <redacted>"


def test_status_ranges():
    assert agent.status_ranges("200-399,401") == [(200, 399), (401, 401)]


@pytest.mark.parametrize("text", ["ok", "200-", "399-200", "2000", ""])
def test_bad_status_ranges_are_refused(text):
    with pytest.raises(ValueError):
        agent.status_ranges(text)


@pytest.mark.parametrize(
    "connect_s,ceiling,bound",
    [
        (0.0001, 10.0, 1.0),  # a LAN: the one-second floor
        (0.04, 10.0, 1.0),  # 40 ms away: still the floor
        (0.25, 10.0, 2.5),  # 250 ms away: ten round trips
        (0.5, 3.0, 3.0),  # --timeout stays the upper bound
    ],
)
def test_the_handshake_timeout_is_ten_connect_times_at_least_a_second_at_most_the_timeout(connect_s, ceiling, bound):
    assert agent.handshake_timeout(connect_s, ceiling) == pytest.approx(bound)


# ---------------------------------------------------------------- the sweep


def test_a_reproduced_default_failure_with_a_confirmed_working_mss_is_a_black_hole():
    out = agent.sweep_verdict(default_stalls=3, best=1280, confirmed=True, high=1460, overhead=40)
    assert (out["verdict"], out["black_hole"], out["working_mss"], out["path_mtu"], out["recommended_clamp"]) == (
        "black-hole", True, 1280, 1320, 1280)


def test_over_ipv6_the_path_mtu_adds_sixty():
    out = agent.sweep_verdict(default_stalls=2, best=1220, confirmed=True, high=1440, overhead=60)
    assert out["black_hole"] and out["path_mtu"] == 1280


def test_one_failed_default_handshake_is_noise():
    out = agent.sweep_verdict(default_stalls=1, best=1460, confirmed=True, high=1460, overhead=40)
    assert (out["verdict"], out["black_hole"], out["recommended_clamp"]) == ("clean", False, None)
    assert out["note"] == "1 of 3 default-MSS tries stalled and did not reproduce: noise, not a size limit"


def test_never_a_clamp_at_the_full_mss():
    out = agent.sweep_verdict(default_stalls=3, best=1460, confirmed=True, high=1460, overhead=40)
    assert (out["verdict"], out["black_hole"], out["recommended_clamp"]) == ("clean", False, None)
    assert "MSS 1460, the full size, passes" in out["note"]


def test_a_working_mss_that_fails_some_of_its_tries_is_loss_not_a_black_hole():
    out = agent.sweep_verdict(default_stalls=3, best=1100, confirmed=False, high=1460, overhead=40)
    assert (out["verdict"], out["black_hole"], out["recommended_clamp"]) == ("clean", False, None)
    assert "handshakes at MSS 1100 fail too" in out["note"]


@pytest.mark.parametrize(
    "cls,words",
    [
        ("connect_refused", "TCP is refused even at MSS 536"),
        ("connect_timeout", "TCP is not answered even at MSS 536"),
        ("tls_handshake_timeout", "TCP connects but TLS never answers, even at MSS 536"),
        ("tls_error", "handshakes fail even at MSS 536 (tls_error)"),
    ],
)
def test_unreachable_says_why_in_data_and_words(cls, words):
    out = agent.sweep_verdict(default_stalls=3, best=None, confirmed=False, high=1460, overhead=40, unreachable_class=cls)
    assert (out["verdict"], out["black_hole"], out["unreachable_class"]) == ("unreachable", False, cls)
    assert out["explanation"].startswith(words)


def test_a_working_default_with_larger_failures_is_clean_default():
    out = agent.sweep_verdict(default_stalls=0, best=1300, confirmed=True, high=1460, overhead=40)
    assert (out["verdict"], out["black_hole"], out["note"]) == ("clean-default", False, None)


def test_the_first_round_spreads_over_the_whole_range_up_to_the_full_mss():
    values = agent.spread(536, 1461, 32)
    gaps = [b - a for a, b in zip([536] + values, values, strict=False)]
    assert len(values) == 32 and values[-1] == 1460 and max(gaps) == 29 and min(gaps) == 28


def test_a_narrow_interval_is_tried_whole():
    assert agent.spread(1229, 1258, 32) == list(range(1230, 1258))


def trial(mss, through, cls=None, big=True):
    return {"mss": mss, "big_hello": big, "through": through, "error_class": None if through else cls}


def test_bounds_take_the_largest_pass_and_the_smallest_stall_above_it():
    trials = [trial(1000, True), trial(1100, False, "tls_handshake_timeout"), trial(1200, True),
              trial(1300, False, "connect_timeout"), trial(1400, False, "tls_handshake_timeout"), trial(None, False, "tls_handshake_timeout")]
    # the stall at 1100 under a pass at 1200 was noise; a connect timeout says nothing about size
    assert agent.bounds(trials, big=True, high=1460) == (1200, 1400)


def test_bounds_count_only_the_hello_size_that_sizes():
    trials = [trial(1000, True, big=False), trial(900, True)]
    assert agent.bounds(trials, big=True, high=1460) == (900, 1461)


def test_nothing_through_leaves_no_working_mss():
    assert agent.bounds([trial(536, False, "connect_refused")], big=True, high=1460) == (None, 1461)


# ---------------------------------------------------------------- classes, summaries


@pytest.mark.parametrize(
    "stderr,cls",
    [
        ('pulling image: rpc error: ... net/http: TLS handshake timeout', "tls_handshake_timeout"),
        ("dial tcp: lookup ghcr.io on 10.27.27.1:53: no such host", "dns_error"),
        ("dial tcp 140.82.112.33:443: connect: connection refused", "connect_refused"),
        ("dial tcp 140.82.112.33:443: i/o timeout", "connect_timeout"),
        ("read tcp 10.27.27.11:4242->1.2.3.4:443: i/o timeout", "read_timeout"),
        ("tls: failed to verify certificate: x509: certificate signed by unknown authority", "tls_certificate"),
        ("remote error: tls: handshake failure", "tls_error"),
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
    assert summary["phases_ms"]["total"] == {"p50": 5.0, "p95": 10.0, "max": 10.0}


def test_the_readme_failure_class_table_is_failure_classes():
    """probes/README.md shows FAILURE_CLASSES, word for word and in order: one wording only."""
    section = README.read_text().split("## Failure classes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, re.M)
    assert rows == list(agent.FAILURE_CLASSES.items())


def test_the_help_lists_every_failure_class():
    epilog = agent.parser().epilog or ""
    assert [line.split()[0] for line in epilog.splitlines()[1:]] == list(agent.FAILURE_CLASSES)


def test_the_agent_has_no_imports_beyond_the_standard_library():
    source = Path(agent.__file__).read_text()
    modules = {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Import)}
    modules |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom) and n.module}
    assert modules <= set(sys.stdlib_module_names), modules - set(sys.stdlib_module_names)


def test_the_agent_parses_as_python_3_8():
    ast.parse(Path(agent.__file__).read_text(), feature_version=(3, 8))
