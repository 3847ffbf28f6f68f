"""docs/judge.md and docs/lab.md restate the code's tables: they must say what the code does."""

from __future__ import annotations

import json
from pathlib import Path

from lab.scenarios import NAMES, SCENARIOS
from probes.criteria import Criteria
from probes.verdict import KINDS, RULES

ROOT = Path(__file__).resolve().parents[2]
JUDGE = (ROOT / "docs" / "judge.md").read_text()
LAB = (ROOT / "docs" / "lab.md").read_text()


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the markdown table whose header line is `header`."""
    lines = text.split(header + "\n", 1)[1].splitlines()[1:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_the_kinds_table_is_the_codes():
    assert table_rows(JUDGE, "| kind | meaning |") == [[f"`{k}`", v] for k, v in KINDS.items()]


def test_the_rules_table_is_the_rules_in_order_with_their_docstrings():
    expected = []
    for number, (kind, rule) in enumerate(RULES, 1):
        needs, _, ruled_out = " ".join((rule.__doc__ or "").split()).partition(" Ruled out by: ")
        expected.append([str(number), f"`{rule.__name__}`", f"`{kind}`", needs.removeprefix("Needs: "), ruled_out])
    assert table_rows(JUDGE, "| # | rule | kind | needs | ruled out by |") == expected


def test_the_criteria_table_has_every_field_with_its_default():
    rows = table_rows(JUDGE, "| criterion | default | what it requires |")
    documented = {name.strip("`"): default.split(" ")[0].strip("`") for name, default, _ in rows}
    assert documented == {name: json.dumps(value) for name, value in Criteria().to_dict().items()}


def test_the_lab_scenarios_table_is_the_labs():
    rows = table_rows(LAB, "| scenario | fault | the judge's kind | what fixes it |")
    assert [row[0].strip("`") for row in rows] == list(NAMES)
    assert {row[0].strip("`"): row[2].strip("`") for row in rows if row[0].strip("`") in SCENARIOS} == \
        {name: s.expected for name, s in SCENARIOS.items()}
