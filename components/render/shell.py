"""How a rendered script becomes the command text of a remote step (stdin stays free for secrets).

The script travels as one shell word (components/render/quote.py, the only quoting module).
"""

from __future__ import annotations

from components.render.quote import heredoc, word

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


def write_file(path: str, text: str, mode: str = "0644", root: str = "") -> str:
    """Shell that installs `text` at `path` (mode `mode`) through a temporary file and `install`,
    so a reader never sees half of it. The text travels in a quoted here-document (quote.heredoc:
    nothing in it is expanded; a text that holds the delimiter line is refused rather than cut
    short). `root`: a shell variable reference put before the path (`"$R"`: a test installs under a folder)."""
    target = root + word(path)
    return (f'new=$(mktemp)\ncat > "$new" {heredoc(text, "NETSTAB_FILE_EOF")}'
            f'mkdir -p "$(dirname {target})"\ninstall -m {word(mode)} "$new" {target}\nrm -f "$new"\n')
