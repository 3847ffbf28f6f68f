"""Offline tools, no Pulumi, credentials or network needed.

  render STACK --out DIR      validate a stack and write every artifact the program would push
  gateway-script ACTION ...   print the exact gateway script the GatewayFirewall component runs
  schema [--markdown]         print the stack file's JSON Schema (or its reference, stacks/README.md)
  alerts [--prometheus-rule]  print the probes' alert rules (monitoring/rules.yaml, or as a PrometheusRule)

Exit status: 0 done, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

from components.config import NAMESPACE, SECRETS, ConfigError, StackConfig, needed_secrets, parse_config, placeholder_problem, placeholders
from components.render.bundle import render_artifacts, render_files
from components.render.gateway import ACTIONS, FLAVORS, GatewayRuleError, GatewayRules, gateway_script
from components.stack import STACKS_DIR, read_stack_file, stack_file
from probes import agent_source, cli


def render(stack: str, out: Path, stacks_dir: Path, path_mtu: int | None = None) -> int:
    try:
        raw, secure = read_stack_file(stack_file(stack, stacks_dir))
        config = parse_config(raw, secure)
    except ConfigError as exc:
        print(f"netstab: stack '{stack}' is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if path_mtu is not None and not config.gateway.measured:
        print(f"netstab: --path-mtu is for gateway.pathMtu: auto; stack '{stack}' sets its MSS source in the stack file", file=sys.stderr)
        return 2
    try:
        files = render_files(render_artifacts(config, agent_source(), stack, path_mtu))
    except GatewayRuleError as exc:
        print(f"netstab: --path-mtu {path_mtu}: {exc}", file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"netstab: --out {out}: is a file, not a folder; pick a folder to render into", file=sys.stderr)
        return 2
    try:
        removed = _write_render(out, files)
    except OSError as exc:
        print(f"netstab: --out {out}: cannot write there ({exc.strerror}); pick a folder you can write to", file=sys.stderr)
        return 2
    print(f"netstab: rendered {len(files)} files for stack '{stack}' into {out}/" + (f" and removed {removed} left by the previous render" if removed else ""))
    print(_secrets_still_needed(config, secure))
    for warning in config.warnings():
        print(f"netstab: WARNING: {warning}", file=sys.stderr)
    found = placeholders(config)
    if found:
        print(f"netstab: WARNING: `pulumi up` refuses this stack: {placeholder_problem(found)}", file=sys.stderr)
    return 0


# What a render wrote, so that the next one into the same folder removes exactly its own leftovers (think --out .).
MANIFEST = ".netstab-render.json"


def _write_render(out: Path, files: dict[str, str]) -> int:
    """Write the files and the manifest; remove the files the previous render wrote that this one did not. Returns how many."""
    previous = _previous_render(out)
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if relative.endswith(".sh"):
            path.chmod(0o755)
    (out / MANIFEST).write_text(json.dumps({"files": sorted(files)}, indent=2) + "\n")
    removed = 0
    for relative in sorted(previous - set(files)):
        path = out / relative
        if (path.is_file() or path.is_symlink()) and path.parent.resolve().is_relative_to(out.resolve()):
            path.unlink()
            removed += 1
            for parent in path.parents:  # folders the render made, once they are empty
                if parent == out or any(parent.iterdir()):
                    break
                parent.rmdir()
    return removed


def _previous_render(out: Path) -> set[str]:
    """The files the manifest in `out` lists, if it is ours and well formed; relative paths inside `out` only."""
    try:
        listed = json.loads((out / MANIFEST).read_text())["files"]
    except (OSError, ValueError, TypeError, KeyError):
        listed = None
    if not isinstance(listed, list):
        return set()  # no manifest we can trust: remove nothing
    inside = (PurePosixPath(p) for p in listed if isinstance(p, str))
    return {str(p) for p in inside if p.parts and not p.is_absolute() and ".." not in p.parts and str(p) != MANIFEST}


def _secrets_still_needed(config: StackConfig, secure: frozenset[str]) -> str:
    needed = [f"{NAMESPACE}:{k}" for k in needed_secrets(config) if k not in secure]
    optional = [f"{NAMESPACE}:{k}" for k, (when, _) in SECRETS.items() if when == "optional" and k not in secure]
    line = (f"netstab: before `pulumi up`, set the secrets {', '.join(needed)} (pulumi config set --secret KEY, which prompts, or reads the value on stdin)" if needed
            else "netstab: every secret `pulumi up` needs is set in the stack file")
    return line + (f"; optional: {', '.join(optional)}" if optional else "")


def print_gateway_script(args: argparse.Namespace) -> int:
    try:
        rules = GatewayRules.build(args.subnet, stack=args.stack, mss=args.mss, path_mtu=args.path_mtu, pmtu=args.pmtu, mtu=args.mtu)
    except (GatewayRuleError, ValueError) as exc:
        print(f"netstab: {exc}", file=sys.stderr)
        return 2
    print(gateway_script(args.action, args.flavor, rules), end="")
    return 0


def print_schema(markdown: bool) -> int:
    from components.config.schema import config_reference, schema_text

    print(config_reference() if markdown else schema_text(), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m components", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="validate a stack and write its artifacts (secrets are never in them)")
    r.add_argument("stack", help="stack name: reads stacks/Pulumi.STACK.yaml")
    r.add_argument("--out", type=Path, default=None, help="output folder (default: out/STACK)")
    r.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help=argparse.SUPPRESS)
    r.add_argument("--path-mtu", type=int, help="with gateway.pathMtu: auto, write apply.sh and verify.sh for this path MTU")
    g = sub.add_parser("gateway-script", help="print a gateway script: MSS clamp and ICMP rules")
    g.add_argument("action", choices=ACTIONS)
    g.add_argument("--flavor", choices=FLAVORS, required=True)
    g.add_argument("--stack", required=True, help="the Pulumi stack that owns the rules (their tags and table carry it)")
    g.add_argument("--subnet", action="append", required=True, help="VM subnet CIDR (repeat for IPv4 and IPv6)")
    source = g.add_mutually_exclusive_group(required=True)
    source.add_argument("--mss", type=int, help="clamp to this MSS (IPv4; IPv6 gets 20 less)")
    source.add_argument("--path-mtu", type=int, help="measured path MTU: MSS = MTU - 40 (IPv4) / - 60 (IPv6)")
    source.add_argument("--pmtu", action="store_true", help="clamp to the gateway's route MTU (misses narrow links beyond it)")
    g.add_argument("--mtu", type=int, default=1500, help="node MTU, the MSS upper bound is MTU - 40 (default 1500)")
    s = sub.add_parser("schema", help="print the stack file's JSON Schema, for editors (stacks/netstab.schema.json)")
    s.add_argument("--markdown", action="store_true", help="print the config reference instead (stacks/README.md)")
    a = sub.add_parser("alerts", help="print the continuous probes' Prometheus alert rules (monitoring/rules.yaml)")
    a.add_argument("--prometheus-rule", action="store_true", help="as a PrometheusRule manifest (monitoring/prometheusrule.yaml)")
    a.add_argument("--namespace", default="monitoring", help="the PrometheusRule's namespace (default monitoring)")
    return p


def print_alerts(prometheus_rule: bool, namespace: str) -> int:
    from components.render.alerts import prometheus_rule_yaml, rules_yaml

    print(prometheus_rule_yaml(namespace) if prometheus_rule else rules_yaml(), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "render":
        return render(args.stack, args.out or Path("out") / args.stack, args.stacks_dir, args.path_mtu)
    if args.command == "gateway-script":
        return print_gateway_script(args)
    if args.command == "schema":
        return print_schema(args.markdown)
    if args.command == "alerts":
        return print_alerts(args.prometheus_rule, args.namespace)
    return 2


if __name__ == "__main__":
    cli.run(main)
