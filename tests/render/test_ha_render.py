"""The HA render (issue 19): one ordered server list gives the first server `cluster-init` and the
others `server:` the first server's address; agents and the kubeconfig dial the VIP; kube-vip's
manifest and RBAC, checked against kube-vip v1.0.1's own env names and against Kubernetes' schemas
(kubernetes-validate, offline); the single-server render keeps its shape."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components.config import parse_config
from components.render import k3s, kubevip
from components.render import secrets as secrets_render
from components.render.bundle import render_artifacts, render_files
from components.stack import read_stack_file, stack_file
from tests.conftest import stack_raw

ENV_NAMES = Path(__file__).parent.parent / "data" / "kube_vip_v1.0.1_envvars.txt"
KUBE_VERSION = "1.33.0"  # the minor of k3s.version in both example stacks (v1.33.5+k3s1)
CORE_KINDS = {"Namespace", "Secret", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"}


@pytest.fixture
def ha_raw():
    return stack_raw("homelab-ha")


@pytest.fixture
def ha(ha_raw):
    return parse_config(ha_raw)


def _config_yaml(script: str) -> dict:
    body = re.search(r"<<'NETSTAB_CONFIG'\n(.*?)NETSTAB_CONFIG\n", script, re.S)
    assert body, "the HA server install writes /etc/rancher/k3s/config.yaml from a here-document"
    return yaml.safe_load(body.group(1))


def test_every_servers_steady_config_joins_through_the_vip_and_only_the_founding_step_has_cluster_init(ha):
    configs = {n.name: _config_yaml(k3s.server_install_script(ha, n)) for n in ha.servers}
    assert configs == {
        "cp1": {"server": "https://10.27.27.10:6443", "tls-san": ["10.27.27.10", "10.27.27.11"]},
        "cp2": {"server": "https://10.27.27.10:6443", "tls-san": ["10.27.27.10", "10.27.27.12"]},
        "cp3": {"server": "https://10.27.27.10:6443", "tls-san": ["10.27.27.10", "10.27.27.13"]},
    }
    founding = k3s.found_cluster_script(ha)
    assert _config_yaml(founding) == {"cluster-init": True, "tls-san": ["10.27.27.10", "10.27.27.11"]}
    assert "--node-name cp1 " in founding


def test_the_order_of_nodes_decides_who_founds(ha_raw):
    ha_raw["nodes"][0], ha_raw["nodes"][2] = ha_raw["nodes"][2], ha_raw["nodes"][0]
    config = parse_config(ha_raw)
    assert _config_yaml(k3s.found_cluster_script(config)) == {"cluster-init": True, "tls-san": ["10.27.27.10", "10.27.27.13"]}
    assert "--node-name cp3 " in k3s.found_cluster_script(config)


def test_the_join_keys_change_nothing_a_running_server_restarts_for(ha):
    """K3s reads `server`/`cluster-init` only while its etcd is not initialized, so the founding
    step's file and the first server's steady file carry the same restart stamp: when the steady
    install follows the founding one, it rewrites config.yaml and restarts nothing."""
    want = re.compile(r"want=\$\(printf '%s %s' ('[^']*')")
    steady = want.search(k3s.server_install_script(ha, ha.servers[0])).group(1)  # type: ignore[union-attr]
    founding = want.search(k3s.found_cluster_script(ha)).group(1)  # type: ignore[union-attr]
    assert steady == founding
    assert _config_yaml(k3s.server_install_script(ha, ha.servers[0])) != _config_yaml(k3s.found_cluster_script(ha))


def test_the_vip_is_in_every_servers_certificate_names_exactly_once_and_not_on_the_command_line(ha):
    for script in (*(k3s.server_install_script(ha, n) for n in ha.servers), k3s.found_cluster_script(ha)):
        assert _config_yaml(script)["tls-san"].count("10.27.27.10") == 1
        assert "--tls-san" not in script and "--cluster-init" not in script, "HA settings live in config.yaml, not in flags beside it"


def test_only_the_first_server_places_the_kube_vip_manifest(ha):
    placed = [n.name for n in ha.servers if kubevip.MANIFEST_PATH in k3s.server_install_script(ha, n)]
    assert placed == ["cp1"]
    assert kubevip.MANIFEST_PATH.startswith("/var/lib/rancher/k3s/server/manifests/")


def test_a_changed_server_config_re_applies_the_install(ha_raw):
    before = parse_config(ha_raw)
    ha_raw["k3s"]["vip"] = "10.27.27.9"
    after = parse_config(ha_raw)
    want = re.compile(r"want=\$\(printf '%s %s' ('[^']*')")
    first = want.search(k3s.server_install_script(before, before.servers[1])).group(1)
    second = want.search(k3s.server_install_script(after, after.servers[1])).group(1)
    assert first != second and first.split()[:-1] == second.split()[:-1], "only the config digest differs"


def test_agents_and_clients_dial_the_vip_and_wait_for_it(ha):
    for node in ha.agents:
        script = k3s.agent_install_script(ha, node)
        assert "K3S_URL=https://10.27.27.10:6443 INSTALL_K3S_VERSION" in script
        assert "until curl -fsSk --max-time 5 https://10.27.27.10:6443/cacerts -o /dev/null" in script
        assert "10.27.27.11" not in script
    assert k3s.server_url(ha) == "https://10.27.27.10:6443"


def test_no_token_in_any_ha_install(ha):
    for node in ha.nodes:
        script = k3s.install_script(ha, node)
        assert "--token" not in script and "token:" not in script and "K3S_TOKEN=" not in script.replace("export K3S_TOKEN", "")


def test_single_server_scripts_keep_their_shape(homelab):
    server = k3s.server_install_script(homelab)
    assert "--tls-san 10.27.27.11" in server and "config.yaml" not in server and "cluster-init" not in server
    assert "kube-vip" not in server and "/cacerts -o /dev/null" not in k3s.agent_install_script(homelab, homelab.agents[0])
    files = render_files(render_artifacts(homelab, "agent", "homelab"))
    assert "kubernetes/kube-vip.yaml" not in files and "etcd" not in files["k3s/nodes-ready.sh"]


def test_every_rendered_kube_vip_env_name_is_one_kube_vip_v1_0_1_reads(ha):
    known = {line for line in ENV_NAMES.read_text().splitlines() if line and not line.startswith("#")}
    assert len(known) == 78 and "vip_cidr" not in known and "vip_address" in known  # the list as committed
    rendered = [e["name"] for e in kubevip.env(ha)]
    assert set(rendered) <= known, set(rendered) - known
    assert len(rendered) == len(set(rendered))


def test_an_env_name_kube_vip_does_not_read_fails_the_check(ha):
    """Counterfactual: techno-tim's vip_cidr (ignored since kube-vip v0.9.0) is caught by the same check."""
    known = {line for line in ENV_NAMES.read_text().splitlines() if line and not line.startswith("#")}
    assert not ({e["name"] for e in kubevip.env(ha)} | {"vip_cidr"}) <= known


def test_kube_vip_env_is_arp_control_plane_leader_election(ha):
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in kubevip.env(ha)}
    assert env == {
        "vip_nodename": {"fieldRef": {"fieldPath": "spec.nodeName"}},
        "vip_arp": "true", "port": "6443", "vip_interface": "eth0", "vip_subnet": "32",
        "cp_enable": "true", "cp_namespace": "kube-system", "svc_enable": "false",
        "vip_leaderelection": "true", "vip_leasename": "plndr-cp-lock",
        "vip_leaseduration": "15", "vip_renewdeadline": "10", "vip_retryperiod": "2",
        "address": "10.27.27.10",
    }


def test_vip_interface_follows_the_config(ha_raw):
    ha_raw["k3s"]["vipInterface"] = "ens18"
    env = {e["name"]: e.get("value") for e in kubevip.env(parse_config(ha_raw))}
    assert env["vip_interface"] == "ens18"


def test_kube_vip_daemonset_has_kube_vips_own_shape(ha):
    ds = kubevip.daemonset(ha)
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/kube-vip/kube-vip:v1.0.1" and container["imagePullPolicy"] == "IfNotPresent"
    assert container["args"] == ["manager"]
    assert container["securityContext"] == {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}}
    assert pod["hostNetwork"] is True and pod["serviceAccountName"] == "kube-vip"
    assert {t["effect"] for t in pod["tolerations"]} == {"NoSchedule", "NoExecute"}
    keys = [e["key"] for term in pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
            for e in term["matchExpressions"]]
    assert "node-role.kubernetes.io/control-plane" in keys


def test_kube_vip_rbac_names(ha):
    sa, role, binding = kubevip.rbac()
    assert (sa["kind"], sa["metadata"]["name"]) == ("ServiceAccount", "kube-vip")
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", "system:kube-vip-role")
    assert (binding["kind"], binding["metadata"]["name"]) == ("ClusterRoleBinding", "system:kube-vip-binding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"] and binding["subjects"][0]["name"] == "kube-vip"
    leases = next(r for r in role["rules"] if r["resources"] == ["leases"])
    assert {"create", "update"} <= set(leases["verbs"])


def test_the_kube_vip_image_is_in_the_mirror_warmup(ha):
    assert kubevip.IMAGE in ha.mirror.warmup_groups["kube-vip"]


def _core_documents(files: dict[str, str]) -> list[dict]:
    docs = [d for path, text in files.items() if path.startswith("kubernetes/") for d in yaml.safe_load_all(text) if d]
    return [d for d in docs if d.get("kind") in CORE_KINDS]


@pytest.mark.parametrize("stack", ["homelab-ha", "homelab"])
def test_every_rendered_core_kind_manifest_passes_kubernetes_validate(stack):
    raw, secure = read_stack_file(stack_file(stack))
    files = render_files(render_artifacts(parse_config(raw, secure), "agent", stack))
    docs = _core_documents(files)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Secret"} <= kinds
    if stack == "homelab-ha":
        assert kinds == CORE_KINDS
    for doc in docs:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_kubernetes_validate_can_fail(ha):
    """Counterfactual: a misspelt field (strict schemas refuse unknown keys) and a wrong type fail."""
    ds = kubevip.daemonset(ha)
    ds["spec"]["template"]["spec"]["hostNetwrk"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, KUBE_VERSION, strict=True)
    bad = secrets_render.namespace("x")
    bad["metadata"]["name"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSION, strict=True)


def test_make_render_writes_the_ha_stack(tmp_path):
    from components.__main__ import main

    assert main(["render", "homelab-ha", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "kubernetes" / "kube-vip.yaml").read_text() == kubevip.manifest_text(parse_config(read_stack_file(stack_file("homelab-ha"))[0]))
    assert "cluster-init: true" in (tmp_path / "k3s" / "found-cluster.sh").read_text()
    assert "cluster-init" not in (tmp_path / "nodes" / "cp1" / "k3s-install.sh").read_text()
    assert (tmp_path / "nodes" / "cp2" / "forget-old-member.sh").is_file() and not (tmp_path / "nodes" / "worker1" / "forget-old-member.sh").exists()


def test_a_removed_server_leaves_etcd_only_where_there_is_etcd(ha, homelab):
    """An HA server's removal step removes its etcd member before its Node; a single server keeps
    its datastore in SQLite (no cluster-init), so its removal has no member to wait for."""
    from components.render.rolling import ETCD_REMOVE, rolling_steps

    assert ETCD_REMOVE in rolling_steps(ha, ha.servers[1]).remove
    assert ETCD_REMOVE not in rolling_steps(ha, ha.agents[0]).remove
    assert ETCD_REMOVE not in rolling_steps(homelab, homelab.server).remove
