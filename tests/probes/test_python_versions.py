"""Which Python each part needs: the agent 3.8 (checked by vermin, as `make vermin` runs it), everything else 3.11,
refused in one line on an older one."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERMIN = Path(sys.executable).with_name("vermin")


def make_vermin_argv() -> list[str]:
    """The vermin command line of `make vermin`, as the Makefile spells it."""
    line = next(line for line in (ROOT / "Makefile").read_text().splitlines() if line.startswith("\t$(VENV)/bin/vermin "))
    return shlex.split(line.strip().replace("$(VENV)/bin/vermin", str(VERMIN)))


def vermin(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_make_test_runs_vermin_on_the_agent_against_3_8():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\bvermin\b", makefile, re.MULTILINE)
    argv = make_vermin_argv()
    assert "--target=3.8-" in argv and "--violations" in argv and "probes/agent.py" in argv


def test_the_agent_needs_no_python_newer_than_3_8():
    result = vermin(make_vermin_argv(), ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("newer", [
    pytest.param("import math\nprint(math.lcm(4, 6))\n", id="a_3_9_library_call"),
    pytest.param("def f(x: list[int]) -> None:\n    pass\n", id="a_3_9_annotation"),
    pytest.param("import functools\n\n@functools.cache\ndef f() -> int:\n    return 1\n", id="a_3_9_decorator"),
])
def test_the_same_check_fails_an_agent_that_calls_something_newer(tmp_path, newer):
    """The counterfactual: the agent with one newer call appended fails `make vermin`'s command."""
    (tmp_path / "probes").mkdir()
    for name in ("probes/agent.py", "probes/__init__.py", "components/__init__.py", "lab/__init__.py"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text((ROOT / name).read_text() + ("\n" + newer if name == "probes/agent.py" else ""))
    result = vermin(make_vermin_argv(), tmp_path)
    assert result.returncode != 0 and "Target versions not met" in result.stdout


def test_pyproject_requires_3_11():
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11"


OLD_PYTHON = "import runpy, sys; sys.version_info = (3, 10, 12, 'final', 0); sys.argv = ['x', '--help']; runpy.run_module({!r}, run_name='__main__')"


@pytest.mark.parametrize("module", ["components", "probes", "lab"])
def test_an_older_python_is_refused_in_one_line_by_every_cli(module):
    result = subprocess.run([sys.executable, "-c", OLD_PYTHON.format(module)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"netstab needs Python 3.11 or newer; this is Python 3.10.12 ({sys.executable}). "
                                          "Only probes/agent.py runs on 3.8."]


def test_the_program_entry_point_is_refused_too():
    code = "import runpy, sys; sys.version_info = (3, 9, 2, 'final', 0); runpy.run_path('__main__.py', run_name='__main__')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith("netstab needs Python 3.11 or newer; this is Python 3.9.2")


def test_python_3_11_itself_passes():
    result = subprocess.run([sys.executable, "-m", "probes", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "diagnose" in result.stdout
