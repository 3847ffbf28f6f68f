"""`python -m probes history [--since 24h] [--until TIME] [--json] [--reference HOST] [--criteria FILE] HOST=DIR...`

Judges a window of stored probe runs: each HOST=DIR is one host's store (the cycle runner's
/var/lib/netstab/probes: one JSON file per run, a list of `netstab.probe/v1` documents; a file
with one document works too). Every run of a VM host is judged with the same judge as the gate
(`probes.verdict.diagnose`), beside the reference host's run nearest in time; then what only time
shows: each problem's bursts (start, end, hosts), whether it is intermittent or steady, the longest
Doppler failure run in minutes, whether the reference host saw the same, and the plan's temporal
criteria (`max_doppler_failure_minutes`, `min_handshake_success_per_day`, and the window's pull and
Doppler success shares).

--since: 30m, 24h, 7d (default 24h), ending at --until (UTC ISO 8601; default now).
Exit 0 when the verdict is pass or warn, 1 when it is fail, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from probes.criteria import Check, Criteria
from probes.evidence import PRE_TCP, Attempt, EvidenceError, collect
from probes.verdict import diagnose

Document = Mapping[str, Any]


class HistoryUsageError(Exception):
    pass


@dataclass(frozen=True)
class Run:
    """One stored probe run of one host: its documents and when they ran (Unix seconds)."""

    host: str
    start: float
    end: float
    documents: tuple[Document, ...]


@dataclass(frozen=True)
class RunVerdict:
    host: str
    start: float
    end: float
    kind: str
    summary: str
    reference_kind: str | None  # the reference host's run nearest in time, judged alone; None: none within an interval


@dataclass(frozen=True)
class Burst:
    kind: str
    start: float  # the first run that showed it began
    end: float  # the last run that showed it finished
    hosts: tuple[str, ...]
    runs: int
    reference_saw: str  # "yes", "no" or "no data"

    @property
    def minutes(self) -> float:
        return round((self.end - self.start) / 60, 1)


@dataclass(frozen=True)
class Problem:
    kind: str
    pattern: str  # "steady": every run of its hosts in the window; "intermittent": runs without it in between or around
    bursts: tuple[Burst, ...]
    hosts: tuple[str, ...]
    runs: int  # runs that showed it
    of_runs: int  # runs of those hosts in the window
    summary: str  # the judge's summary of its latest run


@dataclass(frozen=True)
class History:
    since: float
    until: float
    interval_s: float | None  # the median gap between a host's runs
    hosts: tuple[str, ...]
    reference: tuple[str, ...]
    verdict: str
    problems: tuple[Problem, ...]
    checks: tuple[Check, ...]
    doppler_longest_failure_minutes: dict[str, float]
    handshake_success_per_day: dict[str, dict[str, float]]  # host -> UTC day -> share
    runs: tuple[RunVerdict, ...] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"], out["until"] = iso(self.since), iso(self.until)
        for problem in out["problems"]:
            for burst in problem["bursts"]:
                burst["minutes"] = round((burst["end"] - burst["start"]) / 60, 1)
                burst["start"], burst["end"] = iso(burst["start"]), iso(burst["end"])
        for run in out["runs"]:
            run["start"], run["end"] = iso(run["start"]), iso(run["end"])
        return out

    def text(self) -> str:
        lines = [f"netstab history {iso(self.since)} .. {iso(self.until)}: {self.verdict.upper()}",
                 f"hosts: {', '.join(self.hosts) or 'none'}" + (f" (reference: {', '.join(self.reference)})" if self.reference else "")
                 + (f"; runs every {self.interval_s / 60:.1f} min" if self.interval_s else "")]
        if not self.problems:
            lines.append(f"every run healthy ({len(self.runs)} runs)")
        for p in self.problems:
            lines.append(f"{p.kind}: {p.pattern}, {p.runs} of {p.of_runs} runs on {', '.join(p.hosts)}: {p.summary}")
            for b in p.bursts:
                lines.append(f"  burst {iso(b.start)} .. {iso(b.end)} ({b.minutes:g} min, {b.runs} run{'s' if b.runs != 1 else ''}) "
                             f"on {', '.join(b.hosts)}; reference host saw the same: {b.reference_saw}")
        lines.append("criteria:")
        lines += [f"  {_mark(c.passed)} {c.name}: {c.detail}" for c in self.checks]
        return "\n".join(lines)


def _mark(passed: bool | None) -> str:
    return {True: "ok  ", False: "FAIL", None: "--  "}[passed]


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    for form in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%MZ"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a UTC time such as 2026-12-06T05:00:00Z")


def parse_span(text: str) -> float:
    """30m, 24h, 7d, 90s -> seconds."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a positive span such as 30m, 24h or 7d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def run_of(host: str, docs: Sequence[Document]) -> Run | None:
    """A stored run: its documents' first start and last finish (None when no document says when)."""
    starts = [t for t in (_stamp(d.get("started")) for d in docs) if t is not None]
    ends = [t for t in (_stamp(d.get("finished")) for d in docs) if t is not None]
    if not starts and not ends:
        return None
    return Run(host, min(starts or ends), max(ends or starts), tuple(docs))


def _stamp(text: Any) -> float | None:
    try:
        return parse_time(str(text))
    except ValueError:
        return None


# ---------------------------------------------------------------- the judgement (pure)


def judge_history(runs: Sequence[Run], reference: Sequence[str] = (), criteria: Criteria | None = None,
                  since: float | None = None, until: float | None = None) -> History:
    c = criteria or Criteria()
    window = [r for r in runs if (since is None or r.start >= since) and (until is None or r.start <= until)]
    window.sort(key=lambda r: (r.start, r.host))
    hosts = tuple(dict.fromkeys(r.host for r in window))
    refs = tuple(h for h in hosts if h in reference)
    vms = tuple(h for h in hosts if h not in reference)
    interval = _interval(window)
    verdicts = tuple(_judge_run(run, window, refs, c, interval) for run in window if run.host in vms)
    problems = _problems(verdicts, window, refs)
    evidence = {h: [d for r in window if r.host == h for d in r.documents] for h in hosts}
    ev = collect(evidence, refs) if evidence else None
    attempts = ev.attempts if ev else ()
    doppler = _doppler_runs(attempts, c.doppler_host, refs)
    per_day = _handshakes_per_day(attempts, refs)
    snapshot = diagnose(evidence, refs, c).checks if evidence else ()
    kept = [k for k in snapshot if k.name.startswith(("pulls per node", "every image"))]
    checks = (*kept, _doppler_share(attempts, c, refs), _doppler_check(doppler, c), _handshake_check(per_day, c),
              _problems_check(problems, c))
    failed = any(k.passed is False for k in checks)
    verdict = "fail" if failed else ("warn" if problems or any(k.passed is None for k in checks) or not window else "pass")
    start = since if since is not None else (window[0].start if window else 0.0)
    end = until if until is not None else (max(r.end for r in window) if window else start)
    return History(start, end, interval, hosts, refs, verdict, problems, checks, doppler, per_day, verdicts)


def _interval(runs: Sequence[Run]) -> float | None:
    gaps = []
    for host in {r.host for r in runs}:
        starts = sorted(r.start for r in runs if r.host == host)
        gaps += [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return median(gaps) if gaps else None


def _judge_run(run: Run, window: Sequence[Run], refs: Sequence[str], c: Criteria, interval: float | None) -> RunVerdict:
    """The run with the reference host's run nearest in time (within one interval), by the one judge."""
    near = _nearest(run, [r for r in window if r.host in refs], interval)
    evidence: dict[str, Any] = {run.host: list(run.documents)}
    evidence.update({r.host: list(r.documents) for r in near})
    d = diagnose(evidence, [r.host for r in near], c)
    ref_kind = diagnose({r.host: list(r.documents) for r in near}, [], c).kind if near else None
    return RunVerdict(run.host, run.start, run.end, d.kind, d.summary, ref_kind)


def _nearest(run: Run, candidates: Sequence[Run], interval: float | None) -> list[Run]:
    out = []
    for host in dict.fromkeys(r.host for r in candidates):
        mine = [r for r in candidates if r.host == host]
        best = min(mine, key=lambda r: abs(r.start - run.start))
        if interval is None or abs(best.start - run.start) <= interval:
            out.append(best)
    return out


def _problems(verdicts: Sequence[RunVerdict], window: Sequence[Run], refs: Sequence[str]) -> tuple[Problem, ...]:
    out = []
    for kind in dict.fromkeys(v.kind for v in verdicts if v.kind != "healthy"):
        hosts = tuple(sorted({v.host for v in verdicts if v.kind == kind}))
        spans: list[tuple[float, float, str, int]] = []  # per-host bursts: consecutive runs of that host with the kind
        for host in hosts:
            mine = [v for v in verdicts if v.host == host]
            current: list[RunVerdict] = []
            for v in [*mine, None]:
                if v is not None and v.kind == kind:
                    current.append(v)
                    continue
                if current:
                    spans.append((current[0].start, current[-1].end, host, len(current)))
                current = []
        bursts = _merge(sorted(spans), verdicts, kind, refs)
        mine_all = [v for v in verdicts if v.host in hosts]
        shown = [v for v in mine_all if v.kind == kind]
        pattern = "steady" if len(shown) == len(mine_all) else "intermittent"
        latest = max(shown, key=lambda v: v.end)
        out.append(Problem(kind, pattern, bursts, hosts, len(shown), len(mine_all), latest.summary))
    return tuple(out)


def _merge(spans: list[tuple[float, float, str, int]], verdicts: Sequence[RunVerdict], kind: str, refs: Sequence[str]) -> tuple[Burst, ...]:
    """Overlapping per-host bursts become one burst naming every host."""
    merged: list[list[Any]] = []
    for start, end, host, n in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            merged[-1][2].add(host)
            merged[-1][3] += n
        else:
            merged.append([start, end, {host}, n])
    out = []
    for start, end, hosts, n in merged:
        during = [v.reference_kind for v in verdicts if v.kind == kind and v.host in hosts and start <= v.start <= end]
        known = [k for k in during if k is not None]
        saw = "no data" if not refs or not known else ("yes" if any(k != "healthy" for k in known) else "no")
        out.append(Burst(kind, start, end, tuple(sorted(hosts)), n, saw))
    return tuple(out)


def _doppler_runs(attempts: Sequence[Attempt], doppler_host: str, refs: Sequence[str]) -> dict[str, float]:
    """Per VM host: the longest Doppler failure run in minutes, from its first failed request to the
    next request that succeeded (or to its last failure, when none did since): the outage lasted at
    most that long and at least until its last failure."""
    out: dict[str, float] = {}
    for host in dict.fromkeys(a.host for a in attempts if a.server == doppler_host and a.host not in refs):
        calls = sorted((t, a.ok) for a in attempts if a.host == host and a.server == doppler_host
                       if (t := _stamp(a.timestamp)) is not None)
        longest, first, last = 0.0, None, None
        for t, ok in calls:
            if not ok:
                first = t if first is None else first
                last = t
                continue
            if first is not None:
                longest = max(longest, t - first)
            first = last = None
        if first is not None and last is not None:
            longest = max(longest, last - first)
        out[host] = round(longest / 60, 1)
    return out


def _handshakes_per_day(attempts: Sequence[Attempt], refs: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per VM host and UTC day: the share of http attempts that reached TCP and completed TLS."""
    counts: dict[str, dict[str, list[int]]] = {}
    for a in attempts:
        if a.probe != "http" or a.host in refs or (a.error_class in PRE_TCP and not a.ok):
            continue
        t = _stamp(a.timestamp)
        if t is None:
            continue
        day = iso(t)[:10]
        cell = counts.setdefault(a.host, {}).setdefault(day, [0, 0])
        cell[0] += int(a.reached_tls)
        cell[1] += 1
    return {h: {d: round(ok / n, 4) for d, (ok, n) in sorted(days.items())} for h, days in counts.items()}


def _doppler_share(attempts: Sequence[Attempt], c: Criteria, refs: Sequence[str]) -> Check:
    name = f"{c.doppler_host} requests over the window"
    calls = [a for a in attempts if a.server == c.doppler_host and a.probe == "http" and a.host not in refs]
    if not calls:
        return Check(name, None, f"no http probes of {c.doppler_host} from the VM nodes")
    parts, passed = [], True
    for host in dict.fromkeys(a.host for a in calls):
        mine = [a for a in calls if a.host == host]
        share = sum(a.ok for a in mine) / len(mine)
        passed &= share >= c.min_doppler_success
        parts.append(f"{host} {sum(a.ok for a in mine)}/{len(mine)}")
    return Check(name, passed, f"{', '.join(parts)} (need {c.min_doppler_success:.0%} each)")


def _doppler_check(runs: Mapping[str, float], c: Criteria) -> Check:
    name = f"longest Doppler failure run <= {c.max_doppler_failure_minutes:g} min"
    if not runs:
        return Check(name, None, "no Doppler requests from the VM nodes")
    long = {h: m for h, m in runs.items() if m > c.max_doppler_failure_minutes}
    return Check(name, not long, ", ".join(f"{h} {m:g} min" for h, m in runs.items()))


def _handshake_check(per_day: Mapping[str, Mapping[str, float]], c: Criteria) -> Check:
    name = f"TLS handshakes completed per node and day >= {c.min_handshake_success_per_day:.0%}"
    if not per_day:
        return Check(name, None, "no handshakes from the VM nodes")
    low = [f"{h} {d} {share:.2%}" for h, days in per_day.items() for d, share in days.items() if share < c.min_handshake_success_per_day]
    lowest = min((share, h, d) for h, days in per_day.items() for d, share in days.items())
    return Check(name, not low, "; ".join(low) if low else f"lowest {lowest[1]} {lowest[2]} {lowest[0]:.2%}")


def _problems_check(problems: Sequence[Problem], c: Criteria) -> Check:
    """A steady problem fails unless tolerated; an intermittent one is judged by the shares and runs above."""
    steady = [p for p in problems if p.pattern == "steady" and p.kind not in c.tolerate]
    if not problems:
        return Check("no steady problem", True, "every run healthy")
    detail = ", ".join(f"{p.kind} ({p.pattern}, {p.runs}/{p.of_runs} runs)" for p in problems)
    return Check("no steady problem", not steady, detail)


# ---------------------------------------------------------------- reading stores (I/O)


def add_parser(sub: Any) -> None:
    h = sub.add_parser("history", help="judge a window of stored probe runs", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("stores", nargs="+", metavar="HOST=DIR")
    h.add_argument("--since", default="24h", help="the window's length: 30m, 24h, 7d (default 24h)")
    h.add_argument("--until", help="the window's end, UTC (default now)")
    h.add_argument("--reference", action="append", default=[], metavar="HOST", help="a reference host (outside the VM subnet); repeatable")
    h.add_argument("--criteria", type=Path, metavar="FILE", help="success criteria as a JSON object")
    h.add_argument("--json", action="store_true", help="print the history as one JSON object")


def load_runs(pairs: Sequence[str]) -> list[Run]:
    runs: list[Run] = []
    for pair in pairs:
        host, sep, where = pair.partition("=")
        if not sep or not host or not where:
            raise HistoryUsageError(f"expected HOST=DIR, got {pair!r}")
        path = Path(where)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        if not path.exists():
            raise HistoryUsageError(f"{where}: no such store")
        for file in files:
            try:
                data = json.loads(file.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue  # a run cut short by a full disk or a crash: the rest of the store still speaks
            docs = data if isinstance(data, list) else [data]
            try:
                collect({host: docs})
            except EvidenceError:
                continue
            run = run_of(host, docs)
            if run is not None:
                runs.append(run)
    return runs


def run(args: argparse.Namespace, criteria: Criteria) -> History:
    try:
        span = parse_span(args.since)
        until = parse_time(args.until) if args.until else datetime.now(UTC).timestamp()
    except ValueError as exc:
        raise HistoryUsageError(str(exc)) from None
    runs = load_runs(args.stores)
    hosts = {pair.partition("=")[0] for pair in args.stores}
    unknown = [h for h in args.reference if h not in hosts]
    if unknown:
        raise HistoryUsageError(f"--reference {', '.join(unknown)}: no HOST=DIR gives runs for it")
    return judge_history(runs, args.reference, criteria, until - span, until)
