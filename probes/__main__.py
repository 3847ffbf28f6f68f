"""`python -m probes diagnose [--json] [--reference HOST] [--criteria FILE] HOST=FILE...`

Judges `netstab.probe/v1` documents (http, pull, mss-sweep, facts) with the same function as the
lab and the post-up gate. A FILE holds one document or a JSON list of them; give several FILEs
for one host as HOST=FILE HOST=FILE2. --reference names a host outside the VM subnet (the
Proxmox host); --criteria a JSON object of success criteria (defaults: the gate's).

Exit 0 when the verdict is pass or warn, 1 when it is fail, 2 on a usage error.

Also: `python -m probes metrics DOC...` (Prometheus text exposition, probes/metrics.py) and
`python -m probes history HOST=DIR...` (a window of stored runs judged over time, probes/history.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from probes import history, metrics
from probes.criteria import Criteria, CriteriaError
from probes.evidence import EvidenceError, collect
from probes.verdict import diagnose


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m probes", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    d = sub.add_parser("diagnose", help="judge probe evidence", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("evidence", nargs="+", metavar="HOST=FILE")
    d.add_argument("--reference", action="append", default=[], metavar="HOST", help="a reference host (outside the VM subnet); repeatable")
    d.add_argument("--criteria", type=Path, metavar="FILE", help="success criteria as a JSON object")
    d.add_argument("--json", action="store_true", help="print the diagnosis as one JSON object")
    metrics.add_parser(sub)
    history.add_parser(sub)
    return p


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None


def load_evidence(pairs: list[str]) -> dict[str, list[Any]]:
    evidence: dict[str, list[Any]] = {}
    for pair in pairs:
        host, sep, file = pair.partition("=")
        if not sep or not host or not file:
            raise UsageError(f"expected HOST=FILE, got {pair!r}")
        data = read_json(Path(file))
        docs = data if isinstance(data, list) else [data]
        try:
            collect({host: docs})
        except EvidenceError as exc:
            raise UsageError(f"{file}: {exc}") from None
        evidence.setdefault(host, []).extend(docs)
    return evidence


def load_criteria(path: Path | None) -> Criteria:
    if path is None:
        return Criteria()
    try:
        return Criteria.from_dict(read_json(path))
    except CriteriaError as exc:
        raise UsageError("\n".join(f"{path}: {line}" for line in str(exc).splitlines())) from None


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        if args.command == "metrics":
            sys.stdout.write(metrics.run(args))
            return 0
        if args.command == "history":
            judged = history.run(args, load_criteria(args.criteria))
            print(json.dumps(judged.to_dict(), indent=2) if args.json else judged.text())
            return 1 if judged.verdict == "fail" else 0
        evidence = load_evidence(args.evidence)
        unknown = [h for h in args.reference if h not in evidence]
        if unknown:
            raise UsageError(f"--reference {', '.join(unknown)}: no HOST=FILE gives evidence for it")
        criteria = load_criteria(args.criteria)
    except (UsageError, metrics.MetricsUsageError, history.HistoryUsageError) as exc:
        for line in str(exc).splitlines():
            print(f"python -m probes: {line}", file=sys.stderr)
        return 2
    diagnosis = diagnose(evidence, args.reference, criteria)
    print(json.dumps(diagnosis.to_dict(), indent=2) if args.json else diagnosis.text())
    return 1 if diagnosis.verdict == "fail" else 0


if __name__ == "__main__":
    sys.exit(main())
