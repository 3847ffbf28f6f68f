"""SecretsLayer: External Secrets with Doppler on the cluster, and a gate only on what bootstrap needs.

operator chart (its CRDs) -> token Secret + ClusterSecretStore -> ExternalSecrets -> SecretGate
-> the manifests listed in `secrets.gate.manifests`. The store and ExternalSecrets are not awaited;
nothing outside the gate depends on them, so a slow or absent Doppler stalls nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.config import SecretsConfig
from components.render.bundle import SecretsArtifacts
from components.render.secrets import TOKEN_KEY
from components.secretgate import SecretGate


@dataclass(frozen=True)
class SecretsLayerArgs:
    config: SecretsConfig
    artifacts: SecretsArtifacts
    kubeconfig: pulumi.Input[str]
    # changes only when the cluster does (the kubeconfig step's id: new when the server VM is rebuilt)
    cluster_identity: pulumi.Input[str]
    doppler_token: pulumi.Input[str]


def _custom(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.apiextensions.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)


class SecretsLayer(pulumi.ComponentResource):
    gate_result: pulumi.Output[Any] | None

    def __init__(self, name: str, args: SecretsLayerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("netstab:secrets:SecretsLayer", name, None, opts)
        cfg, art = args.config, args.artifacts
        # The cluster's own provider, passed explicitly; deleteUnreachable lets `pulumi destroy`
        # forget these objects when the VMs are already gone instead of hanging on finalizers.
        # clusterIdentifier: a new kubeconfig for the same cluster (a new server address, a renewed certificate)
        # updates the provider in place instead of replacing it and, with it, every object on the cluster
        provider = k8s.Provider(f"{name}-cluster", kubeconfig=args.kubeconfig, cluster_identifier=args.cluster_identity,
                                delete_unreachable=True, enable_server_side_apply=True, opts=pulumi.ResourceOptions(parent=self))
        on_cluster = pulumi.ResourceOptions(parent=self, provider=provider)
        self.namespaces = {ns: k8s.core.v1.Namespace(f"{name}-ns-{ns}", metadata={"name": ns}, opts=on_cluster) for ns in art.namespaces}
        operator_ns = self.namespaces[cfg.operator_namespace]

        crds: list[pulumi.Resource] = []
        if art.chart is not None:
            chart = k8s.helm.v4.Chart(
                f"{name}-external-secrets",
                k8s.helm.v4.ChartArgs(chart=art.chart["chart"], version=art.chart["version"], namespace=art.chart["namespace"],
                                      repository_opts=k8s.helm.v4.RepositoryOptsArgs(repo=art.chart["repository"]), values=art.chart["values"]),
                opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[operator_ns])),
            )
            crds.append(chart)

        # the token's value is added here, from config: the artifact holds only a placeholder
        token = art.token_secret
        token_secret = k8s.core.v1.Secret(f"{name}-doppler-token", metadata=token["metadata"], type=token["type"],
                                          string_data={TOKEN_KEY: args.doppler_token},
                                          opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[operator_ns])))
        store = _custom(f"{name}-store", art.store,
                        pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[*crds, token_secret])))
        self.external_secrets = {
            es.name: _custom(f"{name}-es-{es.namespace}-{es.name}", art.external_secrets[es.name],
                             pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[store, self.namespaces[es.namespace]])))
            for es in cfg.external_secrets
        }
        self.gate_result = None
        if art.gate_spec is not None:
            gate = SecretGate(f"{name}-gate", args.kubeconfig, art.gate_spec,
                              opts=pulumi.ResourceOptions(parent=self, depends_on=[self.external_secrets[e.name] for e in cfg.critical]))
            self.gate_result = gate.secrets
            for path in cfg.gated_manifests:
                k8s.yaml.v2.ConfigFile(f"{name}-gated-{path.replace('/', '-')}", file=path,
                                       opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[gate])))
        self.register_outputs({"gate": self.gate_result})
