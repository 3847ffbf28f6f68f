"""`netstab.probe/v1` documents, checked and flattened: attempts, sweeps and host facts.

Pure (no I/O). The judge (`probes/verdict.py`), the criteria and the report read evidence only
through `collect`, so a malformed document fails here with one clear `EvidenceError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# The clamp command a stack that sets gateway.mss runs (probes/gate.py has one per kind of gateway config).
CLAMP_COMMAND = "pulumi config set --path netstab:gateway.mss {mss}"

SCHEMA = "netstab.probe/v1"
COMMANDS = ("http", "pull", "mss-sweep", "facts")
# Failed before a TCP connection existed: these say nothing about the server's TLS or the path's size.
PRE_TCP = frozenset({"dns_error", "connect_timeout", "connect_refused", "connect_error"})
# The TLS handshake finished (or the server sent its certificate): the server answers TLS.
TLS_ANSWERED = frozenset({"tls_certificate", "read_timeout", "bad_response", "http_status", "digest_mismatch", "registry_error"})
# A status when the record has none (pulls report it in the message only): "HTTP 429 for manifest at ...".
STATUS_IN_TEXT = re.compile(r"\bHTTP (\d{3})\b|\b(\d{3}) Too Many Requests\b")


class EvidenceError(ValueError):
    """A document the judge cannot read; the message names the host and the document."""


Document = Mapping[str, Any]
Evidence = Mapping[str, "Document | Sequence[Document]"]


@dataclass(frozen=True)
class Attempt:
    """One http or pull attempt from one host."""

    host: str
    probe: str  # "http" or "pull"
    target: str  # http: the URL without its scheme (ghcr.io/v2/); pull: the image
    server: str  # the name the attempt connects to: the URL's host, the image's registry
    big_hello: bool
    ok: bool
    error_class: str | None
    status: int | None
    remote_ip: str | None  # the address connected to, when TCP got that far
    timestamp: str
    phases: Mapping[str, float]

    @property
    def label(self) -> str:
        return f"{self.target} [big hello]" if self.big_hello else self.target

    @property
    def cell(self) -> tuple[str, str, str, bool]:
        """Attempts that must behave alike: same host, probe, target and hello size."""
        return (self.host, self.probe, self.target, self.big_hello)

    @property
    def reached_tcp(self) -> bool:
        return self.ok or self.error_class not in PRE_TCP

    @property
    def reached_tls(self) -> bool:
        return self.ok or self.error_class in TLS_ANSWERED


@dataclass(frozen=True)
class Sweep:
    """An mss-sweep's conclusion, as the judge needs it."""

    host: str
    target: str  # host:port
    server: str
    remote_ip: str | None
    verdict: str  # black-hole | unreachable | clean | clean-default
    black_hole: bool
    working_mss: int | None
    path_mtu: int | None
    recommended_clamp: int | None
    unreachable_class: str | None  # how MSS 536 failed, when it did
    direction: str | None  # both | toward-server, for a black hole
    explanation: str
    note: str | None
    certificate_error: str | None
    incomplete: str | None
    tracepath: str | None
    failed_below: int  # trials at or below the working MSS whose packets did not get through: noise a limit cannot explain


@dataclass(frozen=True)
class HostFacts:
    mtu: int | None  # of the default route's interface
    default_route: str | None
    resolvers: tuple[str, ...]  # /etc/resolv.conf
    upstreams: tuple[str, ...]  # systemd-resolved's own servers, when it runs

    def describe(self) -> str:
        resolvers = ", ".join(self.resolvers) or "?"
        if self.upstreams:
            resolvers += f" (upstream {', '.join(self.upstreams)})"
        return f"MTU {self.mtu if self.mtu is not None else '?'}, default route {self.default_route or '?'}, resolver {resolvers}"


@dataclass(frozen=True)
class Collected:
    attempts: tuple[Attempt, ...]
    sweeps: tuple[Sweep, ...]
    facts: Mapping[str, HostFacts]
    hosts: tuple[str, ...]  # every host that gave evidence, in input order
    reference: frozenset[str]  # the reference hosts among them
    notes: tuple[str, ...]
    # how the caller's gateway takes a clamp: a command with {mss} and/or {path_mtu}
    clamp_command: str = CLAMP_COMMAND

    @property
    def vm_hosts(self) -> tuple[str, ...]:
        return tuple(h for h in self.hosts if h not in self.reference)

    @property
    def failures(self) -> tuple[Attempt, ...]:
        return tuple(a for a in self.attempts if not a.ok)

    def cells(self) -> dict[tuple[str, str, str, bool], list[Attempt]]:
        out: dict[tuple[str, str, str, bool], list[Attempt]] = {}
        for a in self.attempts:
            out.setdefault(a.cell, []).append(a)
        return out


def collect(evidence: Evidence, reference: Collection[str] = (), notes: Sequence[str] = ()) -> Collected:
    """host -> one document or a list of them; `notes`: the caller's own, on what it could not
    probe. Raises EvidenceError on anything not a `netstab.probe/v1` document the judge can read."""
    attempts: list[Attempt] = []
    sweeps: list[Sweep] = []
    facts: dict[str, HostFacts] = {}
    notes = list(notes)
    for host, docs in evidence.items():
        for index, doc in enumerate(_documents(host, docs), 1):
            where = f"{host}, document {index}"
            try:
                _check(doc, where)
                if doc.get("interrupted"):
                    notes.append(f"{where} ({doc['command']}) was interrupted: partial evidence")
                if isinstance(doc.get("host"), Mapping):
                    facts.setdefault(host, _facts(doc["host"]))
                swept = isinstance(doc.get("mss_sweep"), Mapping)
                if swept:
                    sweeps.append(_sweep(host, doc["mss_sweep"], where))
                # a sweep's record restates its conclusion; without the conclusion (it failed before
                # sweeping, e.g. the name did not resolve) the record is the evidence
                attempts += [_attempt(host, rec, doc["command"], where) for rec in doc.get("records", []) if not swept]
            except EvidenceError:
                raise
            except (TypeError, ValueError, AttributeError) as exc:  # the right schema tag on a document the agent never wrote
                raise EvidenceError(f"{where}: malformed: {exc}") from None
    missing = sorted(set(reference) - set(evidence))
    notes += [f"reference host {h} gave no evidence" for h in missing]
    return Collected(tuple(attempts), tuple(sweeps), facts, tuple(evidence), frozenset(reference) & set(evidence), tuple(notes))


def _documents(host: str, docs: Any) -> Iterator[Document]:
    if isinstance(docs, Mapping):
        yield docs
    elif isinstance(docs, Sequence) and not isinstance(docs, str | bytes):
        yield from docs
    else:
        raise EvidenceError(f"{host}: expected a document or a list of documents, got {type(docs).__name__}")


def _check(doc: Any, where: str) -> None:
    if not isinstance(doc, Mapping):
        raise EvidenceError(f"{where}: not a JSON object")
    if doc.get("schema") != SCHEMA:
        raise EvidenceError(f"{where}: not a {SCHEMA} document (schema {doc.get('schema')!r})")
    if doc.get("command") not in COMMANDS:
        raise EvidenceError(f"{where}: unknown command {doc.get('command')!r} (expected one of {', '.join(COMMANDS)})")
    records = doc.get("records", [])
    if not isinstance(records, list) or not all(isinstance(r, Mapping) and isinstance(r.get("target"), str)
                                                and isinstance(r.get("ok"), bool) for r in records):
        raise EvidenceError(f"{where}: records must be a list of objects with a target and ok")
    if any(not r["ok"] and not isinstance(r.get("error_class"), str) for r in records):
        raise EvidenceError(f"{where}: a failed record has no error_class")


def _attempt(host: str, rec: Mapping[str, Any], command: str, where: str) -> Attempt:
    probe = str(rec.get("kind") or command)
    target, server = rec["target"], rec["target"]
    if probe == "http":
        target, server = _http_target(rec["target"])
    elif probe == "pull":
        server = image_registry(target)
    elif probe == "mss-sweep":
        server = target.rsplit(":", 1)[0].strip("[]")
    phases = rec.get("phases_ms") or {}
    if not isinstance(phases, Mapping):
        raise EvidenceError(f"{where}: phases_ms of {rec['target']} is not an object")
    return Attempt(host, probe, target, server, bool(rec.get("big_hello")), rec["ok"], rec.get("error_class"), _status(rec),
                   rec.get("remote_ip"), str(rec.get("timestamp", "")), {k: float(v) for k, v in phases.items()})


def _http_target(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return url.split("://", 1)[-1], parts.hostname or url


def image_registry(image: str) -> str:
    """The registry host a pull of `image` talks to, as Docker names it (docker.io is registry-1)."""
    first, _, rest = image.partition("/")
    registry = first if rest and ("." in first or ":" in first or first == "localhost") else "docker.io"
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


def _status(rec: Mapping[str, Any]) -> int | None:
    if isinstance(rec.get("status"), int) and rec["status"]:
        return int(rec["status"])
    match = STATUS_IN_TEXT.search(str(rec.get("error") or "")) if rec.get("error_class") == "http_status" else None
    return int(match.group(1) or match.group(2)) if match else None


# mss_sweep fields the judge does arithmetic on
SWEEP_INTEGERS = ("working_mss", "path_mtu", "recommended_clamp")


def _sweep(host: str, raw: Mapping[str, Any], where: str) -> Sweep:
    for key in SWEEP_INTEGERS:
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise EvidenceError(f"{where}: mss_sweep {key} is {value!r}, not an integer")
    if raw.get("remote_ip") is not None and not isinstance(raw["remote_ip"], str):
        raise EvidenceError(f"{where}: mss_sweep remote_ip is {raw['remote_ip']!r}, not an address")
    if not isinstance(raw.get("trials", []), list) or not all(isinstance(t, Mapping) for t in raw.get("trials", [])):
        raise EvidenceError(f"{where}: mss_sweep trials must be a list of objects")
    try:
        target = str(raw["target"])
        return Sweep(host, target, target.rsplit(":", 1)[0].strip("[]"), raw.get("remote_ip"), str(raw["verdict"]), bool(raw.get("black_hole")),
                     raw.get("working_mss"), raw.get("path_mtu"), raw.get("recommended_clamp"),
                     raw.get("unreachable_class") or _floor_class(raw), raw.get("direction") or _direction(raw),
                     str(raw.get("explanation", "")), raw.get("note"), raw.get("certificate_error"), raw.get("incomplete"), raw.get("tracepath"),
                     _failed_below(raw))
    except KeyError as missing:
        raise EvidenceError(f"{where}: mss_sweep has no {missing.args[0]}") from None


def _failed_below(raw: Mapping[str, Any]) -> int:
    best = raw.get("working_mss")
    if not isinstance(best, int):
        return 0
    return sum(1 for t in raw.get("trials", []) if isinstance(t.get("mss"), int) and t["mss"] <= best and not t.get("through", t.get("ok")))


def _floor_class(raw: Mapping[str, Any]) -> str | None:
    """For an `unreachable` sweep from an agent that does not say how MSS 536 failed: its trials do."""
    if raw.get("verdict") != "unreachable":
        return None
    floor = [t.get("error_class") for t in raw.get("trials", []) if t.get("mss") == 536 and not t.get("ok")]
    return floor[0] if floor else None


def _direction(raw: Mapping[str, Any]) -> str | None:
    """For a black-hole sweep from an agent that does not say: a small hello passing at the
    default MSS while the large one stalls is a hole toward the server only."""
    if not raw.get("black_hole"):
        return None
    small = [t.get("ok") for t in raw.get("trials", []) if t.get("mss") is None and not t.get("big_hello")]
    return "toward-server" if small and all(small) else "both"


def _facts(host: Mapping[str, Any]) -> HostFacts:
    routes = [r for r in host.get("default_routes") or [] if isinstance(r, Mapping)]
    route = next((r for r in routes if r.get("family") == "inet"), routes[0] if routes else None)
    mtu = None
    if route:
        mtu = next((i.get("mtu") for i in host.get("interfaces") or [] if isinstance(i, Mapping) and i.get("name") == route.get("dev")), None)
    text = f"via {route.get('via')} dev {route.get('dev')}" if route else None
    return HostFacts(mtu if isinstance(mtu, int) else None, text, _strings(host.get("resolvers")), _strings(host.get("resolved_upstreams")))


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in values) if isinstance(values, list) else ()
