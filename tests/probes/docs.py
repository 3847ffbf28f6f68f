"""Evidence shaped like the agent's `netstab.probe/v1` documents, built small for the judge's tests."""

from __future__ import annotations

from itertools import count
from typing import Any

ENDPOINTS = ("https://ghcr.io/v2/", "https://quay.io/v2/", "https://api.doppler.com/v3/projects")
IMAGE = "ghcr.io/netstab/lab-image:1"
ADDRESSES = {"ghcr.io": "203.0.113.10", "quay.io": "203.0.113.11", "registry-1.docker.io": "203.0.113.12", "api.doppler.com": "203.0.113.20"}
_clock = count()


def facts(mtu: int = 1400, via: str = "10.27.27.1", resolver: str = "10.27.27.1") -> dict[str, Any]:
    return {"hostname": "node", "interfaces": [{"name": "lo", "mtu": 65536}, {"name": "eth0", "mtu": mtu}],
            "default_routes": [{"family": "inet", "dev": "eth0", "via": via}], "resolvers": [resolver], "resolved_upstreams": None}


def rec(target: str, cls: str | None = None, *, kind: str = "http", big: bool = False, status: int | None = None,
        error: str | None = None, tls_ms: float = 40.0) -> dict[str, Any]:
    """One attempt; timestamps increase in creation order, as the agent's do."""
    ok = cls is None
    r: dict[str, Any] = {"kind": kind, "target": target, "attempt": 1, "timestamp": f"2025-01-01T00:00:{next(_clock):06d}Z",
                         "ok": ok, "error_class": cls, "error": error if error is not None else (None if ok else f"{cls} on {target}"),
                         "phases_ms": {"dns": 1.0, "connect": 10.0, "tls": tls_ms, "ttfb": 20.0, "total": 80.0} if ok else {"dns": 1.0}}
    if kind == "http":
        r["big_hello"] = big
        r["remote_ip"] = ADDRESSES.get(target.split("/")[2])
    if status is not None:
        r["status"] = status
    return r


def doc(command: str, *records: dict[str, Any], host: dict[str, Any] | None = None, sweep: dict[str, Any] | None = None,
        interrupted: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {"schema": "netstab.probe/v1", "agent_version": "1.1", "command": command, "argv": [], "interrupted": interrupted,
                         "host": host or facts(), "records": list(records), "summary": []}
    if sweep is not None:
        d["mss_sweep"] = sweep
    return d


def http(*outcomes: str | None, urls: tuple[str, ...] = ENDPOINTS, big: bool = False, repeat: int = 3) -> dict[str, Any]:
    """Every URL `repeat` times; `outcomes` cycles over the attempts (None: success)."""
    cycle = list(outcomes) or [None]
    records = [rec(url, cycle[i % len(cycle)], big=big) for i, url in enumerate(u for _ in range(repeat) for u in urls)]
    return doc("http", *records)


def pull(*outcomes: str | None, image: str = IMAGE) -> dict[str, Any]:
    return doc("pull", *[rec(image, cls, kind="pull") for cls in (outcomes or (None,))])


def sweep(verdict: str, *, host: str = "ghcr.io", clamp: int | None = None, unreachable_class: str | None = None,
          direction: str | None = None, note: str | None = None, certificate_error: str | None = None) -> dict[str, Any]:
    black_hole = verdict == "black-hole"
    result = {"target": f"{host}:443", "remote_ip": ADDRESSES.get(host), "route_mtu": 1400, "ip_overhead": 40, "verdict": verdict,
              "black_hole": black_hole, "working_mss": clamp if black_hole else (1360 if verdict.startswith("clean") else None),
              "path_mtu": (clamp + 40) if clamp else None, "recommended_clamp": clamp, "unreachable_class": unreachable_class,
              "direction": direction or ("both" if black_hole else None), "note": note, "certificate_error": certificate_error,
              "default_mss_works": not black_hole and verdict != "unreachable",
              "explanation": f"{verdict} explained", "trials": [], "tracepath": " 1?: [LOCALHOST] pmtu 1400"}
    return doc("mss-sweep", rec(f"{host}:443", None if verdict.startswith("clean") else "tls_handshake_timeout", kind="mss-sweep"), sweep=result)
