"""The probe agent (one stdlib file run on nodes) and the judge of its evidence."""

from pathlib import Path

AGENT_PATH = Path(__file__).resolve().with_name("agent.py")
STALLS_PATH = AGENT_PATH.with_name("stalls.py")


def agent_source() -> str:
    """The agent's text, as the program feeds it to `python3 -` on a node."""
    return AGENT_PATH.read_text()


def stalls_source() -> str:
    """The text of probes/stalls.py, which the post-up gate's probe run feeds to `python3 -` on a node."""
    return STALLS_PATH.read_text()
