"""ClusterGate's judgement of what it read, case by case (pure; the provider is driven over gRPC in tests/real)."""

from __future__ import annotations

from components.clustergate import SOURCES, ClusterState, judge_cluster
from tests.kube_objects import helm_release, pod, pull_event, ready, source


def state(sources=None, releases=None, pods=(), events=(), flux=True) -> ClusterState:
    by_kind = {kind: [] if flux else None for kind in SOURCES}
    for item in sources or []:
        by_kind[item["kind"]].append(item)
    return ClusterState(by_kind, list(releases or []) if flux else None, list(pods), list(events))


def test_without_flux_the_flux_checks_say_so_and_pass():
    verdict = judge_cluster(state(flux=False))
    assert verdict.verdict == "pass"
    assert verdict.notes == ["Flux is not installed here (its APIs answer 404): no Flux sources or HelmReleases to check"]


def test_a_failing_source_whose_cached_artifact_serves_ready_releases_is_a_warning():
    verdict = judge_cluster(state([source("OCIRepository", "traefik", ok=False, artifact=True)],
                          [helm_release("traefik", "OCIRepository", "traefik", "True")]))
    assert verdict.verdict == "warn"
    assert [f.section for f in verdict.findings] == ["flux sources"]
    assert "cached artifact still serves flux-system/traefik, all Ready" in verdict.findings[0].text


def test_a_failing_source_without_an_artifact_fails():
    verdict = judge_cluster(state([source("HelmRepository", "rancher", ok=False, artifact=False)],
                          [helm_release("rancher", "HelmRepository", "rancher", "True")]))
    assert verdict.verdict == "fail" and "no artifact in storage" in verdict.findings[0].text


def test_a_failing_source_whose_release_is_not_ready_fails_and_the_release_is_reported_apart():
    verdict = judge_cluster(state([source("OCIRepository", "cert-manager", ok=False, artifact=True)],
                          [helm_release("cert-manager", "OCIRepository", "cert-manager", "False")]))
    assert verdict.verdict == "fail"
    assert {f.section for f in verdict.findings} == {"flux sources", "helm releases"}
    text = verdict.text()
    assert text.index("flux sources:") < text.index("helm releases:")


def test_a_failing_generated_helm_chart_is_matched_to_its_release_through_status_helm_chart():
    """A chart template makes the controller generate a HelmChart `<ns>-<name>`; only the release's
    status.helmChart names it, so a failing chart that still serves its Ready release is a warning."""
    release = helm_release("rancher", "HelmRepository", "rancher", "True")
    release["status"]["helmChart"] = "flux-system/flux-system-rancher"
    chart = source("HelmChart", "flux-system-rancher", ok=False, artifact=True)
    verdict = judge_cluster(state([chart], [release]))
    assert verdict.verdict == "warn" and "cached artifact still serves flux-system/rancher, all Ready" in verdict.findings[0].text
    release["status"] = ready("False", "UpgradeFailed", "chart pull failed") | {"helmChart": "flux-system/flux-system-rancher"}
    failing = judge_cluster(state([chart], [release]))
    assert failing.verdict == "fail" and "a HelmRelease that uses it is not Ready" in failing.findings[0].text


def test_pods_waiting_on_pulls_fail_grouped_by_image_and_node():
    pods = [pod("a", "worker1", "ghcr.io/x/a:1", "ImagePullBackOff"), pod("b", "worker1", "ghcr.io/x/a:1", "ErrImagePull"),
            pod("c", "worker2", "ghcr.io/x/a:1", "ImagePullBackOff"), pod("d", "cp1", "quay.io/y:2")]
    verdict = judge_cluster(state(pods=pods))
    assert verdict.verdict == "fail"
    assert [f.text for f in verdict.findings] == [
        "ghcr.io/x/a:1 on worker1: 2 container(s) waiting in ErrImagePull/ImagePullBackOff",
        "ghcr.io/x/a:1 on worker2: 1 container(s) waiting in ErrImagePull/ImagePullBackOff",
    ]
    assert verdict.pull_failures == {"ghcr.io/x/a:1": {"worker1": 2, "worker2": 1}}


def test_pull_failures_only_in_events_are_a_warning_on_the_pods_node():
    verdict = judge_cluster(state(pods=[pod("d", "cp1", "quay.io/y:2")], events=[pull_event("d", "quay.io/y:2", count=3)]))
    assert verdict.verdict == "warn"
    assert verdict.findings[0].text == "quay.io/y:2 on cp1: 3 failed pull(s) in events, no pod waiting now"


def test_a_healthy_cluster_passes():
    verdict = judge_cluster(state([source("OCIRepository", "traefik", ok=True, artifact=True)],
                          [helm_release("traefik", "OCIRepository", "traefik", "True")], [pod("d", "cp1", "quay.io/y:2")]))
    assert verdict.verdict == "pass" and not verdict.findings
