"""How a rendered script becomes the command text of a remote step (stdin stays free for secrets).

The script travels as one shell word (components/render/quote.py, the only quoting module).
"""

from __future__ import annotations

from components.render.quote import word

# Where netstab keeps its own state on a machine it configures (install stamps, a kept measurement).
STATE_DIR = "/var/lib/netstab"


def as_login_user(script: str) -> str:
    """The command text for a script that needs no root."""
    return f"sh -c {word(script)}"


def as_root(script: str, user: str = "") -> str:
    """The command text for a script run over SSH, elevated with sudo unless the user is root
    (a Proxmox host has no sudo). The script travels in the command, so stdin stays free.
    """
    prefix = "" if user == "root" else "sudo -n "
    return f"{prefix}sh -c {word(script)}"


def with_agent(missing_python: str) -> str:
    """Shell: a private work folder ($work, with $work/out for results), the probe agent from stdin
    as $work/agent.py, and a stop with `missing_python` (one line) when there is no python3 to run it."""
    return f"""work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"
cat > "$work/agent.py"
if ! command -v python3 >/dev/null 2>&1; then
  echo {word(missing_python)} >&2
  exit 1
fi
"""
