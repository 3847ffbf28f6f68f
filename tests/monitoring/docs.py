"""Small `netstab.probe/v1` documents for the monitoring tests, built the way the agent writes them."""

from __future__ import annotations

from typing import Any

FACTS = {"hostname": "cp1", "interfaces": [{"name": "eth0", "mtu": 1400}], "default_routes": [{"family": "inet", "dev": "eth0", "via": "10.27.27.1"}],
         "resolvers": ["10.27.27.1"]}


def http(target: str, ok: bool, error_class: str | None = None, *, big: bool = False, at: str = "2026-12-06T05:00:00.000000Z",
         tls_ms: float = 30.0, ip: str = "203.0.113.10") -> dict[str, Any]:
    phases = {"dns": 2.0, "connect": 10.0, "tls": tls_ms, "ttfb": 40.0, "total": 90.0} if ok else {"dns": 2.0, "connect": 10.0}
    return {"kind": "http", "target": target, "attempt": 1, "timestamp": at, "ok": ok, "error_class": None if ok else error_class,
            "error": None if ok else f"{error_class} from the test", "remote_ip": ip, "remote_port": 443, "phases_ms": phases, "big_hello": big}


def pull(image: str, ok: bool, error_class: str | None = None, *, manifest: bool = False, at: str = "2026-12-06T05:00:00.000000Z",
         hosts: list[str] | None = None) -> dict[str, Any]:
    rec = {"kind": "pull", "target": image, "attempt": 1, "timestamp": at, "ok": ok, "error_class": None if ok else error_class,
           "error": None if ok else f"{error_class} from the test", "remote_ip": None, "remote_port": None, "phases_ms": {"total": 800.0},
           "hosts": hosts or []}
    if manifest:
        rec["mode"] = "manifest"
    return rec


def doc(command: str, records: list[dict[str, Any]], *, started: str = "2026-12-06T05:00:00.000000Z",
        finished: str = "2026-12-06T05:00:04.500000Z", hostname: str = "cp1", sweep: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"schema": "netstab.probe/v1", "agent_version": "1.2", "command": command, "argv": [], "started": started,
                           "finished": finished, "interrupted": False, "host": dict(FACTS, hostname=hostname), "records": records, "summary": []}
    if sweep is not None:
        out["mss_sweep"] = sweep
    return out


def sweep(target: str, verdict: str, working_mss: int | None, *, at: str = "2026-12-06T05:00:03.000000Z", ip: str = "203.0.113.10") -> dict[str, Any]:
    """An mss-sweep document with its record, as `run_sweep` writes it."""
    black = verdict == "black-hole"
    body = {"target": target, "remote_ip": ip, "source": None, "route_mtu": 1400, "ip_overhead": 40, "default_mss_works": not black,
            "default_tries": 3, "default_stalls": 3 if black else 0, "direction": "both" if black else None, "working_mss": working_mss,
            "path_mtu": working_mss + 40 if working_mss else None, "black_hole": black, "verdict": verdict,
            "recommended_clamp": working_mss if black else None, "explanation": f"{verdict} in the test", "note": None,
            "unreachable_class": None, "certificate_error": None, "trials": [], "tracepath": None}
    rec = {"kind": "mss-sweep", "target": target, "attempt": 1, "timestamp": at, "ok": not black,
           "error_class": "tls_handshake_timeout" if black else None, "error": None, "remote_ip": ip, "remote_port": 443, "phases_ms": {}}
    return doc("mss-sweep", [rec], started=at, finished=at, sweep=body)
