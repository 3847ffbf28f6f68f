"""The operator's plan, as data: the endpoints and test images its Phase 1 probes
(../shared/network-stabilization-plan.md, "Target endpoints" and "Known useful test images")."""

ENDPOINTS = (
    "https://ghcr.io/v2/",
    "https://auth.docker.io/token",
    "https://registry-1.docker.io/v2/",
    "https://quay.io/v2/",
    "https://registry.k8s.io/v2/",
    "https://api.doppler.com/v3/projects",
)
DOPPLER_HOST = "api.doppler.com"

TEST_IMAGES = (
    "ghcr.io/fluxcd/helm-controller:v1.5.1",
    "oci.external-secrets.io/external-secrets/external-secrets:v2.1.0",
    "docker.io/rancher/mirrored-library-busybox:1.37.0",
    "ghcr.io/tailscale/tailscale:v1.96.5",
    "quay.io/prometheus/node-exporter:v1.8.2",
)
