"""The registry mirror VM: one pull-through `docker-registry` instance per upstream, its host
firewall, cloud-init, health check and warm-up; and the K3s `registries.yaml` that points at it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import yaml

from components.config import MirrorConfig, NetworkConfig, SshConfig, UpstreamConfig
from components.config.mirror import REGISTRY_NAME
from components.render import cloudinit
from components.render.k3s import cloud_init_wait
from components.render.quote import file_name, heredoc, word
from components.render.registry import RegistryInstance, registry_config

CONFIG_DIR = "/etc/netstab/registry"
STORAGE_DIR = "/var/lib/netstab-mirror"
UNIT = "netstab-registry@"
REGISTRIES_PATH = "/etc/rancher/k3s/registries.yaml"


def instance(mirror: MirrorConfig, upstream: UpstreamConfig) -> RegistryInstance:
    assert mirror.vm is not None
    # listens on the private address only; the storage directory is the unit's StateDirectory
    return RegistryInstance(f"{mirror.vm.ip}:{upstream.port}", f"{STORAGE_DIR}/{file_name(upstream.registry)}", remote_url=upstream.remote)


def instance_configs(mirror: MirrorConfig) -> dict[str, str]:
    """upstream registry -> its docker-registry config file."""
    return {u.registry: registry_config(instance(mirror, u)) for u in mirror.upstreams}


SERVE = "/usr/local/lib/netstab/registry-serve"

# Upstream credentials reach an instance as base64 in its environment file (characters systemd's
# EnvironmentFile parsing cannot mangle), decoded here into what distribution reads, byte for byte.
SERVE_TEXT = f"""#!/bin/sh
# netstab: start one pull-through instance ($1 = upstream registry), with its credentials if any
set -eu
decode() {{ value=$(printf '%s' "$1" | base64 -d; printf x); printf '%s' "${{value%x}}"; }}
if [ -n "${{NETSTAB_PROXY_USERNAME_B64:-}}" ]; then
  REGISTRY_PROXY_USERNAME=$(decode "$NETSTAB_PROXY_USERNAME_B64"; printf x); REGISTRY_PROXY_USERNAME=${{REGISTRY_PROXY_USERNAME%x}}
  REGISTRY_PROXY_PASSWORD=$(decode "$NETSTAB_PROXY_PASSWORD_B64"; printf x); REGISTRY_PROXY_PASSWORD=${{REGISTRY_PROXY_PASSWORD%x}}
  export REGISTRY_PROXY_USERNAME REGISTRY_PROXY_PASSWORD
fi
unset NETSTAB_PROXY_USERNAME_B64 NETSTAB_PROXY_PASSWORD_B64
exec docker-registry serve "{CONFIG_DIR}/$1.yml"
"""

UNIT_TEXT = f"""[Unit]
Description=netstab pull-through registry mirror for %i
After=network-online.target netstab-mirror-firewall.service
Wants=network-online.target
# distribution 2.8 exits at start when its upstream is unreachable: keep retrying, forever.
StartLimitIntervalSec=0

[Service]
User=docker-registry
# root-only (0600): systemd reads it before it drops to the service's user
EnvironmentFile=-{CONFIG_DIR}/%i.env
ExecStart=/bin/sh {SERVE} %i
StateDirectory=netstab-mirror/%i
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def firewall(mirror: MirrorConfig, network: NetworkConfig) -> str:
    """Only the VM subnet may reach the mirror's ports."""
    ports = ", ".join(str(u.port) for u in mirror.upstreams)
    family = "ip6" if network.subnet.version == 6 else "ip"
    return f"""table inet netstab_mirror {{
  chain input {{
    type filter hook input priority filter; policy accept;
    tcp dport {{ {ports} }} {family} saddr != {network.subnet} drop
  }}
}}
"""


FIREWALL_UNIT = """[Unit]
Description=netstab mirror host firewall (registry ports open to the VM subnet only)
Before=network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/nft -f /etc/netstab/mirror-firewall.nft
ExecStop=/usr/sbin/nft delete table inet netstab_mirror

[Install]
WantedBy=multi-user.target
"""


def user_data(mirror: MirrorConfig, network: NetworkConfig, ssh: SshConfig) -> str:
    """The distribution's own docker-registry package: the mirror needs no container registry to come up."""
    assert mirror.vm is not None
    base = yaml.safe_load(cloudinit.user_data(mirror.vm, ssh))
    base["packages"] = ["docker-registry", "nftables", "qemu-guest-agent", "curl", "python3"]
    files: list[dict[str, Any]] = [
        {"path": f"{CONFIG_DIR}/{file_name(registry)}.yml", "permissions": "0644", "content": text} for registry, text in instance_configs(mirror).items()
    ]
    files += [
        {"path": SERVE, "permissions": "0755", "content": SERVE_TEXT},
        {"path": f"/etc/systemd/system/{UNIT}.service", "permissions": "0644", "content": UNIT_TEXT},
        {"path": "/etc/netstab/mirror-firewall.nft", "permissions": "0644", "content": firewall(mirror, network)},
        {"path": "/etc/systemd/system/netstab-mirror-firewall.service", "permissions": "0644", "content": FIREWALL_UNIT},
    ]
    base["write_files"] = files
    units = [f"{UNIT}{u.registry}.service" for u in mirror.upstreams]
    # The package's own instance would listen on :5000 on every interface as soon as it is installed:
    # masked at boot, before the packages stage, so it never starts.
    base["bootcmd"] = [["systemctl", "mask", "docker-registry.service"]]
    base["runcmd"] = [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "netstab-mirror-firewall.service"],
        ["systemctl", "enable", "--now", *units],
        ["systemctl", "enable", "--now", "qemu-guest-agent"],
    ]
    return "#cloud-config\n" + yaml.safe_dump(base, sort_keys=False)


# A 2.8 proxy exits at start when it cannot reach its upstream, with a panic naming the upstream's
# /v2/ URL and the network error: that is fine (K3s falls back upstream). Anything else (a config
# error, a storage driver that cannot start) is a broken mirror.
_UPSTREAM_UNREACHABLE = ('panic: Get "https?://[^"]*/v2/": .*(dial tcp|no such host|connection refused|i/o timeout|'
                         'TLS handshake timeout|x509|EOF|context deadline exceeded|network is unreachable)')


def upstream_unreachable_check() -> str:
    """Shell: `upstream_unreachable` reads an instance's recent log on stdin and succeeds when its
    last failure is the upstream being unreachable at start."""
    return f"""upstream_unreachable() {{
  last=$(grep -E 'panic:|configuration error|level=(fatal|panic)' | tail -n 1)
  printf '%s\\n' "$last" | grep -Eq {word(_UPSTREAM_UNREACHABLE)}
}}
"""


def health_script(mirror: MirrorConfig) -> str:
    """Healthy = every instance serves, or is restarting only because its upstream is unreachable
    (K3s then falls back upstream for that registry). A unit crash-looping on its config or storage
    is a failure. Never needs the upstream itself."""
    assert mirror.vm is not None
    # Every instance is checked at once: sequentially, four crash-looping instances would take 4 x 60 s.
    starts = "\n".join(f"check {word(u.registry)} {mirror.endpoint(u)} > \"$dir/{n}.out\" 2> \"$dir/{n}.err\" & pid{n}=$!"
                       for n, u in enumerate(mirror.upstreams))
    # ... and reported in config order, each instance's lines together
    results = "\n".join(f'wait "$pid{n}" || bad=1; cat "$dir/{n}.out"; cat "$dir/{n}.err" >&2' for n in range(len(mirror.upstreams)))
    return f"""#!/bin/sh
set -u
{cloud_init_wait()}[ "$cloud_init" = done ] || echo "mirror: WARNING cloud-init is $cloud_init on $(hostname); checking the instances anyway"
{upstream_unreachable_check()}check() {{
  unit="{UNIT}$1.service"
  i=0
  while [ $i -lt 30 ]; do
    if curl -fsS -o /dev/null --max-time 3 "$2/v2/"; then echo "mirror: $1 serving at $2"; return 0; fi
    i=$((i + 1)); sleep 2
  done
  sub=$(systemctl show -p SubState --value "$unit")
  log=$(journalctl -u "$unit" -n 60 -o cat --no-pager 2>/dev/null || true)
  if printf '%s\\n' "$log" | upstream_unreachable; then
    echo "mirror: WARNING $1 is not serving ($sub): its upstream is unreachable; pulls fall back upstream until it serves"
  else
    echo "mirror: FAILED $1: $unit is $(systemctl show -p ActiveState --value "$unit")/$sub and not because of its upstream:" >&2
    printf '%s\\n' "$log" | tail -n 20 >&2
    return 1
  fi
}}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
{starts}
bad=0
{results}
exit "$bad"
"""


def _by_registry(mirror: MirrorConfig) -> dict[str, UpstreamConfig]:
    return {name: u for u in mirror.upstreams for name in (u.registry, *u.aliases)}


def pulls_through(mirror: MirrorConfig, images: Iterable[str]) -> dict[str, list[str]]:
    """mirror endpoint -> those of `images` it serves; images of registries without an instance are skipped."""
    by_registry = _by_registry(mirror)
    plan: dict[str, list[str]] = {}
    for image in images:
        upstream = by_registry.get(image.split("/", 1)[0])
        if upstream:
            plan.setdefault(mirror.endpoint(upstream), []).append(image)
    return plan


def warmup_plan(mirror: MirrorConfig) -> dict[str, list[str]]:
    """mirror endpoint -> the warm-up images to pull through it."""
    return pulls_through(mirror, (image for images in mirror.warmup_groups.values() for image in images))


def warmup_script(mirror: MirrorConfig, k3s_version: str) -> str:
    """Run on the mirror VM with the probe agent on stdin. Pulls only through the mirror (no
    fallback: a pull served upstream would not warm the cache); one line per image."""
    plan = warmup_plan(mirror)
    pulls = "\n".join(f"warm {url} {' '.join(word(i) for i in sorted(set(images)))}" for url, images in plan.items())
    k3s = ""
    if mirror.warmup_k3s_images:
        release = k3s_version.replace("+", "%2B")
        greps = "\n".join(
            f"  imgs=$(grep -E '^({'|'.join(n.replace('.', '[.]') for n in (u.registry, *u.aliases))})/' \"$list\" | tr '\\n' ' ')\n"
            f"  [ -n \"$imgs\" ] && warm {mirror.endpoint(u)} $imgs"
            for u in mirror.upstreams
        )
        k3s = f"""# the pinned K3s release's own image list
list="$work/k3s-images.txt"
if curl -fsSL --retry 3 --max-time 60 "https://github.com/k3s-io/k3s/releases/download/{release}/k3s-images.txt" -o "$list"; then
{greps}
else
  echo "warmup: WARNING could not fetch k3s-images.txt for {k3s_version}; K3s images not pre-pulled"
fi
"""
    verdict = 'exit 1' if mirror.warmup_fatal else 'echo "warmup: warning only (mirror.warmup.fatal: false)"'
    return f"""#!/bin/sh
set -u
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
agent="$work/agent.py"
cat > "$agent"
failed=0
warm() {{  # $1 mirror endpoint, then images
  url=$1; shift
  python3 "$agent" pull --mirror "$url" --no-fallback --timeout 60 --quiet "$@" || failed=1
}}
{pulls}
{k3s}if [ "$failed" -ne 0 ]; then
  echo "warmup: some images failed (see the lines above)"
  {verdict}
fi
echo "warmup: done"
"""


def registries_yaml(mirror: MirrorConfig) -> str:
    """K3s containerd mirrors: each upstream (and alias) -> its instance.

    K3s semantics (docs.k3s.io/installation/private-registry, "Default Endpoint Fallback"):
    containerd's default endpoint for a registry is always tried last, after the endpoints listed
    here, unless K3s runs with --disable-default-registry-endpoint, which netstab never sets. So
    the mirror is the primary path and the upstream stays the fallback. Plain-HTTP endpoints need
    no `configs` entry; `configs` would only carry TLS or auth for the mirror.
    """
    mirrors = {name: {"endpoint": [mirror.endpoint(u)]} for name, u in _by_registry(mirror).items()}
    header = "# netstab: pull through the mirror first; K3s keeps each registry's default endpoint as the fallback.\n"
    return header + yaml.safe_dump({"mirrors": mirrors}, sort_keys=False)


def registries_update_script(content: str) -> str:
    """Write registries.yaml; unchanged -> nothing; changed -> backup, install, restart a running
    k3s / k3s-agent, and restore the backup if the restart fails."""
    return f"""#!/bin/sh
set -eu
target={REGISTRIES_PATH}
new=$(mktemp)
cat > "$new" {heredoc(content, "NETSTAB_REGISTRIES")}mkdir -p "$(dirname "$target")"
if [ -f "$target" ] && cmp -s "$new" "$target"; then
  rm -f "$new"
  echo "netstab: registries.yaml unchanged on $(hostname)"
  exit 0
fi
had_backup=0
if [ -f "$target" ]; then cp -p "$target" "$target.netstab-backup"; had_backup=1; fi
install -m 0644 "$new" "$target"
rm -f "$new"
for svc in k3s k3s-agent; do
  if systemctl is-active --quiet "$svc"; then
    if systemctl restart "$svc"; then
      echo "netstab: registries.yaml updated on $(hostname); $svc restarted"
      exit 0
    fi
    echo "netstab: $svc failed to restart with the new registries.yaml on $(hostname); restoring the previous file" >&2
    if [ "$had_backup" -eq 1 ]; then cp -p "$target.netstab-backup" "$target"; else rm -f "$target"; fi
    systemctl restart "$svc" || echo "netstab: $svc also failed with the previous file" >&2
    exit 1
  fi
done
echo "netstab: registries.yaml written on $(hostname); K3s is not running yet and reads it when it starts"
"""


def registries_remove_script() -> str:
    """Take registries.yaml off a node (the mirror was disabled): K3s then pulls upstream directly,
    after a restart of a running k3s / k3s-agent, which reads the file only at start. A marker
    stays until that restart succeeded, so a run cut off between the two restarts on the next run
    instead of finding no file and leaving K3s on the mirror it still holds in memory."""
    return f"""#!/bin/sh
set -eu
target={REGISTRIES_PATH}
pending="$target.netstab-restart-pending"
if [ ! -f "$target" ] && [ ! -f "$pending" ]; then
  echo "netstab: no registries.yaml on $(hostname); nothing to remove"
  exit 0
fi
: > "$pending"
rm -f "$target" "$target.netstab-backup"
for svc in k3s k3s-agent; do
  if systemctl is-active --quiet "$svc"; then
    systemctl restart "$svc"
    rm -f "$pending"
    echo "netstab: registries.yaml removed on $(hostname); $svc restarted and pulls upstream directly"
    exit 0
  fi
done
rm -f "$pending"
echo "netstab: registries.yaml removed on $(hostname); K3s is not running"
"""


def credentials_script(mirror: MirrorConfig) -> str:
    """Reads `registry base64(username) base64(password)` lines on stdin (none: no credentials) and
    makes each instance's environment file (root-only) hold exactly those: written when given,
    removed when not, the instance restarted when its file changed. Values never appear in this
    text or its output; base64 keeps any byte of them intact through the file (registry-serve decodes)."""
    known = " ".join(word(u.registry) for u in mirror.upstreams)
    return f"""#!/bin/sh
set -eu
umask 077
dir="${{NETSTAB_ROOT:-}}{CONFIG_DIR}"
given=" "
while read -r registry username password; do
  [ -n "$registry" ] || continue
  case " {known} " in *" $registry "*) ;; *) echo "netstab: no mirror instance for $registry; credentials ignored" >&2; continue ;; esac
  given="$given$registry "
  printf 'NETSTAB_PROXY_USERNAME_B64=%s\\nNETSTAB_PROXY_PASSWORD_B64=%s\\n' "$username" "$password" > "$dir/$registry.env.new"
  if [ -f "$dir/$registry.env" ] && cmp -s "$dir/$registry.env.new" "$dir/$registry.env"; then
    rm -f "$dir/$registry.env.new"
    echo "netstab: credentials of the $registry instance unchanged"
    continue
  fi
  mv "$dir/$registry.env.new" "$dir/$registry.env"
  systemctl restart "{UNIT}$registry.service"
  echo "netstab: credentials installed for the $registry instance"
done
for registry in {known}; do
  case "$given" in *" $registry "*) continue ;; esac
  if [ -f "$dir/$registry.env" ]; then
    rm -f "$dir/$registry.env"
    systemctl restart "{UNIT}$registry.service"
    echo "netstab: credentials removed from the $registry instance (it pulls anonymously)"
  fi
done
"""


def credentials_stdin(credentials: Any) -> str:
    """The secret JSON {"docker.io": {"username": ..., "password": ...}} as the script's stdin lines.
    Errors name the registry, never a value."""
    if isinstance(credentials, str):
        try:
            credentials = json.loads(credentials)
        except ValueError:
            raise ValueError("netstab:mirrorCredentials is not JSON") from None
    lines = []
    for i, (registry, pair) in enumerate(sorted((credentials or {}).items()), 1):
        if not isinstance(registry, str) or not REGISTRY_NAME.fullmatch(registry):
            # one stdin record per registry: a space or a newline in the key would make it several
            raise ValueError(f"netstab:mirrorCredentials: entry {i} is not keyed by a registry host name such as docker.io")
        if not isinstance(pair, dict) or not {"username", "password"} <= set(pair):
            raise ValueError(f"netstab:mirrorCredentials: {registry} needs username and password")
        encoded = (base64.b64encode(str(pair[k]).encode()).decode() for k in ("username", "password"))
        lines.append(" ".join((registry, *encoded)))
    return "\n".join(lines) + "\n"
