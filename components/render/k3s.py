"""Shell scripts that install and check K3s on the nodes, run over SSH by the cluster component.

The cluster token is never part of a script: each install script reads it from stdin.
"""

from __future__ import annotations

import hashlib

import yaml

from components.config import GUEST_INTERFACE, K3sConfig, NodeConfig, StackConfig
from components.render import kubevip
from components.render.quote import heredoc, in_double_quotes, word
from components.render.shell import STATE_DIR

KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
API_PORT = 6443
LOOPBACK_SERVER = f"https://127.0.0.1:{API_PORT}"

STAMP_DIR = STATE_DIR  # <service>.applied: the hash of the K3s invocation last applied
SERVER_TOKEN_FILE = "/var/lib/rancher/k3s/server/token"  # K10<CA hash>::server:<token>
AGENT_DIR = "/var/lib/rancher/k3s/agent"
AGENT_CA_FILE = f"{AGENT_DIR}/server-ca.crt"
NODE_PASSWORD_FILE = "/etc/rancher/node/password"
# the node's SSH host key: generated once per node name (components/hostkeys.py) and installed by its
# user-data, so every rebuild of the node has it; root-only, and independent of the K3s token
HOST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key"
CONFIG_FILE = "/etc/rancher/k3s/config.yaml"  # read by every k3s server at start (K3s docs: Configuration File)
VIP_WAIT_S = 300  # an HA agent's wait for the VIP to answer: kube-vip starts after the first server's API

_READ_TOKEN = """\
# The cluster token arrives on stdin, never in this text or the environment of the SSH session.
IFS= read -r K3S_TOKEN || true
if [ -z "${K3S_TOKEN:-}" ]; then echo "netstab: no K3s token on stdin" >&2; exit 1; fi
export K3S_TOKEN
"""

# A running server's token is the key of its datastore: it cannot change in place (K3s: `k3s token
# rotate`). A changed netstab:k3sToken that the server does not hold is refused before anything runs.
# netstab:k3sToken may be the bare secret or the full K10 form the server file holds.
SERVER_TOKEN_MATCHES = f"""if [ -f {SERVER_TOKEN_FILE} ] && held=$(cat {SERVER_TOKEN_FILE}) \\
   && [ "$held" != "$K3S_TOKEN" ] && [ "${{held##*::server:}}" != "$K3S_TOKEN" ]; then
  echo "netstab: netstab:k3sToken is not the token of the running server $(hostname). A server's token cannot change in place: rotate it on the server (k3s token rotate --new-token ...), then set netstab:k3sToken to the new value; or rebuild the cluster." >&2
  exit 1
fi
"""


def _agent_follows_server(url: str) -> str:
    """An agent whose server was rebuilt (a new cluster CA) rejoins it instead of retrying forever.
    With the token in its full K10<CA hash>::... form, a CA that does not match the hash is refused
    first: whoever answers at the server's address cannot make the agents drop their cluster. (K3s
    hashes a single-certificate bundle over its literal bytes: k3s pkg/clientaccess/token.go hashCA.)"""
    return f"""if [ -f {AGENT_CA_FILE} ] && curl -fsSk --max-time 10 {url}/cacerts -o "$work/server-ca.crt" && ! cmp -s "$work/server-ca.crt" {AGENT_CA_FILE}; then
  case "$K3S_TOKEN" in
    K10*::*)
      pinned=${{K3S_TOKEN#K10}}; pinned=${{pinned%%::*}}
      if [ "$(grep -c 'BEGIN CERTIFICATE' "$work/server-ca.crt")" = 1 ] && [ "$(sha256sum < "$work/server-ca.crt" | cut -d' ' -f1)" != "$pinned" ]; then
        echo "netstab: the server at {url} presents a cluster CA that does not match netstab:k3sToken's CA hash: not rejoining it" >&2
        exit 1
      fi ;;
  esac
  echo "netstab: the server at {url} has a new cluster CA (it was rebuilt): resetting this agent's state so it rejoins"
  systemctl stop k3s-agent 2>/dev/null || true
  rm -rf {AGENT_DIR}
  rm -f {STAMP_DIR}/k3s-agent.applied
fi
"""


def _install(k3s: K3sConfig, node: NodeConfig, service: str, exec_args: list[str], extra_env: str = "", before: str = "",
             digest: str = "") -> str:
    """Install or re-apply K3s when anything of its invocation changed: version, arguments, server
    URL or token. The installer rewrites its unit (arguments) and env file (token, URL) and restarts
    the service when either changed; the stamp is a hash of the whole invocation, the token hashed
    on the node, so no command text derives from the secret."""
    version = word(k3s.version)
    args = " ".join(word(a) for a in exec_args)
    # `digest`: of the files the service reads at start (HA servers: config.yaml), so a change to them re-applies
    invocation = word(f"{k3s.version} {extra_env}{args}" + (f" {digest}" if digest else ""))
    stamp = f"{STAMP_DIR}/{service}.applied"
    return f"""#!/bin/sh
set -eu
{_READ_TOKEN}work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
want=$(printf '%s %s' {invocation} "$(printf '%s' "$K3S_TOKEN" | sha256sum | cut -d' ' -f1)" | sha256sum | cut -d' ' -f1)
{before}if systemctl is-active --quiet {service} && [ "$(cat {stamp} 2>/dev/null)" = "$want" ]; then
  echo "netstab: {in_double_quotes(node.name)} already runs K3s {in_double_quotes(k3s.version)} with this configuration; nothing to do"
  exit 0
fi
# The same node password every time this node is built, so a rebuilt VM of the same name is
# accepted back into the cluster (K3s keeps each node's password as <name>.node-password.k3s).
# It derives from the node's host key, not the token, so it survives a token rotation.
if [ ! -f {NODE_PASSWORD_FILE} ]; then
  if [ ! -r {HOST_KEY_FILE} ]; then
    echo "netstab: {in_double_quotes(node.name)} has no SSH host key at {HOST_KEY_FILE} to derive its node password from (its user-data installs it)" >&2
    exit 1
  fi
  install -d -m 0700 "$(dirname {NODE_PASSWORD_FILE})"
  seed=$(sha256sum < {HOST_KEY_FILE} | cut -d' ' -f1)
  (umask 077; printf 'netstab-node-password %s %s' {word(node.name)} "$seed" | sha256sum | cut -c1-32 > {NODE_PASSWORD_FILE})
fi
echo "netstab: installing K3s {in_double_quotes(k3s.version)} on {in_double_quotes(node.name)} ({service})"
curl -sfL --retry 5 --retry-all-errors --connect-timeout 15 {word(k3s.install_url)} -o "$work/install.sh"
{extra_env}INSTALL_K3S_VERSION={version} sh "$work/install.sh" {args}
install -d -m 0700 {STAMP_DIR}
printf '%s\\n' "$want" > {stamp}
echo "netstab: K3s {in_double_quotes(k3s.version)} running on {in_double_quotes(node.name)} with this configuration"
"""


def _common_args(node: NodeConfig) -> list[str]:
    return ["--node-ip", str(node.ip), "--node-name", node.name, "--flannel-iface", GUEST_INTERFACE]


def server_install_script(config: StackConfig, node: NodeConfig | None = None) -> str:
    node = node or config.server
    if config.ha:
        return _ha_server_install_script(config, node)
    args = ["server", *_common_args(node), "--advertise-address", str(node.ip), "--tls-san", str(node.ip), "--write-kubeconfig-mode", "0600"]
    return _install(config.k3s, node, "k3s", args, before=SERVER_TOKEN_MATCHES)


# K3s reads the join keys only while the server's etcd is not initialized (k3s-io/k3s
# pkg/cluster/bootstrap.go `shouldBootstrapLoad`: "If the database is initialized we skip
# bootstrapping"; pkg/etcd `IsInitialized` stats the WAL folder below). A change of them alone
# rewrites config.yaml and restarts nothing.
JOIN_KEYS = ("cluster-init", "server")
ETCD_WAL_DIR = "/var/lib/rancher/k3s/server/db/etcd/member/wal"


def server_config(config: StackConfig, node: NodeConfig, founding: bool = False) -> dict[str, object]:
    """An HA server's /etc/rancher/k3s/config.yaml. Every server's steady file joins the cluster
    through the VIP (`server:`), the first one's included: a rebuilt server, whichever it is, rejoins
    the running cluster instead of founding a second one (kube-hetzner keeps the same steady shape:
    every control plane's config names another one, and cluster-init lives only in a one-time
    bootstrap step). `founding`: that one-time step's file on the first server (`cluster-init`).
    `tls-san` carries the VIP once, beside the node's address: clients dial the VIP."""
    role: dict[str, object] = {"cluster-init": True} if founding else {"server": server_url(config)}
    return {**role, "tls-san": [str(config.k3s.vip), str(node.ip)]}


def _write_file(target: str, text: str, tag: str) -> str:
    """Shell: put `text` at `target` (mode 0600, its folder made) only when it differs; `$work` is the script's scratch folder."""
    return f"""mkdir -p "$(dirname {word(target)})"
cat > "$work/{tag}" {heredoc(text, "NETSTAB_" + tag.upper().replace("-", "_"))}if ! cmp -s "$work/{tag}" {word(target)}; then
  install -m 0600 "$work/{tag}" {word(target)}
fi
"""


def _ha_server_install_script(config: StackConfig, node: NodeConfig, founding: bool = False) -> str:
    conf = server_config(config, node, founding)
    text = yaml.safe_dump(conf, sort_keys=False)
    # the restart stamp covers what K3s reads at every start, not the join keys (JOIN_KEYS)
    steady = yaml.safe_dump({k: v for k, v in conf.items() if k not in JOIN_KEYS}, sort_keys=False)
    before = SERVER_TOKEN_MATCHES + (_found_only_once(config) if founding else "") + _write_file(CONFIG_FILE, text, "config")
    if not founding:
        # a server with no etcd yet joins through the VIP: wait until a server behind it answers
        before += f"if [ ! -d {ETCD_WAL_DIR} ]; then\n{_indent(_wait_for_api(server_url(config)))}fi\n"
    if node == config.servers[0]:
        # K3s applies what is in its manifests folder once its API is up, and again when the file changes
        before += _write_file(kubevip.MANIFEST_PATH, kubevip.manifest_text(config), "kube-vip")
    args = ["server", *_common_args(node), "--advertise-address", str(node.ip), "--write-kubeconfig-mode", "0600"]
    return _install(config.k3s, node, "k3s", args, before=before, digest=hashlib.sha256(steady.encode()).hexdigest())


def found_cluster_script(config: StackConfig) -> str:
    """The one-time step that founds an HA cluster: K3s on the first server with `cluster-init`. It runs
    on the stack's first up only (components/cluster.py: nothing of it is compared again); the
    first server's own install step then rewrites the join key to the VIP, restarting nothing."""
    return _ha_server_install_script(config, config.servers[0], founding=True)


def _found_only_once(config: StackConfig) -> str:
    """Shell: found nothing on a server whose etcd is initialized (a stack deployed before this step
    existed: its first server's own install takes over, one server at a time), and nothing when a
    cluster already answers at the VIP (a stack whose state was lost while its cluster runs): a second
    etcd cluster would split the servers between two."""
    url, first = server_url(config), in_double_quotes(config.servers[0].name)
    return f"""if [ -d {ETCD_WAL_DIR} ]; then
  echo "netstab: {first} already runs an etcd member: there is no cluster to found"
  exit 0
fi
if curl -fsSk --max-time 5 {word(url + "/cacerts")} -o /dev/null; then
  echo "netstab: a K3s cluster already answers at {in_double_quotes(url)}: not founding a second one on {first}. Rebuild the cluster (pulumi destroy, then pulumi up), or stop what answers at the VIP." >&2
  exit 1
fi
"""


def _indent(text: str) -> str:
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def _wait_for_api(url: str, timeout_s: int = VIP_WAIT_S) -> str:
    """Shell: wait, bounded, until the API at `url` answers (its /cacerts needs no credentials)."""
    return f"""deadline=$(( $(date +%s) + {timeout_s} ))
until curl -fsSk --max-time 5 {word(url + "/cacerts")} -o /dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "netstab: the API address {in_double_quotes(url)} did not answer within {timeout_s}s: is kube-vip running on a server (kubectl -n {kubevip.NAMESPACE} get pods -l app.kubernetes.io/name={kubevip.APP})?" >&2
    exit 1
  fi
  sleep 5
done
"""


def agent_install_script(config: StackConfig, node: NodeConfig) -> str:
    url = server_url(config)
    before = (_wait_for_api(url) if config.ha else "") + _agent_follows_server(url)
    return _install(config.k3s, node, "k3s-agent", ["agent", *_common_args(node)], extra_env=f"K3S_URL={word(url)} ", before=before)


def install_script(config: StackConfig, node: NodeConfig) -> str:
    return server_install_script(config, node) if node.role == "server" else agent_install_script(config, node)


def server_url(config: StackConfig) -> str:
    """What agents and every later step dial: the VIP with several servers, else the server."""
    return f"https://{config.api_address}:{API_PORT}"


CLOUD_INIT_TIMEOUT_S = 900  # first boot installs packages: generous, but never forever


def cloud_init_wait(timeout_s: int = CLOUD_INIT_TIMEOUT_S) -> str:
    """Shell: wait for first boot to finish, bounded. Leaves the outcome in $cloud_init: done,
    degraded (exit 2: finished with recoverable errors, e.g. a config that failed cloud-init's
    schema, so part of it may not have been applied), failed or timeout. Exit codes: canonical/cloud-init
    cloudinit/cmd/status.py `handle_status_args` (26.1): ERROR 1, DEGRADED 2, else 0."""
    return f"""timeout {timeout_s} cloud-init status --wait >/dev/null 2>&1
rc=$?
case "$rc" in
  0) cloud_init=done ;;
  2) cloud_init=degraded ;;
  124) cloud_init=timeout ;;
  *) cloud_init=failed ;;
esac
"""


# Prints each of cloud-init's recoverable errors as `LEVEL: message`, one a line, from
# `cloud-init status --format json` ("recoverable_errors": level -> messages; status.py print_status).
# python3 is there wherever cloud-init is (it is a Python program).
_WARNINGS = r"""import json, sys
try:
    found = json.load(sys.stdin).get("recoverable_errors") or {}
except ValueError:
    raise SystemExit(1)
lines = ["%s: %s" % (level, " ".join(str(m).split())) for level, messages in sorted(found.items()) for m in messages]
print("\n".join("  " + line for line in lines))
raise SystemExit(0 if lines else 1)
"""


def cloud_init_wait_script(timeout_s: int = CLOUD_INIT_TIMEOUT_S) -> str:
    """Done goes on; degraded, failed and a timeout stop the deploy and say why (a degraded boot
    names its warnings, or shows `cloud-init status --long` when it cannot read them)."""
    return f"""#!/bin/sh
set -u
{cloud_init_wait(timeout_s)}if [ "$cloud_init" = timeout ]; then
  echo "netstab: cloud-init still running on $(hostname) after {timeout_s}s:" >&2
  cloud-init status --long >&2 || true
  exit 1
fi
if [ "$cloud_init" = degraded ]; then
  echo "netstab: cloud-init finished on $(hostname) with recoverable errors (degraded): part of the first boot's setup may be missing:" >&2
  cloud-init status --format json 2>/dev/null | python3 -c {word(_WARNINGS)} >&2 || cloud-init status --long >&2 || true
  echo "netstab: fix what they name; if they come from user-data that has changed since this boot (the VM runs its cloud-init instance until it reboots), reboot the VM, then pulumi up" >&2
  exit 1
fi
if [ "$cloud_init" = failed ]; then
  echo "netstab: cloud-init failed on $(hostname) (exit $rc):" >&2
  cloud-init status --long >&2 || true
  exit 1
fi
echo "netstab: cloud-init finished on $(hostname)"
"""


def _poll_until_ready(timeout: int, checks: str, ready: str, not_ready: str) -> str:
    """Shell: run `checks` (which add what is not there yet to $waiting) every 5 s until nothing is
    waited for, then say `ready`; after `timeout` seconds, fail saying `not_ready` and what is missing."""
    return f"""#!/bin/sh
set -u
deadline=$(( $(date +%s) + {timeout} ))
while :; do
  waiting=""
{checks}  if [ -z "$waiting" ]; then
    echo "netstab: {ready}"
    k3s kubectl get nodes -o wide
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "netstab: {not_ready} after {timeout}s:$waiting" >&2
    k3s kubectl get nodes -o wide >&2 || true
    exit 1
  fi
  sleep 5
done
"""


def nodes_ready_script(config: StackConfig) -> str:
    """Run on the server: wait until every configured node reports Ready, bounded by the config timeout."""
    names = " ".join(word(n.name) for n in config.nodes)
    checks = f"""  for node in {names}; do
    status=$(k3s kubectl get node "$node" -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null || true)
    [ "$status" = "True" ] || waiting="$waiting $node"
  done
"""
    return _poll_until_ready(config.k3s.ready_timeout_s, checks, f"all {len(config.nodes)} nodes Ready", "not Ready")


# One jsonpath per node: its Ready status, then the role labels K3s sets on a server that runs the
# control plane and an embedded etcd member.
_NODE_STATE = ('{.status.conditions[?(@.type=="Ready")].status} {.metadata.labels.node-role\\.kubernetes\\.io/control-plane} '
               '{.metadata.labels.node-role\\.kubernetes\\.io/etcd}')


def ha_ready_script(config: StackConfig) -> str:
    """Run on the first server: Ready means HA. Every server is a Ready node labelled control-plane and
    etcd, the VIP answers /readyz (through kube-vip, with the admin credentials, so its certificate must
    carry the VIP), and every agent is Ready; polled until k3s.readyTimeoutSeconds."""
    servers = " ".join(word(n.name) for n in config.servers)
    agents = " ".join(word(n.name) for n in config.agents)
    vip_url = server_url(config)
    checks = f"""  for node in {servers}; do
    state=$(k3s kubectl get node "$node" -o jsonpath={word(_NODE_STATE)} 2>/dev/null || true)
    [ "$state" = "True true true" ] || waiting="$waiting $node(server: ${{state:-absent}})"
  done
  for node in {agents}; do
    state=$(k3s kubectl get node "$node" -o jsonpath='{{.status.conditions[?(@.type=="Ready")].status}}' 2>/dev/null || true)
    [ "$state" = "True" ] || waiting="$waiting $node(agent: ${{state:-absent}})"
  done
  readyz=$(k3s kubectl --server {word(vip_url)} get --raw /readyz 2>/dev/null || true)
  [ "$readyz" = "ok" ] || waiting="$waiting VIP {in_double_quotes(vip_url)}(/readyz: ${{readyz:-no answer}})"
"""
    ready = (f"HA Ready: {len(config.servers)} servers Ready as control-plane and etcd members, {len(config.agents)} agents Ready, "
             f"the VIP {in_double_quotes(vip_url)} answers /readyz")
    return _poll_until_ready(config.k3s.ready_timeout_s, checks, ready, "not HA Ready")


def fetch_kubeconfig_script() -> str:
    return f"cat {KUBECONFIG_PATH}\n"


def rewrite_kubeconfig(kubeconfig: str, server_ip: str, name: str) -> str:
    """Point the kubeconfig K3s writes (server 127.0.0.1) at the server's real address, and name its
    cluster, user and context `name` instead of K3s's `default`, which collides on a merge."""
    if LOOPBACK_SERVER not in kubeconfig:
        raise ValueError(f"kubeconfig has no server {LOOPBACK_SERVER} to rewrite; is {KUBECONFIG_PATH} from K3s?")
    doc = yaml.safe_load(kubeconfig.replace(LOOPBACK_SERVER, f"https://{server_ip}:{API_PORT}"))
    for section in ("clusters", "users", "contexts"):
        for entry in doc.get(section) or []:
            entry["name"] = name
    for entry in doc.get("contexts") or []:
        entry.setdefault("context", {}).update(cluster=name, user=name)
    doc["current-context"] = name
    return yaml.safe_dump(doc, sort_keys=False)
