"""The judge: `netstab.probe/v1` evidence -> what is wrong (`kind`) and, against success criteria,
whether the path passes (`verdict`). Pure: no I/O, so the lab, `python -m probes diagnose` and the
post-up gate call the same `diagnose` and get the same answer.

The judge is an ordered list of named rules (RULES). Each rule's docstring says the evidence it
needs and the evidence that rules it out; it returns a Finding, a SetAside (its sign is there but
evidence against it wins, or the evidence for it is missing), or None (no sign of it). The first
finding names the kind; later ones are reported beside it. docs/judge.md explains each rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

from probes.criteria import Check, Criteria, CriteriaError, checks
from probes.evidence import CLAMP_COMMAND, PRE_TCP, Attempt, Collected, Evidence, EvidenceError, Sweep, collect
from probes.kinds import KINDS
from probes.summary import Comparison, FailureGroup, PullFailure, Row, compare, failure_groups, pull_failures, table

__all__ = ["KINDS", "RULES", "Criteria", "CriteriaError", "Diagnosis", "EvidenceError", "diagnose"]

CONNECT_FAILURES = PRE_TCP - {"dns_error"}
# Failure classes loss produces: a segment or a handshake went missing, a stream broke off.
LOSS_CLASSES = frozenset({"connect_timeout", "connect_error", "tls_handshake_timeout", "tls_error", "read_timeout", "bad_response"})
REPRODUCED = 2  # stalled handshakes (none alike succeeding) that make a wall rather than noise


@dataclass(frozen=True)
class Finding:
    summary: str
    fix: str
    evidence: tuple[str, ...] = ()
    mss_fix_applies: bool = False
    recommended_clamp: int | None = None
    direction: str | None = None  # pmtu-black-hole: "both" or "toward-server"
    kind: str = ""  # the rule's kind (RULES), or healthy/unknown when no rule found anything
    rule: str = ""


@dataclass(frozen=True)
class SetAside:
    reason: str
    kind: str = ""
    rule: str = ""


Rule = Callable[[Collected], "Finding | SetAside | None"]
Cell = tuple[str, str, str, bool]


def _names(values: Iterable[str]) -> str:
    return ", ".join(sorted(set(values)))


def _verb(subjects: Collection[str], one: str, many: str) -> str:
    return one if len(set(subjects)) == 1 else many


def _reference_text(hosts: Iterable[str]) -> str:
    hosts = sorted(set(hosts))
    return f"the reference host{'s' if len(hosts) > 1 else ''} {', '.join(hosts)}"


# ---------------------------------------------------------------- the rules, in order


def _dns(ev: Collected) -> Finding | SetAside | None:
    """Needs: attempts that failed with dns_error. Ruled out by: nothing; a name that does not
    resolve stops the attempt before any packet could be sized, whatever else is wrong."""
    failed = [a for a in ev.failures if a.error_class == "dns_error"]
    if not failed:
        return None
    hosts, servers = {a.host for a in failed}, {a.server for a in failed}
    resolved = {a.host for a in ev.attempts if a.server in servers and a.error_class != "dns_error"}
    evidence = [f"dns_error x{len(failed)}: {_names(servers)} on {_names(hosts)}"]
    evidence += [f"{h}: {ev.facts[h].describe()}" for h in sorted(hosts) if h in ev.facts]
    if resolved:
        evidence.append(f"{_names(resolved)} resolve{'s' if len(resolved) == 1 else ''} the same names")
        where = f"the resolver {_names(hosts)} use{'s' if len(hosts) == 1 else ''}, since {_names(resolved)} resolve{'s' if len(resolved) == 1 else ''} them"
    else:
        where = "every host that tried: the upstream DNS, or the names themselves"
    return Finding(f"{_names(servers)} do not resolve on {_names(hosts)}; the fault is {where}",
                   "fix the resolver the nodes use (/etc/resolv.conf, systemd-resolved's upstreams, the stack's network.dns) "
                   "and check that it answers from the VM subnet; the MSS fix does not apply", tuple(evidence))


def _upstream_down(ev: Collected) -> Finding | SetAside | None:
    """Needs: a server that no attempt reached over TCP (refused, unanswered or unreachable from
    every host that tried), or a sweep that could not connect even at MSS 536. Ruled out by: any
    host, the reference host included, that connected to that server."""
    sweeps = [s for s in ev.sweeps if s.unreachable_class in CONNECT_FAILURES]
    servers = {a.server for a in ev.failures if a.error_class in CONNECT_FAILURES} | {s.server for s in sweeps}
    if not servers:
        return None
    reached = {srv: {a.host for a in ev.attempts if a.server == srv and a.reached_tcp} | _swept_through(ev, srv) for srv in servers}
    down = sorted(srv for srv in servers if not reached[srv])
    if not down:
        return SetAside("; ".join(f"{srv} accepts TCP from {_names(hosts)}" for srv, hosts in sorted(reached.items()))
                        + _only_vms_note(ev, servers, lambda a: a.reached_tcp, "TCP"))
    failed = [a for a in ev.failures if a.server in down]
    tried = {a.host for a in failed} | {s.host for s in sweeps if s.server in down}
    evidence = [f"{cls} x{n}" for cls, n in _class_counts(failed)] + [f"mss-sweep from {s.host}: {s.explanation}" for s in sweeps if s.server in down]
    references = tried & ev.reference
    where = f"from every host that tried, {_reference_text(references)} included" if references else \
        f"from {_names(tried)}; no reference host tried: if the Proxmox host connects, the VM subnet's egress is at fault instead"
    return Finding(f"{', '.join(down)} refuse{'s' if len(down) == 1 else ''} or do not answer TCP {where}",
                   "the service, or the path to it, is down: check its status and the upstream firewall; nothing on the VM side "
                   "fixes it (the registry mirror serves what it has cached meanwhile); the MSS fix does not apply", tuple(evidence))


def _stall(ev: Collected) -> Finding | SetAside | None:
    """Needs: a sweep whose handshakes still stall at MSS 536 after TCP connected: the server
    accepts TCP and never answers TLS, whatever the segment size. Other servers whose every
    attempt stalled the same way, from a reference host too, are named with it. Ruled out by:
    any host, the reference host included, that completed TLS with that server or received its
    certificate."""
    silent = [s for s in ev.sweeps if s.verdict == "unreachable" and s.unreachable_class == "tls_handshake_timeout"]
    if not silent:
        return None
    swept = {s.server for s in silent}
    answered = {srv: {a.host for a in ev.attempts if a.server == srv and a.reached_tls} for srv in swept}
    stalled = {srv for srv in swept if not answered[srv]}
    if not stalled:
        return SetAside("; ".join(f"{srv} completes TLS with {_names(hosts)}" for srv, hosts in sorted(answered.items()))
                        + _only_vms_note(ev, swept, lambda a: a.reached_tls, "TLS"))
    stalled |= {srv for srv in {a.server for a in ev.failures} if _stalls_everywhere(ev, srv)}
    stalls = [a for a in ev.failures if a.server in stalled and a.error_class == "tls_handshake_timeout"]
    references = {a.host for a in stalls} & ev.reference
    evidence = [f"mss-sweep from {s.host} to {s.target}: {s.explanation}" for s in silent if s.server in stalled]
    evidence += [f"tls_handshake_timeout x{n} on {host}" for host, n in _host_counts(stalls)]
    where = f", {_reference_text(references)} included" if references else "; no reference host probed it"
    return Finding(f"{_names(stalled)} {_verb(stalled, 'accepts', 'accept')} TCP but never {_verb(stalled, 'answers', 'answer')} "
                   f"TLS, from {_names({a.host for a in stalls} | {s.host for s in silent})}{where}; "
                   f"mss-sweep from {_names(s.host for s in silent)} stalls even at MSS 536",
                   "the server, or a middlebox in front of it, takes the connection and never answers the ClientHello: check the "
                   "service and any TLS-inspecting firewall; no clamp helps, the MSS fix does not apply", tuple(evidence))


def _stalls_everywhere(ev: Collected, server: str) -> bool:
    """Every attempt to `server` stalled in the TLS handshake, a reference host's included."""
    attempts = [a for a in ev.attempts if a.server == server]
    return all(a.error_class == "tls_handshake_timeout" for a in attempts) and any(a.host in ev.reference for a in attempts)


def _black_hole(ev: Collected) -> Finding | SetAside | None:
    """Needs: a sweep that found one (its default-MSS failures reproduced and a smaller MSS passes
    every try), or a reference host that passes where the VM nodes stall (reproduced TLS handshake
    timeouts, every attempt of those targets failing). Ruled out by: a sweep from a VM node to a
    server in question that contradicts it (the default MSS works, or even MSS 536 fails); a sweep
    whose own handshakes failed, more than once, at or below the MSS it found working; handshakes the sweep says stall
    (from its host, to its address, at the default MSS) completing in the probes. These win over
    any other sign. With no sweep to prove it: stalls that come and go or did not reproduce."""
    found = [s for s in ev.sweeps if s.black_hole]
    vm_stalls = [a for a in ev.failures if a.error_class == "tls_handshake_timeout" and a.host not in ev.reference]
    if not found and not vm_stalls:
        return None
    against = _sweeps_against(ev, found, vm_stalls)
    if against:
        return SetAside("; ".join(against))
    if found:
        return _black_hole_found(ev, found, vm_stalls)
    return _black_hole_by_reference(ev, vm_stalls)


def _sweeps_against(ev: Collected, found: list[Sweep], vm_stalls: list[Attempt]) -> list[str]:
    """Why the sweeps do not show a size limit: one to a server in question disagrees, or one that
    found it is contradicted. A clean sweep to a server nothing stalled on says nothing: a black hole
    may sit on one path only."""
    in_question = {s.server for s in found} | {a.server for a in vm_stalls}
    addresses = {s.remote_ip for s in found} | {a.remote_ip for a in vm_stalls}
    out = [f"mss-sweep from {s.host} to {s.target} says {s.verdict}: {s.explanation}" + (f" ({s.note})" if s.note else "")
           for s in ev.sweeps if not s.black_hole and s.host not in ev.reference
           and (s.server in in_question or (s.remote_ip is not None and s.remote_ip in addresses))]
    out += [f"mss-sweep from {s.host} to {s.target} saw {s.failed_below} handshakes fail at or below MSS {s.working_mss}, the size it "
            "found working: loss, not a size limit" for s in found if s.failed_below >= REPRODUCED]
    for s in found:
        done = _completed_alike(ev, s)
        if done:
            out.append(f"{s.host} completed {len(done)} handshake{'' if len(done) == 1 else 's'} with {s.remote_ip} "
                       f"({_names(a.server for a in done)}) at the default MSS{' with a large hello' if s.direction == 'toward-server' else ''}, "
                       f"which the sweep to {s.target} says stall: loss or noise, not a size limit")
    return out


def _completed_alike(ev: Collected, sweep: Sweep) -> list[Attempt]:
    """http handshakes the sweep says stall that completed: from its host to its address at the
    default MSS (with a large hello, for a hole toward the server only)."""
    return [a for a in ev.attempts if a.probe == "http" and a.host == sweep.host and a.remote_ip == sweep.remote_ip and a.reached_tls
            and (a.big_hello or sweep.direction != "toward-server")]


def _black_hole_found(ev: Collected, found: list[Sweep], vm_stalls: list[Attempt]) -> Finding:
    best = min(found, key=lambda s: s.recommended_clamp or 65535)
    direction = "toward-server" if all(s.direction == "toward-server" for s in found) else "both"
    evidence = [f"mss-sweep from {s.host} to {s.target}: {s.explanation}" for s in found]
    evidence += [f"tls_handshake_timeout x{n} on {host}" for host, n in _host_counts(vm_stalls)]
    stalls = f"TLS handshakes stall on {_names(a.host for a in vm_stalls)}" if vm_stalls else "the sweep's handshakes stall"
    summary = f"{stalls}{_direction_text(direction)}{_where_black_hole(ev, vm_stalls)}; mss-sweep from {best.host} finds a " \
              f"working MSS of {best.working_mss} (path MTU {best.path_mtu})"
    return Finding(summary, _clamp_fix(ev, best.recommended_clamp), tuple(evidence), True, best.recommended_clamp, direction)


def _black_hole_by_reference(ev: Collected, vm_stalls: list[Attempt]) -> Finding | SetAside:
    cells = ev.cells()
    stalled = {key: atts for key, atts in cells.items()
               if key[0] not in ev.reference and all(a.error_class == "tls_handshake_timeout" for a in atts)}
    flaky = sorted({f"{a.host} {a.label}" for a in vm_stalls if any(b.ok for b in cells[a.cell])})
    if flaky:
        return SetAside(f"stalls come and go (successes to the same target in between): {', '.join(flaky)}; "
                        "a black hole stalls every full-size handshake")
    if len(vm_stalls) < REPRODUCED:
        return SetAside(f"one stalled handshake ({vm_stalls[0].host} {vm_stalls[0].label}) did not reproduce")
    passing = {key[1:] for key, atts in cells.items() if key[0] in ev.reference and all(a.ok for a in atts)}
    confirmed = [key for key in stalled if key[1:] in passing]
    if not confirmed:
        return SetAside("no sweep found a size limit and no reference host passes where the VM nodes stall: "
                        "run mss-sweep from an affected node, and probe from the Proxmox host")
    direction = "toward-server" if all(key[3] for key in stalled) and _plain_hellos_pass(cells, stalled) else "both"
    passers = {key[0] for key, atts in cells.items() if key[0] in ev.reference and key[1:] in {c[1:] for c in confirmed}}
    evidence = [f"tls_handshake_timeout x{n} on {host}" for host, n in _host_counts(vm_stalls)]
    evidence.append(f"{_reference_text(passers)} {_verb(passers, 'completes', 'complete')} "
                    f"{_names(key[2] + (' [big hello]' if key[3] else '') for key in confirmed)}")
    summary = f"TLS handshakes stall on {_names(a.host for a in vm_stalls)}{_direction_text(direction)} while " \
              f"{_reference_text(passers)} {_verb(passers, 'completes', 'complete')} them; run mss-sweep to size the clamp"
    return Finding(summary, _clamp_fix(ev, None), tuple(evidence), True, None, direction)


def _certificate(ev: Collected) -> Finding | SetAside | None:
    """Needs: tls_certificate failures, or a sweep that met one. A certificate arrives only after
    the server's whole first flight got through, so it also proves the size is not the problem.
    Ruled out by: nothing."""
    failed = [a for a in ev.failures if a.error_class == "tls_certificate"]
    swept = [s for s in ev.sweeps if s.certificate_error]
    if not failed and not swept:
        return None
    servers = {a.server for a in failed} | {s.server for s in swept}
    hosts = {a.host for a in failed} | {s.host for s in swept}
    trusted = {a.host for a in ev.attempts if a.server in servers and a.ok}
    evidence = [f"tls_certificate x{n} on {host}" for host, n in _host_counts(failed)] + [f"mss-sweep from {s.host}: {s.certificate_error}" for s in swept]
    if trusted:
        evidence.append(f"{_names(trusted)} trust{'s' if len(trusted) == 1 else ''} the same server(s)")
        cause = f"only {_names(hosts)} reject it: a TLS-intercepting proxy on their path, or their CA bundle or clock"
    else:
        cause = "every host that tried rejects it: the server's certificate, or the CA the hosts trust"
    return Finding(f"the certificate of {_names(servers)} is not accepted on {_names(hosts)}; {cause}",
                   "install the CA the servers chain to (ca-certificates), fix the clock, or remove the intercepting proxy; "
                   "the handshake's packets got through, so the MSS fix does not apply", tuple(evidence))


def _rate_limited(ev: Collected) -> Finding | SetAside | None:
    """Needs: 429 Too Many Requests answers. Ruled out by: nothing; a 429 is the registry's own word."""
    limited = [a for a in ev.failures if a.status == 429]
    if not limited:
        return None
    servers = {a.server for a in limited}
    return Finding(f"{_names(servers)} {_verb(servers, 'answers', 'answer')} 429 Too Many Requests on "
                   f"{_names(a.host for a in limited)}",
                   "the registry limits these hosts (Docker Hub limits anonymous pulls per address): pull through the registry "
                   "mirror (mirror.enabled: true), so each image leaves the upstream once, or give the mirror registry credentials; "
                   "the MSS fix does not apply", _status_counts(limited))


def _server_error(ev: Collected) -> Finding | SetAside | None:
    """Needs: 5xx answers. Ruled out by: nothing; the service answered, so the network carried it."""
    errors = [a for a in ev.failures if a.status is not None and a.status >= 500]
    if not errors:
        return None
    servers = {a.server for a in errors}
    return Finding(f"{_names(servers)} {_verb(servers, 'answers', 'answer')} HTTP {_names(str(a.status) for a in errors)} "
                   f"on {_names(a.host for a in errors)}",
                   "the service itself fails: check its status and retry later (the registry mirror keeps cached images "
                   "available); nothing on the network side fixes a 5xx, the MSS fix does not apply", _status_counts(errors))


def _loss(ev: Collected) -> Finding | SetAside | None:
    """Needs: failures that come and go: a host and target (same hello size) with successes and
    failures that lose packets (timeouts, resets, broken streams). Ruled out by: no success at all
    (a wall is not loss)."""
    lossy = [atts for atts in ev.cells().values()
             if any(a.ok for a in atts) and any(a.error_class in LOSS_CLASSES for a in atts)]
    if not lossy:
        walled = any(a.error_class in LOSS_CLASSES for a in ev.failures) and not any(a.ok for a in ev.attempts)
        return SetAside("nothing succeeded: a wall, not loss") if walled else None
    failed = [a for atts in lossy for a in atts if not a.ok]
    total = sum(len(atts) for atts in lossy)
    notes = [f"mss-sweep from {s.host}: {s.note}" for s in ev.sweeps if s.note]
    classes = ", ".join(f"{cls} x{n}" for cls, n in _class_counts(failed))
    return Finding(f"{len(failed)} of {total} attempts failed on {_names(a.host for a in failed)} ({classes}) with successes "
                   "to the same targets in between: packets are lost, not sized out",
                   "find the lossy hop: long pings or mtr from a node and from the Proxmox host, interface errors (ip -s link), "
                   "the ISP line; the MSS fix does not help loss", tuple(notes))


# (the kind a rule names, the rule), in the order they are tried: the first finding names the kind
RULES: tuple[tuple[str, Rule], ...] = (
    ("dns", _dns),
    ("upstream-down", _upstream_down),
    ("server-stall", _stall),
    ("pmtu-black-hole", _black_hole),
    ("tls-certificate", _certificate),
    ("rate-limited", _rate_limited),
    ("server-error", _server_error),
    ("packet-loss", _loss),
)


# ---------------------------------------------------------------- rule helpers


def _swept_through(ev: Collected, server: str) -> set[str]:
    """Hosts whose sweep of `server` got past TCP at some MSS."""
    return {s.host for s in ev.sweeps if s.server == server and (s.working_mss or s.unreachable_class == "tls_handshake_timeout")}


def _only_vms_note(ev: Collected, servers: set[str], got: Callable[[Attempt], bool], layer: str) -> str:
    """When a reference host gets through where VM nodes fail: that says where to look."""
    vm_failing = {a.host for a in ev.failures if a.server in servers and not got(a) and a.host not in ev.reference}
    ref_ok = {a.host for a in ev.attempts if a.server in servers and got(a) and a.host in ev.reference}
    if vm_failing and ref_ok:
        return f". {layer} fails from {_names(vm_failing)} only: the VM subnet's egress (the gateway's firewall, NAT or routes)"
    return ""


def _status_counts(attempts: list[Attempt]) -> tuple[str, ...]:
    counts = Counter((a.status, a.host) for a in attempts)
    return tuple(f"HTTP {status} x{n} on {host}" for (status, host), n in sorted(counts.items()))


def _host_counts(attempts: Iterable[Attempt]) -> list[tuple[str, int]]:
    return sorted(Counter(a.host for a in attempts).items())


def _class_counts(attempts: Iterable[Attempt]) -> list[tuple[str, int]]:
    """Most frequent first."""
    return sorted(Counter(str(a.error_class) for a in attempts).items(), key=lambda kv: (-kv[1], kv[0]))


def _plain_hellos_pass(cells: dict[Cell, list[Attempt]], stalled: dict[Cell, list[Attempt]]) -> bool:
    """Every stalled big-hello target has a plain-hello twin on the same host that passes."""
    return all(all(a.ok for a in cells.get((h, p, t, False), [])) and (h, p, t, False) in cells for h, p, t, _ in stalled)


def _direction_text(direction: str) -> str:
    return " (large ClientHellos toward the server; plain ones pass)" if direction == "toward-server" else ""


def _where_black_hole(ev: Collected, vm_stalls: list[Attempt]) -> str:
    stalled = {a.server for a in vm_stalls}
    ref = [a for a in ev.attempts if a.host in ev.reference and a.server in stalled]
    if not ref:
        return ""
    stalling = {a.host for a in ref if a.error_class == "tls_handshake_timeout"}
    if stalling:
        return f"; {_reference_text(stalling)} {_verb(stalling, 'stalls', 'stall')} too: the hole is upstream of the gateway (the ISP path)"
    if all(a.ok for a in ref):
        return f" while {_reference_text(a.host for a in ref)} passes"
    return ""


def clamp_command(template: str, clamp: int | None) -> str:
    """The command that sets `clamp` on the caller's gateway (`template` takes {mss} and {path_mtu})."""
    if clamp is None:
        return template.format(mss="<recommended clamp>", path_mtu="<its path MTU>")
    return template.format(mss=clamp, path_mtu=clamp + 40)


def _clamp_fix(ev: Collected, clamp: int | None) -> str:
    if clamp is None:
        return ("clamp the VM subnet's TCP MSS at the gateway: measure the value with `mss-sweep HOST` from an affected node "
                "(python3 - mss-sweep HOST < probes/agent.py), then " + clamp_command(ev.clamp_command, None) + " and pulumi up")
    return f"clamp the VM subnet's TCP MSS at the gateway to {clamp}: {clamp_command(ev.clamp_command, clamp)}, then pulumi up"


def _fallback(ev: Collected) -> Finding:
    """No rule found anything: healthy, or failures no rule explains (unknown)."""
    if not ev.attempts and not ev.sweeps:
        return Finding("no probe records in the evidence", "run the probes (http, pull, mss-sweep) and judge their documents", kind="unknown")
    if not ev.failures:
        return Finding(f"all {len(ev.attempts)} attempts succeeded" + (f"; {len(ev.sweeps)} sweep(s) found no limit" if ev.sweeps else ""),
                       "nothing to fix", kind="healthy")
    classes = ", ".join(f"{cls} x{n}" for cls, n in _class_counts(ev.failures))
    return Finding(f"{len(ev.failures)} of {len(ev.attempts)} attempts failed ({classes}) and no rule explains them",
                   "probe again with more repeats, sweep from an affected node and probe from the Proxmox host; see the failures below",
                   kind="unknown")


def _apply_rules(ev: Collected) -> tuple[list[Finding], list[SetAside]]:
    findings: list[Finding] = []
    set_aside: list[SetAside] = []
    for kind, rule in RULES:
        result = rule(ev)
        if isinstance(result, Finding):
            findings.append(replace(result, kind=kind, rule=rule.__name__.lstrip("_")))
        elif isinstance(result, SetAside):
            set_aside.append(replace(result, kind=kind, rule=rule.__name__.lstrip("_")))
    return findings, set_aside


# ---------------------------------------------------------------- the diagnosis


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    verdict: str  # pass | warn | fail
    summary: str
    fix: str
    mss_fix_applies: bool
    recommended_clamp: int | None
    clamp_command: str | None
    direction: str | None
    findings: tuple[Finding, ...]  # the first names the kind
    set_aside: tuple[SetAside, ...]
    checks: tuple[Check, ...]
    failures: tuple[FailureGroup, ...]
    pull_failures: tuple[PullFailure, ...]
    comparison: Comparison
    sweeps: tuple[Sweep, ...]
    table: tuple[Row, ...]
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (lists, dicts, strings, numbers)."""
        return dict(_plain(self))

    def text(self) -> str:
        """The diagnosis for people: what, why, the fix, then the grouped evidence."""
        return "\n".join(_text(self))


def diagnose(evidence: Evidence, reference: Collection[str] = (), criteria: Criteria | None = None, notes: Sequence[str] = (),
             clamp_template: str = CLAMP_COMMAND) -> Diagnosis:
    """host -> its `netstab.probe/v1` documents (one, or a list: http, pull, mss-sweep, facts);
    `reference`: hosts outside the VM subnet (the Proxmox host); `notes`: what the caller could not
    probe (partial evidence: at best a warning). Raises EvidenceError."""
    ev = replace(collect(evidence, reference, notes), clamp_command=clamp_template)
    findings, set_aside = _apply_rules(ev)
    primary = findings[0] if findings else _fallback(ev)
    judged = checks(ev, primary.kind, criteria or Criteria())
    clamp = primary.recommended_clamp
    return Diagnosis(primary.kind, _verdict(primary.kind, judged, ev.notes), primary.summary, primary.fix, primary.mss_fix_applies, clamp,
                     clamp_command(clamp_template, clamp) if clamp else None, primary.direction, tuple(findings) or (primary,), tuple(set_aside),
                     judged, failure_groups(ev), pull_failures(ev), compare(ev), ev.sweeps, table(ev), ev.notes)


def _verdict(kind: str, judged: tuple[Check, ...], notes: tuple[str, ...]) -> str:
    """fail: a criterion failed (by default every problem kind is one); warn: none failed but a
    tolerated problem was found, a criterion had no evidence to judge, or the evidence is partial;
    pass: healthy, and every criterion judged and met."""
    if any(c.passed is False for c in judged):
        return "fail"
    if kind != "healthy" or any(c.passed is None for c in judged) or notes:
        return "warn"
    return "pass"


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- text


def _text(d: Diagnosis) -> list[str]:
    out = [f"{d.verdict.upper()}: {d.kind} - {d.summary}", _mss_line(d), f"fix: {d.fix}"]
    primary = d.findings[0]
    out += _section("evidence", primary.evidence)
    out += _section("also found", [f"{f.kind}: {f.summary}. Fix: {f.fix}" for f in d.findings[1:]])
    out += _section("set aside", [f"{s.kind}: {s.reason}" for s in d.set_aside])
    out += [f"reference host vs VM nodes: {d.comparison.text}"]
    out += _section("criteria", [f"{_mark(c.passed)} {c.name}: {c.detail}" for c in d.checks])
    out += _section("failures (class x target: host failed/attempts)", _failure_lines(d.failures))
    out += _section("pull failures (image x node)", [f"{p.image} on {p.node}: {p.failed}/{p.attempts} failed "
                                                     f"({', '.join(f'{c} x{n}' for c, n in sorted(p.classes.items()))}); {p.node_facts}"
                                                     for p in d.pull_failures])
    out += _section("mss-sweep", [f"{s.host} -> {s.target}: {s.verdict}; {s.explanation}" + (f" ({s.note})" if s.note else "") for s in d.sweeps])
    out += _section("notes", d.notes)
    return out


def _mss_line(d: Diagnosis) -> str:
    if not d.mss_fix_applies:
        return "MSS fix: does not apply"
    where = " (toward the server only)" if d.direction == "toward-server" else ""
    if d.recommended_clamp is None:
        return f"MSS fix: applies{where}; the clamp is not measured yet"
    return f"MSS fix: applies{where}; clamp {d.recommended_clamp}"


def _section(title: str, lines: Iterable[str]) -> list[str]:
    lines = list(lines)
    return [f"{title}:"] + [f"  {line}" for line in lines] if lines else []


def _mark(passed: bool | None) -> str:
    return {True: "ok  ", False: "FAIL", None: "--  "}[passed]


def _failure_lines(groups: Iterable[FailureGroup]) -> list[str]:
    merged: dict[tuple[str, str, str], list[str]] = {}
    for g in groups:
        merged.setdefault((g.error_class, g.probe, g.target), []).append(f"{g.host} {g.failed}/{g.attempts}")
    return [f"{cls:<22} {probe} {target}: {', '.join(hosts)}" for (cls, probe, target), hosts in merged.items()]
