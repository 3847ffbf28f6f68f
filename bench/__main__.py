"""`python -m bench [NAME...]`: run benchmarks (all by default) and update bench/RESULTS.md."""

from __future__ import annotations

import importlib
import os
import sys

BENCHES = {"agent": "bench.agent_vs_curl", "lab": "bench.lab_timing", "mirror": "bench.mirror_bench", "gate": "bench.gate_cost",
           "monitoring": "bench.monitoring_cost"}


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("bench: the benchmarks build network namespaces and need root", file=sys.stderr)
        return 2
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"bench: unknown benchmark {unknown}; choose from {list(BENCHES)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"bench: running {name} ...", flush=True)
        importlib.import_module(BENCHES[name]).main()
    print("bench: results in bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
