"""The login user's authorized_keys on a running node, kept to `ssh.publicKeys` (docs/lifecycle.md).

Cloud-init adds `ssh_authorized_keys` once per instance and never removes one, so a key added to the
config never reaches a running node and a key removed from it is never revoked there. This script
runs inside the VM through the QEMU guest agent (render/guest.py via_guest_agent), so it needs no SSH
to the node, with neither the old key nor the new one: it adds every configured key and removes each
key netstab installed before that is no longer configured (it keeps a list of what it manages), and
leaves keys someone added by hand alone. It runs before any step dials the node over SSH.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.render.quote import word
from components.render.shell import STATE_DIR

MANAGED_FILE = f"{STATE_DIR}/authorized_keys.managed"  # the keys netstab installed, one a line
USER_WAIT_S = 600  # on a first boot, cloud-init creates the user after the guest agent answers


def authorized_keys_script(user: str, keys: Sequence[str], user_wait_s: int = USER_WAIT_S) -> str:
    """Inside the guest, as root. `NETSTAB_ROOT` (empty in a real guest) relocates the managed list and
    `NETSTAB_HOME` the user's home, for tests."""
    wanted = " ".join(word(k) for k in keys)
    who = word(user)
    return f"""#!/bin/sh
# netstab authorized keys of {user}
set -eu
deadline=$(( $(date +%s) + {user_wait_s} ))
until getent passwd {who} >/dev/null 2>&1 || [ -n "${{NETSTAB_HOME:-}}" ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "netstab: the user {user} does not exist after {user_wait_s}s (cloud-init creates it on first boot)" >&2
    exit 1
  fi
  sleep 2
done
home="${{NETSTAB_HOME:-$(getent passwd {who} | cut -d: -f6)}}"
keys="$home/.ssh/authorized_keys"
managed="${{NETSTAB_ROOT:-}}{MANAGED_FILE}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\\n' {wanted} > "$work/wanted"
mkdir -p "$home/.ssh"
touch "$keys"
: > "$work/revoked"
if [ -f "$managed" ]; then grep -vxF -f "$work/wanted" "$managed" > "$work/revoked" || true; fi
if [ -s "$work/revoked" ]; then grep -vxF -f "$work/revoked" "$keys" > "$work/new" || true; else cat "$keys" > "$work/new"; fi
while IFS= read -r key; do
  grep -qxF -- "$key" "$work/new" || printf '%s\\n' "$key" >> "$work/new"
done < "$work/wanted"
mkdir -p "$(dirname "$managed")"
cp "$work/wanted" "$managed"
if cmp -s "$work/new" "$keys"; then
  echo "netstab: {user}'s authorized keys are as configured"
  exit 0
fi
cat "$work/new" > "$keys"
chmod 0700 "$home/.ssh"
chmod 0600 "$keys"
[ -n "${{NETSTAB_HOME:-}}" ] || chown -R {who}: "$home/.ssh"
echo "netstab: {user}'s authorized keys set: $(wc -l < "$work/wanted") configured, $(wc -l < "$work/revoked") revoked"
"""
