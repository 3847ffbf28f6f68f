"""Every command-line entry point, its reader gone (`... | head -1`): it stops quietly, no traceback (issue 23)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.cli import BROKEN_PIPE

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/probes/fixtures"


def into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run with stdout a pipe whose reader has already gone: the first write fails with EPIPE, however small the output."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, *argv], cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)


# argparse's --help swallows the write error itself and exits 0; every other write ends in 141
ENTRY_POINTS = [
    pytest.param(["-m", "probes", "diagnose", "--json", f"cp1={FIXTURES / 'blackhole.json'}"], BROKEN_PIPE, id="probes_diagnose"),
    pytest.param(["-m", "probes", "diagnose", f"cp1={FIXTURES / 'blackhole.json'}"], BROKEN_PIPE, id="probes_diagnose_text"),
    pytest.param(["-m", "components", "schema"], BROKEN_PIPE, id="components_schema"),
    pytest.param(["-m", "components", "gateway-script", "apply", "--flavor", "nftables", "--stack", "s", "--subnet", "10.0.0.0/24",
                  "--mss", "1240"], BROKEN_PIPE, id="components_gateway_script"),
    pytest.param(["-m", "lab", "--help"], 0, id="lab_help"),
    pytest.param(["-m", "probes", "--help"], 0, id="probes_help"),
]


@pytest.mark.parametrize("argv,status", ENTRY_POINTS)
def test_a_reader_that_went_away_gets_no_traceback(argv, status):
    result = into_a_closed_pipe(*argv)
    assert result.stderr == ""
    assert result.returncode == status


def test_without_the_wrapper_python_prints_the_traceback():
    """The counterfactual: the same output, printed the plain way, into the same closed pipe."""
    code = "from components.config.schema import schema_text; print(schema_text())"
    result = into_a_closed_pipe("-c", code)
    assert "BrokenPipeError" in result.stderr


def test_head_of_a_large_diagnosis_is_quiet():
    big = subprocess.run(f"{sys.executable} -m probes diagnose --json cp1={FIXTURES / 'blackhole.json'} | head -1", shell=True, cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert (big.stdout, big.stderr) == ("{\n", "")
