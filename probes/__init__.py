"""The probe agent (one stdlib file run on nodes) and the judge of its evidence."""

import sys
from pathlib import Path

# Everything but the agent needs Python 3.11 (pyproject's requires-python); every entry point (the program,
# `python -m components|probes|lab`) imports this package first, so an older Python stops here, in one line.
# This file stays readable by Python 3.8 (make vermin checks it) so that the line is reached.
if sys.version_info < (3, 11):
    sys.exit(f"netstab needs Python 3.11 or newer; this is Python {'.'.join(map(str, sys.version_info[:3]))} ({sys.executable}). "
             "Only probes/agent.py runs on 3.8.")

AGENT_PATH = Path(__file__).resolve().with_name("agent.py")
STALLS_PATH = AGENT_PATH.with_name("stalls.py")


def agent_source() -> str:
    """The agent's text, as the program feeds it to `python3 -` on a node."""
    return AGENT_PATH.read_text()


def stalls_source() -> str:
    """The text of probes/stalls.py, which the post-up gate's probe run feeds to `python3 -` on a node."""
    return STALLS_PATH.read_text()
