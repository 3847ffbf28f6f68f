"""Offline tools: `python -m components render STACK --out DIR`.

Validates a stack file and writes every artifact the program would push, without Pulumi,
credentials or network. Exit status: 0 written, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.render.bundle import render_files
from components.schema import ConfigError
from components.stack import STACKS_DIR, load_stack_file, stack_file


def render(stack: str, out: Path, stacks_dir: Path) -> int:
    try:
        config = load_stack_file(stack_file(stack, stacks_dir))
    except ConfigError as exc:
        print(f"netstab: stack '{stack}' is not valid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    files = render_files(config)
    for relative, text in sorted(files.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if relative.endswith(".sh"):
            path.chmod(0o755)
    print(f"netstab: rendered {len(files)} files for stack '{stack}' into {out}/")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m components", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="validate a stack and write its artifacts (secrets are never in them)")
    r.add_argument("stack", help="stack name: reads stacks/Pulumi.STACK.yaml")
    r.add_argument("--out", type=Path, default=None, help="output folder (default: out/STACK)")
    r.add_argument("--stacks-dir", type=Path, default=STACKS_DIR, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "render":
        return render(args.stack, args.out or Path("out") / args.stack, args.stacks_dir)
    return 2


if __name__ == "__main__":
    sys.exit(main())
