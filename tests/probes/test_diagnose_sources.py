"""`python -m probes diagnose` on what a newcomer has at hand: the judge fixtures, the lab's saved layout, a gate
report folder; and `--stack NAME`, so the fix is one the stack accepts (issue 23)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import ConfigError, parse_config
from components.stack import read_stack_file, stack_file
from probes import agent
from probes.__main__ import main
from probes.gate import clamp_template

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/probes/fixtures"
BLACKHOLE = FIXTURES / "blackhole.json"
HOMELAB = (ROOT / "stacks/Pulumi.homelab.yaml").read_text()


def diagnose(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probes", "diagnose", *argv], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_command_a_newcomer_typed_judges_the_fixtures_host():
    result = diagnose("cp1=tests/probes/fixtures/blackhole.json")
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.startswith("FAIL: pmtu-black-hole - TLS handshakes stall on cp1;")


def test_a_fixture_alone_gives_every_host_and_its_reference():
    result = diagnose(str(BLACKHOLE))
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: pmtu-black-hole - TLS handshakes stall on cp1, worker1 while the reference host pve passes;")


def test_after_the_fix_the_fixture_passes():
    result = diagnose("--after", str(BLACKHOLE))
    assert result.returncode == 0 and result.stdout.startswith("PASS: healthy")


def test_a_host_the_fixture_does_not_have_is_named(capsys):
    assert main(["diagnose", f"cp9={BLACKHOLE}"]) == 2
    assert capsys.readouterr().err == (f"python -m probes: {BLACKHOLE}: a judge fixture with no host 'cp9'; its hosts: cp1, pve, worker1 "
                                       "(or give the file alone for all of them)\n")


def test_a_fixture_without_after_evidence_says_so(capsys):
    assert main(["diagnose", "--after", str(FIXTURES / "loss.json")]) == 2
    assert "this fixture holds no evidence after the fix" in capsys.readouterr().err


def lab_layout(folder: Path) -> Path:
    """A lab-report/<scenario>/ folder as `python -m lab` saves it, from the fixture's documents."""
    data = json.loads(BLACKHOLE.read_text())
    folder.mkdir()
    for phase, key in (("before", "evidence"), ("after", "after")):
        for host, docs in data[key].items():
            (folder / f"{phase}-{host}.json").write_text(json.dumps(docs, indent=2))
    (folder / "REPORT.md").write_text("# a report\n")
    return folder


def test_the_labs_saved_layout_is_judged_as_the_lab_judged_it(tmp_path):
    folder = lab_layout(tmp_path / "blackhole")
    assert diagnose(str(folder)).stdout == diagnose(str(BLACKHOLE)).stdout  # the lab's reference host pve included
    assert diagnose("--after", str(folder)).stdout == diagnose("--after", str(BLACKHOLE)).stdout


def test_a_gate_report_folder_takes_the_proxmox_vantage_point_as_reference(tmp_path):
    data = json.loads(BLACKHOLE.read_text())
    folder = tmp_path / "validation-report"
    folder.mkdir()
    for host, docs in data["evidence"].items():
        (folder / f"{'proxmox' if host == 'pve' else host}.json").write_text(json.dumps(docs))
    result = diagnose(str(folder))
    assert "while the reference host proxmox passes" in result.stdout


def test_an_empty_folder_says_what_it_expected(tmp_path, capsys):
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "no evidence here; expected the lab's before-<host>.json files" in capsys.readouterr().err


def test_every_fixture_was_recorded_by_todays_agent():
    """Each sweep's conclusion is what today's agent concludes from the same numbers (`default_stalls`, "tries stalled")."""
    sweeps = 0
    for path in sorted(FIXTURES.glob("*.json")):
        text = path.read_text()
        assert "default_failures" not in text, path.name
        data = json.loads(text)
        for docs in [*data["evidence"].values(), *data.get("after", {}).values()]:
            for doc in docs:
                if doc["command"] != "mss-sweep":
                    continue
                s = doc["mss_sweep"]
                again = agent.sweep_verdict(s["default_stalls"], s["working_mss"], True, s["route_mtu"] - s["ip_overhead"], s["ip_overhead"],
                                            s["unreachable_class"])
                assert (again["verdict"], again["explanation"], again["note"]) == (s["verdict"], s["explanation"], s["note"]), path.name
                sweeps += 1
    assert sweeps == 6  # blackhole, toward-server, loss, loss-fooled-sweep, silent-server, blob-host (the others stall no handshake)


# ------------------------------------------------------------------------------------------- --stack


def stacks_with(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    text = HOMELAB
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    (stacks / f"Pulumi.{name}.yaml").write_text(text)
    return stacks


def fix_line(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("fix: "))


def test_without_stack_the_advice_sets_gateway_mss():
    assert fix_line(diagnose(str(BLACKHOLE)).stdout) == ("fix: clamp the VM subnet's TCP MSS at the gateway to 1240: "
                                                         "pulumi config set --path netstab:gateway.mss 1240, then pulumi up")


def test_that_advice_is_refused_by_the_shipped_stack(homelab_raw):
    """The stumble: the shipped stack measures its clamp (pathMtu: auto), so a gateway.mss beside it is a second MSS source."""
    homelab_raw["gateway"]["mss"] = 1240
    with pytest.raises(ConfigError, match="set exactly one MSS source"):
        parse_config(homelab_raw)


def test_with_the_shipped_stack_the_advice_is_the_gates_and_the_stack_takes_it(homelab_raw):
    result = diagnose("--stack", "homelab", str(BLACKHOLE))
    assert result.returncode == 1
    assert fix_line(result.stdout) == ("fix: clamp the VM subnet's TCP MSS at the gateway to 1240: re-measure it: "
                                       "pulumi config set --path netstab:gateway.remeasure 1, then pulumi up")
    raw, secure = read_stack_file(stack_file("homelab"))
    raw["gateway"]["remeasure"] = 1  # what the advice sets
    parse_config(raw, secure)


@pytest.mark.parametrize("edits,source", [
    ([("    pathMtu: auto\n", "    pathMtu: 1400\n")], "path_mtu"),
    ([("    pathMtu: auto\n", "    mss: 1360\n")], "mss"),
    ([("    pathMtu: auto\n", "    pmtu: true\n")], "pmtu"),
    ([("    pathMtu: auto\n", "    pathMtu: auto\n    remeasure: 4\n")], "auto"),
    ([("    manage: true\n", "    manage: false\n"), ("    pathMtu: auto\n", "    pathMtu: 1400\n")], "manual"),
], ids=["path_mtu", "mss", "pmtu", "auto", "manual"])
def test_the_advice_fits_how_the_stack_sets_its_clamp_as_the_gates_does(tmp_path, edits, source):
    stacks = stacks_with(tmp_path, "mine", *edits)
    result = diagnose("--stack", "mine", "--stacks-dir", str(stacks), str(BLACKHOLE))
    expected = clamp_template({"mss_source": source, "remeasure": 4 if source == "auto" else 0}).format(mss=1240, path_mtu=1280)
    assert fix_line(result.stdout) == f"fix: clamp the VM subnet's TCP MSS at the gateway to 1240: {expected}, then pulumi up"


def test_an_invalid_stack_is_a_usage_error_listing_its_problems(tmp_path, capsys):
    stacks = stacks_with(tmp_path, "broken", ("    mtu: 1400\n", "    mtu: 100\n"))
    assert main(["diagnose", "--stack", "broken", "--stacks-dir", str(stacks), str(BLACKHOLE)]) == 2
    assert capsys.readouterr().err.splitlines() == ["python -m probes: --stack broken: the stack is not valid:",
                                                    "python -m probes:   network.mtu: 100 is not an integer in 576..9000"]
