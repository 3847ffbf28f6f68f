"""Re-record the judge fixtures from a lab run: `python -m tests.probes.record_fixtures DIR [NAME=SCENARIO_DIR ...]`.

DIR holds the lab's reports (`python -m lab SCENARIO --report DIR/SCENARIO` as root, one per scenario);
each fixture is that scenario's Phase 1 evidence (`before-<host>.json`), and `after-<host>.json` for
blackhole, trimmed to what the judge reads (tests/probes/fixtures/README.md). NAME=SCENARIO_DIR records
a fixture from another run folder (loss-fooled-sweep: a `loss` run whose sweep the loss fooled).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SCENARIOS = ("blackhole", "toward-server", "loss", "silent-server", "bad-cert", "rate-limited")
REFERENCE = ["pve"]
KEPT_HTTP = ("https://ghcr.io/", "https://api.doppler.com/")  # a registry and the API, of the six endpoints
HOST = ("interfaces", "default_routes", "resolvers", "resolved_upstreams")
RECORD = ("kind", "target", "timestamp", "ok", "error_class", "error", "status", "remote_ip", "phases_ms", "big_hello", "digest", "served_by")
TRIAL = ("mss", "big_hello", "ok", "error_class", "through")


def _pick(value: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: value[k] for k in keys if k in value}


def trim(doc: dict[str, Any]) -> dict[str, Any]:
    host = _pick(doc.get("host") or {}, HOST)
    host["interfaces"] = [_pick(i, ("name", "mtu")) for i in host.get("interfaces", [])]
    host["default_routes"] = [_pick(r, ("family", "dev", "via")) for r in host.get("default_routes", [])]
    records = [_pick(r, RECORD) for r in doc.get("records", [])
               if doc["command"] != "http" or str(r.get("target", "")).startswith(KEPT_HTTP)]
    out = {"schema": doc["schema"], "command": doc["command"], "interrupted": doc.get("interrupted", False), "host": host, "records": records}
    if "mss_sweep" in doc:
        sweep = dict(doc["mss_sweep"])
        sweep["trials"] = [_pick(t, TRIAL) for t in sweep.get("trials", [])]
        out["mss_sweep"] = sweep
    return out


def evidence(folder: Path, phase: str) -> dict[str, list[dict[str, Any]]]:
    files = sorted(folder.glob(f"{phase}-*.json"))
    return {p.name.removeprefix(f"{phase}-").removesuffix(".json"): [trim(d) for d in json.loads(p.read_text())] for p in files}


def record(name: str, folder: Path, scenario: str) -> None:
    data: dict[str, Any] = {"scenario": scenario, "reference": REFERENCE, "evidence": evidence(folder, "before")}
    after = evidence(folder, "after")
    if after and name == "blackhole":
        data["after"] = after
    (FIXTURES / f"{name}.json").write_text(json.dumps(data) + "\n")


def main(argv: list[str]) -> int:
    root, *extra = argv
    for scenario in SCENARIOS:
        record(scenario, Path(root) / scenario, scenario)
    for pair in extra:
        name, _, folder = pair.partition("=")
        record(name, Path(folder), "loss" if name == "loss-fooled-sweep" else name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
