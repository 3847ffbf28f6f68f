"""The post-up gate's probe runs: one script per vantage point, run over SSH with the probe agent
on stdin. It always exits 0 once it has probed (a failure is evidence, judged by the gate, not a
broken step) and prints one JSON object: the vantage point, its `netstab.probe/v1` documents and
notes on what could not run. Nothing secret is in it: the agent redacts what it records.

What it runs (the plan's Phase 1): `http` against the endpoints, the same with `--big-hello`,
`pull` of the test images directly and, on nodes with the mirror enabled, through the mirror;
`mss-sweep`, in parallel, against every host whose TLS handshake stalled (at most MAX_SWEEPS, one
per address and port): an endpoint, or a host a pull met, such as the blob host a registry
redirected it to (probes/stalls.py). Every agent run is bounded by what is left of the budget.
"""

from __future__ import annotations

from components.config import MirrorConfig, ValidationConfig
from components.render.mirror import pulls_through
from components.render.quote import word
from components.render.shell import with_agent
from probes import stalls_source
from probes.gate import RUN_SCHEMA

# concurrent requests per agent run: every endpoint's repeats overlap, as parallel curl loops would
CONCURRENCY = 12
# seconds an agent run needs at least; with less budget left it is skipped and noted
MIN_SLOT_S = 5
# distinct stalled hosts swept, at once: each sweep takes a few seconds, the slowest bounds the step
MAX_SWEEPS = 4

_COLLECT = r'''import json, os, sys
point, work = sys.argv[1], sys.argv[2]
docs, notes = [], []
for name in sorted(os.listdir(work)):
    if not name.endswith(".json"):
        continue
    try:
        with open(os.path.join(work, name)) as handle:
            docs.append(json.load(handle))
    except ValueError:
        try:  # the agent's own last word, when it said one (it records no secrets)
            with open(os.path.join(os.path.dirname(work), name[:-5] + ".err")) as handle:
                said = [line.strip() for line in handle if line.strip()][-1:]
        except OSError:
            said = []
        why = ": %s" % said[0][:200] if said else " (stopped by the budget?)"
        notes.append("%s: the agent printed no document%s" % (name[:-5], why))
with open(os.path.join(work, "notes.txt")) as handle:
    notes += [line.strip() for line in handle if line.strip()]
print(json.dumps({"schema": "@SCHEMA@", "vantage_point": point, "documents": docs, "notes": notes}, separators=(",", ":")))
'''.replace("@SCHEMA@", RUN_SCHEMA)

NO_MIRROR_PULL = ("pull-mirror: not run: no test image (validation.images) is from a registry the mirror serves "
                  "(mirror.upstreams), so this gate does not prove the mirror")


def probe_script(point: str, validation: ValidationConfig, mirror: MirrorConfig | None) -> str:
    """The probe run of one vantage point. `mirror`: pull through it too (nodes with the mirror enabled)."""
    urls = " ".join(word(u) for u in validation.endpoints)
    images = " ".join(word(i) for i in validation.images)
    http = f"--repeat {validation.effective_repeats} --concurrency {CONCURRENCY} {urls}"
    runs = [f"probe http http {http}", f"probe http-big-hello http --big-hello {http}", f"probe pull-direct pull {images}"]
    mirror_pulls = pulls_through(mirror, validation.images) if mirror else {}
    for n, (url, served) in enumerate(mirror_pulls.items()):
        runs.append(f"probe pull-mirror-{n} pull --mirror {word(url)} {' '.join(word(i) for i in served)}")
    if mirror and not mirror_pulls:  # otherwise a gate that never touched the mirror would read as proof that it works
        runs.append(f"echo {word(NO_MIRROR_PULL)} >> \"$work/out/notes.txt\"")
    probes = "\n".join(runs)
    return f"""#!/bin/sh
set -u
{with_agent("netstab gate: python3 is missing here; the probe agent needs it")}: > "$work/out/notes.txt"
deadline=$(( $(date +%s) + {validation.budget_s} ))
probe() {{  # $1 evidence name, then the agent's arguments; bounded by what is left of the budget
  name=$1; shift
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt {MIN_SLOT_S} ]; then echo "$name: not run, the {validation.budget_s}s budget was spent" >> "$work/out/notes.txt"; return 0; fi
  timeout "$left" python3 "$work/agent.py" "$@" --json --quiet > "$work/out/$name.json" 2> "$work/$name.err" || true
}}
{probes}
python3 - {MAX_SWEEPS} "$work/out/http.json" "$work/out/http-big-hello.json" "$work/out/pull-direct.json" "$work"/out/pull-mirror-*.json \
  > "$work/stalled.txt" <<'NETSTAB_PY'
{stalls_source()}NETSTAB_PY
n=0
while IFS= read -r target; do
  probe "mss-sweep-$n" mss-sweep "$target" &
  n=$((n + 1))
done < "$work/stalled.txt"
wait
python3 - {word(point)} "$work/out" <<'NETSTAB_PY'
{_COLLECT}NETSTAB_PY
"""
