"""kube-vip for an HA control plane: the API's virtual address (k3s.vip), announced by ARP from the
server that holds kube-vip's leader lease. Pure: manifests as dicts, written by the first server's
install script into K3s's auto-deploy directory, which K3s applies once its API is up.

Shape and names from kube-vip v1.0.1 (docs/ha.md cites each):
- env names: pkg/kubevip/config_envvar.go (the daemon reads only those; tests/data holds the list);
- DaemonSet: pkg/kubevip/config_generator.go GenerateDaemonsetManifestFromConfig with --inCluster
  --taint (args `manager`, NET_ADMIN/NET_RAW added and ALL dropped, IfNotPresent, hostNetwork,
  SA kube-vip, control-plane affinity, NoSchedule/NoExecute tolerations);
- RBAC: GenerateSA, GenerateRole (ClusterRole system:kube-vip-role), GenerateRoleBinding
  (ClusterRoleBinding system:kube-vip-binding).
"""

from __future__ import annotations

from typing import Any

import yaml

from components.config import GUEST_INTERFACE, StackConfig

VERSION = "v1.0.1"
IMAGE = f"ghcr.io/kube-vip/kube-vip:{VERSION}"  # the mirror's warm-up group "kube-vip" pulls the same reference
NAMESPACE = "kube-system"
MANIFEST_DIR = "/var/lib/rancher/k3s/server/manifests"  # K3s's auto-deploy directory (k3s docs: Auto-Deploying Manifests)
MANIFEST_PATH = f"{MANIFEST_DIR}/netstab-kube-vip.yaml"
LEASE_NAME = "plndr-cp-lock"  # kube-vip's own default, named so it is visible here
# Rendered explicitly: kube-vip's defaults moved from 5/3/1 s (v1.0.x) to 15/10/2 s (v1.1.0); these are
# the later, calmer values, so an image upgrade does not change the failover timing underneath.
LEASE_DURATION_S, RENEW_DEADLINE_S, RETRY_PERIOD_S = 15, 10, 2
API_PORT = 6443
SA, ROLE, BINDING = "kube-vip", "system:kube-vip-role", "system:kube-vip-binding"
APP = "kube-vip-ds"


def env(config: StackConfig) -> list[dict[str, Any]]:
    """The container's environment: ARP mode, control plane only, with leader election."""
    k3s = config.k3s
    values = [
        ("vip_arp", "true"),
        ("port", str(API_PORT)),
        ("vip_interface", k3s.vip_interface or GUEST_INTERFACE),
        ("vip_subnet", "32"),  # IPv4 host route; kube-vip has no vip_cidr since v0.9.0
        ("cp_enable", "true"),
        ("cp_namespace", NAMESPACE),
        ("svc_enable", "false"),  # the control plane only: no LoadBalancer Services
        ("vip_leaderelection", "true"),
        ("vip_leasename", LEASE_NAME),
        ("vip_leaseduration", str(LEASE_DURATION_S)),
        ("vip_renewdeadline", str(RENEW_DEADLINE_S)),
        ("vip_retryperiod", str(RETRY_PERIOD_S)),
        ("address", str(k3s.vip)),
    ]
    return [{"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            *({"name": name, "value": value} for name, value in values)]


def rbac() -> list[dict[str, Any]]:
    rules = [
        ({""}, ["services/status"], ["update"]),
        ({""}, ["services", "endpoints"], ["list", "get", "watch", "update"]),
        ({""}, ["nodes"], ["list", "get", "watch", "update", "patch"]),
        ({"coordination.k8s.io"}, ["leases"], ["list", "get", "watch", "update", "create"]),
        ({"discovery.k8s.io"}, ["endpointslices"], ["list", "get", "watch", "update"]),
        ({""}, ["pods"], ["list"]),
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": NAMESPACE}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": ROLE},
         "rules": [{"apiGroups": sorted(groups), "resources": resources, "verbs": verbs} for groups, resources, verbs in rules]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": BINDING},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
         "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NAMESPACE}]},
    ]


def daemonset(config: StackConfig) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/version": VERSION}
    control_plane = [{"matchExpressions": [{"key": key, "operator": "Exists"}]}
                     for key in ("node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane")]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": APP, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": APP}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": SA,
                    "hostNetwork": True,
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": control_plane}}},
                    "tolerations": [{"effect": "NoSchedule", "operator": "Exists"}, {"effect": "NoExecute", "operator": "Exists"}],
                    "containers": [{
                        "name": "kube-vip",
                        "image": IMAGE,
                        "imagePullPolicy": "IfNotPresent",  # pulled once, through the mirror (registries.yaml)
                        "args": ["manager"],
                        "env": env(config),
                        "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}},
                    }],
                },
            },
        },
    }


def manifests(config: StackConfig) -> list[dict[str, Any]]:
    """RBAC first, then the DaemonSet: the order K3s applies them in one file."""
    return [*rbac(), daemonset(config)]


def manifest_text(config: StackConfig) -> str:
    """The multi-document file the first server places in K3s's auto-deploy directory."""
    return yaml.safe_dump_all(manifests(config), sort_keys=False)
