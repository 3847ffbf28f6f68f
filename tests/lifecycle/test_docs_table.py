"""docs/lifecycle.md shows the table the model generates (`python -m tests.lifecycle.table` rewrites it)."""

from __future__ import annotations

from tests.lifecycle.table import BEGIN, DOC, END, current


def test_the_docs_table_is_the_one_the_model_generates():
    doc = DOC.read_text()
    assert BEGIN in doc and END in doc
    assert doc == current(doc), "docs/lifecycle.md is stale: run `.venv/bin/python -m tests.lifecycle.table`"
