"""`python -m probes diagnose [--json] [--stack NAME] [--reference HOST] [--criteria FILE] [--after] EVIDENCE...`

Judges `netstab.probe/v1` documents (http, pull, mss-sweep, facts) with the same function as the
lab and the post-up gate. EVIDENCE is any of:

  HOST=FILE   FILE holds one document or a JSON list of them; give several FILEs for one host as
              HOST=FILE HOST=FILE2. A judge fixture (tests/probes/fixtures/*.json) gives HOST's documents.
  FILE        a judge fixture: every host in it, its reference hosts too.
  DIR         the lab's saved layout, lab-report/<scenario>/: every before-<host>.json (--after:
              after-<host>.json), the lab's reference host pve as the reference; or a gate report
              folder (validation-report/, lab-report/<scenario>/gate-before/): every <host>.json,
              the vantage point proxmox as the reference.

--reference names a host outside the VM subnet (the Proxmox host); --criteria a JSON object of
success criteria (defaults: the gate's); --stack NAME reads stacks/Pulumi.NAME.yaml so that the
fix says how that stack sets its clamp (gateway.mss, pathMtu, pathMtu: auto, ...), as the gate does.

Exit 0 when the verdict is pass or warn, 1 when it is fail, 2 on a usage error.

Also: `python -m probes metrics DOC...` (Prometheus text exposition, probes/metrics.py) and
`python -m probes history HOST=DIR...` (a window of stored runs judged over time, probes/history.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from probes import cli, history, metrics
from probes.criteria import Criteria, CriteriaError
from probes.evidence import CLAMP_COMMAND, EvidenceError, collect
from probes.gate import clamp_template
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
    d.add_argument("evidence", nargs="+", metavar="EVIDENCE", help="HOST=FILE, a judge fixture FILE, or a lab-report/<scenario>/ DIR")
    d.add_argument("--reference", action="append", default=[], metavar="HOST", help="a reference host (outside the VM subnet); repeatable")
    d.add_argument("--criteria", type=Path, metavar="FILE", help="success criteria as a JSON object")
    d.add_argument("--json", action="store_true", help="print the diagnosis as one JSON object")
    d.add_argument("--after", action="store_true", help="from a fixture or a lab folder, judge the evidence after the fix")
    d.add_argument("--stack", metavar="NAME", help="word the fix for this stack (reads stacks/Pulumi.NAME.yaml)")
    d.add_argument("--stacks-dir", type=Path, help=argparse.SUPPRESS)
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


FIXTURE_KEYS = frozenset({"evidence", "reference"})  # a judge fixture: {"scenario", "reference", "evidence": {host: [docs]}, "after"}
LAB_REFERENCE = "pve"  # the lab's reference host (lab.scenarios.REFERENCE)
GATE_REFERENCE = "proxmox"  # the gate's vantage point on the Proxmox host (components.config.validation.PROXMOX)


@dataclass
class Loaded:
    evidence: dict[str, list[Any]] = field(default_factory=dict)
    reference: list[str] = field(default_factory=list)  # reference hosts the sources name themselves

    def add(self, host: str, docs: list[Any], source: str) -> None:
        try:
            collect({host: docs})
        except EvidenceError as exc:
            raise UsageError(f"{source}: {exc}") from None
        self.evidence.setdefault(host, []).extend(docs)


def _fixture(data: Any, file: str, after: bool) -> dict[str, Any] | None:
    """A judge fixture's hosts -> documents (None: `data` is not a fixture)."""
    if not isinstance(data, dict) or not set(data) >= FIXTURE_KEYS:
        return None
    key = "after" if after else "evidence"
    if key not in data:
        raise UsageError(f"{file}: this fixture holds no evidence after the fix")
    evidence = data[key]
    if not isinstance(evidence, dict):
        raise UsageError(f"{file}: its {key!r} is not a mapping of host to documents")
    return evidence


def _docs(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _folder(folder: Path, after: bool, loaded: Loaded) -> None:
    """The lab's layout (before-<host>.json, after-<host>.json) or a gate report folder (<host>.json)."""
    phase = "after" if after else "before"
    lab = sorted(folder.glob(f"{phase}-*.json"))
    if lab:
        files, reference = {p.name.removeprefix(f"{phase}-").removesuffix(".json"): p for p in lab}, LAB_REFERENCE
    elif after and sorted(folder.glob("before-*.json")):
        raise UsageError(f"{folder}: no after-<host>.json here (the fix was not applied in this run)")
    else:
        files, reference = {p.stem: p for p in sorted(folder.glob("*.json"))}, GATE_REFERENCE
    if not files:
        raise UsageError(f"{folder}: no evidence here; expected the lab's before-<host>.json files (lab-report/<scenario>/) "
                         "or a gate report's <host>.json files")
    for host, path in files.items():
        loaded.add(host, _docs(read_json(path)), str(path))
    if reference in files:
        loaded.reference.append(reference)


def load_evidence(sources: list[str], after: bool = False) -> Loaded:
    loaded = Loaded()
    for source in sources:
        host, sep, file = source.partition("=")
        if not sep:
            path = Path(source)
            if not path.exists():
                raise UsageError(f"expected HOST=FILE, a judge fixture FILE or a lab-report/<scenario>/ folder, got {source!r}")
            if path.is_dir():
                _folder(path, after, loaded)
                continue
            data = read_json(path)
            fixture = _fixture(data, source, after)
            if fixture is None:
                raise UsageError(f"{source}: one host's documents need HOST=FILE (or give a judge fixture or a lab-report/<scenario>/ folder)")
            for name, docs in fixture.items():
                loaded.add(name, _docs(docs), source)
            loaded.reference.extend(str(r) for r in data.get("reference") or ())
            continue
        if not host or not file:
            raise UsageError(f"expected HOST=FILE, got {source!r}")
        data = read_json(Path(file))
        fixture = _fixture(data, file, after)
        if fixture is not None:
            if host not in fixture:
                raise UsageError(f"{file}: a judge fixture with no host {host!r}; its hosts: {', '.join(sorted(fixture))} "
                                 f"(or give the file alone for all of them)")
            data = fixture[host]
        loaded.add(host, _docs(data), file)
    return loaded


def clamp_template_of(stack: str, stacks_dir: Path | None) -> str:
    """How this stack takes a clamp, worded as the gate words it (probes.gate.clamp_template on the gate's own mss_source)."""
    from components.config import ConfigError
    from components.stack import STACKS_DIR, load_stack_file, stack_file
    from components.validation import mss_source

    try:
        config = load_stack_file(stack_file(stack, stacks_dir or STACKS_DIR))
    except ConfigError as exc:
        raise UsageError("\n".join([f"--stack {stack}: the stack is not valid:", *(f"  {p}" for p in exc.problems)])) from None
    return clamp_template({"mss_source": mss_source(config), "remeasure": config.gateway.remeasure})


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
        loaded = load_evidence(args.evidence, args.after)
        evidence = loaded.evidence
        unknown = [h for h in args.reference if h not in evidence]
        if unknown:
            raise UsageError(f"--reference {', '.join(unknown)}: no HOST=FILE gives evidence for it")
        reference = list(dict.fromkeys([*args.reference, *(h for h in loaded.reference if h in evidence)]))
        criteria = load_criteria(args.criteria)
        template = clamp_template_of(args.stack, args.stacks_dir) if args.stack else CLAMP_COMMAND
    except (UsageError, metrics.MetricsUsageError, history.HistoryUsageError) as exc:
        for line in str(exc).splitlines():
            print(f"python -m probes: {line}", file=sys.stderr)
        return 2
    diagnosis = diagnose(evidence, reference, criteria, clamp_template=template)
    print(json.dumps(diagnosis.to_dict(), indent=2) if args.json else diagnosis.text())
    return 1 if diagnosis.verdict == "fail" else 0


if __name__ == "__main__":
    cli.run(main)
