"""Shared bits of the benchmarks: medians, a results file with one section per benchmark."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2) if values else float("nan")


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section `## name` of RESULTS.md, leaving the others as they are."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nMade by `make bench` (or `python -m bench NAME`); each section is replaced when its benchmark runs again.\n"
    section = f"## {name}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n")
