"""The probe agent (one stdlib file run on nodes) and the judge of its evidence."""

from pathlib import Path

AGENT_PATH = Path(__file__).resolve().with_name("agent.py")


def agent_source() -> str:
    """The agent's text, as the program feeds it to `python3 -` on a node."""
    return AGENT_PATH.read_text()
