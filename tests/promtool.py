"""promtool for the tests: $NETSTAB_PROMTOOL, else the one `make deps` unpacks from Debian's
`prometheus` .deb into .cache/, else one on PATH. Missing, the tests that need it fail (they do not
skip): `make test` runs `make deps` first, which fetches it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNPACKED = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"


def promtool() -> str:
    for candidate in (os.environ.get("NETSTAB_PROMTOOL"), str(UNPACKED) if UNPACKED.exists() else None, shutil.which("promtool")):
        if candidate:
            return candidate
    raise AssertionError("promtool not found: run `make tools` (it unpacks Debian's prometheus .deb into .cache/)")


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)
