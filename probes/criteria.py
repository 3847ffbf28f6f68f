"""Success criteria: the plan's Phase 2 "success criteria", made numbers, and the checks that
judge evidence against them. Pure. The defaults are the post-up gate's defaults.

A check passes, fails, or has nothing to judge (no evidence of its kind): `Check.passed` is then None.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from probes.evidence import Attempt, Collected
from probes.kinds import KINDS


class CriteriaError(ValueError):
    """Criteria that cannot be used; one `key: problem` per line."""


@dataclass(frozen=True)
class Criteria:
    # zero TLS handshake timeouts across the http probes from the VM nodes
    max_handshake_timeouts: int = 0
    # per node: this share of pulls succeeds ...
    min_pull_success: float = 0.95
    # ... and every image any node pulled is pulled at least once on every node that pulls
    every_image_per_node: bool = True
    # the secret store's API: this share of http requests from each node succeeds,
    doppler_host: str = "api.doppler.com"
    min_doppler_success: float = 0.95
    # with no run of more than this many consecutive failures
    max_doppler_failure_run: int = 3
    # the TLS phase's p95 per node and target, in ms; None: not judged
    max_tls_p95_ms: float | None = None
    # what only time shows (`python -m probes history` and the alert rules; a snapshot has no time span):
    # no run of Doppler failures longer than this many minutes (the plan: External Secrets "does not flap for long periods") ...
    max_doppler_failure_minutes: float = 10.0
    # ... and this share of TLS handshakes from each VM node completes in every day of the window (attempts that reached TCP)
    min_handshake_success_per_day: float = 0.99
    # kinds that do not fail the verdict by themselves (their thresholds above still do): warn instead
    tolerate: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.tolerate, list):  # as JSON gives it
            object.__setattr__(self, "tolerate", tuple(self.tolerate))
        problems = _problems(self)
        if problems:
            raise CriteriaError("\n".join(problems))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Criteria:
        """From plain config, with the judge's names or the stack file's (`validation.criteria`,
        camelCase); missing keys take their defaults. Every problem is reported at once."""
        if not isinstance(data, Mapping):
            raise CriteriaError(f"criteria: expected an object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        named = {_snake(str(key)): value for key, value in data.items()}
        unknown = [f"{key}: unknown criterion (known: {', '.join(sorted(known))})" for key in data if _snake(str(key)) not in known]
        # JSON and Pulumi's property values carry every number as a float: 3.0 is the count 3
        values: dict[str, Any] = {key: int(value) if key in WHOLE_NUMBERS and isinstance(value, float) and value.is_integer() else value
                                  for key, value in named.items() if key in known}
        try:
            criteria = cls(**values)
        except CriteriaError as exc:
            raise CriteriaError("\n".join([*unknown, str(exc)])) from None
        if unknown:
            raise CriteriaError("\n".join(unknown))
        return criteria

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tolerate"] = list(self.tolerate)
        return out


WHOLE_NUMBERS = ("max_handshake_timeouts", "max_doppler_failure_run")


def _snake(key: str) -> str:
    """maxTlsP95Ms -> max_tls_p95_ms; a snake_case name stays as it is."""
    return re.sub(r"[A-Z]", lambda upper: "_" + upper.group().lower(), key)


def _problems(c: Criteria) -> list[str]:
    out = []
    for name in ("max_handshake_timeouts", "max_doppler_failure_run"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            out.append(f"{name}: {value!r} is not a whole number >= 0")
    if not _number(c.max_doppler_failure_minutes) or c.max_doppler_failure_minutes <= 0:
        out.append(f"max_doppler_failure_minutes: {c.max_doppler_failure_minutes!r} is not a positive number of minutes")
    for name in ("min_pull_success", "min_doppler_success", "min_handshake_success_per_day"):
        value = getattr(c, name)
        if not _number(value) or not 0 <= value <= 1:
            out.append(f"{name}: {value!r} is not a fraction between 0 and 1 (0.95 means 95%)")
    if not isinstance(c.every_image_per_node, bool):
        out.append(f"every_image_per_node: {c.every_image_per_node!r} is not true or false")
    if not isinstance(c.doppler_host, str) or not c.doppler_host:
        out.append(f"doppler_host: {c.doppler_host!r} is not a host name")
    if c.max_tls_p95_ms is not None and (not _number(c.max_tls_p95_ms) or c.max_tls_p95_ms <= 0):
        out.append(f"max_tls_p95_ms: {c.max_tls_p95_ms!r} is not a positive number of milliseconds (or null: off)")
    if not isinstance(c.tolerate, tuple) or not all(isinstance(k, str) for k in c.tolerate):
        out.append(f"tolerate: {c.tolerate!r} is not a list of kinds")
    else:
        wrong = [k for k in c.tolerate if k not in KINDS or k == "healthy"]
        if wrong:
            out.append(f"tolerate: {', '.join(wrong)} not a problem kind (one of {', '.join(k for k in KINDS if k != 'healthy')})")
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool | None  # None: no evidence to judge
    detail: str


def checks(ev: Collected, kind: str, c: Criteria) -> tuple[Check, ...]:
    """Every criterion against the evidence, and the diagnosis itself."""
    vm = [a for a in ev.attempts if a.host not in ev.reference]
    http = [a for a in vm if a.probe == "http"]
    out = [_diagnosis(kind, c), _handshakes(http, c), *_pulls(vm, c), _doppler(http, c)]
    if c.max_tls_p95_ms is not None:
        out.append(_tls_p95(http, c.max_tls_p95_ms))
    return tuple(out)


def _diagnosis(kind: str, c: Criteria) -> Check:
    if kind == "healthy":
        return Check("diagnosis", True, "healthy")
    if kind in c.tolerate:
        return Check("diagnosis", True, f"{kind}, tolerated by the criteria")
    return Check("diagnosis", False, f"{kind} is a problem")


def _handshakes(http: list[Attempt], c: Criteria) -> Check:
    name = "TLS handshake timeouts from the VM nodes"
    if not http:
        return Check(name, None, "no http probes from the VM nodes")
    stalls = [a for a in http if a.error_class == "tls_handshake_timeout"]
    hosts = _per_host(stalls)
    detail = f"{len(stalls)} of {len(http)} attempts (allowed {c.max_handshake_timeouts})" + (f": {hosts}" if stalls else "")
    return Check(name, len(stalls) <= c.max_handshake_timeouts, detail)


def _pulls(vm: list[Attempt], c: Criteria) -> list[Check]:
    pulls = [a for a in vm if a.probe == "pull"]
    if not pulls:
        return [Check("pulls per node", None, "no pulls from the VM nodes")]
    nodes = sorted({a.host for a in pulls})
    ratios = {n: _ratio([a for a in pulls if a.host == n]) for n in nodes}
    low = [n for n in nodes if ratios[n][0] < c.min_pull_success]
    detail = ", ".join(f"{n} {ratios[n][1]}/{ratios[n][2]}" for n in nodes)
    out = [Check("pulls per node", not low, f"{detail} (need {c.min_pull_success:.0%} each)")]
    if c.every_image_per_node:
        images = sorted({a.target for a in pulls})
        missing = [f"{image} on {n}" for n in nodes for image in images if not any(a.ok for a in pulls if a.host == n and a.target == image)]
        detail = f"{len(images)} image(s) on {len(nodes)} node(s)" + (f"; never pulled: {', '.join(missing)}" if missing else "")
        out.append(Check("every image pulled on every node", not missing, detail))
    return out


def _doppler(http: list[Attempt], c: Criteria) -> Check:
    name = f"{c.doppler_host} requests"
    calls = [a for a in http if a.server == c.doppler_host]
    if not calls:
        return Check(name, None, f"no http probes of {c.doppler_host} from the VM nodes")
    parts, passed = [], True
    for node in sorted({a.host for a in calls}):
        mine = sorted((a for a in calls if a.host == node), key=lambda a: a.timestamp)
        share, ok, total = _ratio(mine)
        run = _longest_failure_run(mine)
        passed &= share >= c.min_doppler_success and run <= c.max_doppler_failure_run
        parts.append(f"{node} {ok}/{total}, longest failure run {run}")
    return Check(name, passed, f"{'; '.join(parts)} (need {c.min_doppler_success:.0%} and runs <= {c.max_doppler_failure_run})")


def _tls_p95(http: list[Attempt], bound: float) -> Check:
    name = f"TLS p95 <= {bound:g} ms"
    cells: dict[tuple[str, str], list[float]] = {}
    for a in http:
        if a.ok and "tls" in a.phases:
            cells.setdefault((a.host, a.label), []).append(a.phases["tls"])
    if not cells:
        return Check(name, None, "no completed TLS handshakes from the VM nodes")
    slow = {key: p95 for key, values in cells.items() if (p95 := percentile(values, 0.95)) > bound}
    detail = ", ".join(f"{host} {label} {p95:.0f} ms" for (host, label), p95 in sorted(slow.items())) or f"all {len(cells)} host x target pairs"
    return Check(name, not slow, detail)


def _ratio(attempts: list[Attempt]) -> tuple[float, int, int]:
    ok = sum(a.ok for a in attempts)
    return ok / len(attempts), ok, len(attempts)


def _longest_failure_run(attempts: list[Attempt]) -> int:
    longest = run = 0
    for a in attempts:
        run = 0 if a.ok else run + 1
        longest = max(longest, run)
    return longest


def _per_host(attempts: list[Attempt]) -> str:
    counts: dict[str, int] = {}
    for a in attempts:
        counts[a.host] = counts.get(a.host, 0) + 1
    return ", ".join(f"{h} x{n}" for h, n in sorted(counts.items()))


def percentile(values: list[float], q: float) -> float:
    """Nearest rank, as the agent's summary computes it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
