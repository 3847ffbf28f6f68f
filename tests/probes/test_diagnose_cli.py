"""`python -m probes diagnose`: exit codes, --json, and one clear line per usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probes.__main__ import main
from tests.probes.docs import http, pull, sweep

BH = "tls_handshake_timeout"
ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, data: object) -> str:
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def black_hole(tmp_path) -> list[str]:
    """cp1 in two files (a list of documents, and the sweep alone), pve in one."""
    return [f"cp1={write(tmp_path / 'cp1.json', [http(BH), pull(BH)])}", f"cp1={write(tmp_path / 'sweep.json', sweep('black-hole', clamp=1240))}",
            f"pve={write(tmp_path / 'pve.json', [http(None), pull(None)])}", "--reference", "pve"]


def test_a_failing_verdict_exits_1_and_prints_the_diagnosis(black_hole, capsys):
    assert main(["diagnose", *black_hole]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: pmtu-black-hole - ") and "pulumi config set --path netstab:gateway.mss 1240" in out


def test_json_prints_one_object_with_the_promised_keys(black_hole, capsys):
    assert main(["diagnose", "--json", *black_hole]) == 1
    data = json.loads(capsys.readouterr().out)
    assert {"kind", "verdict", "summary", "mss_fix_applies", "recommended_clamp", "failures", "pull_failures", "table"} <= set(data)
    assert (data["kind"], data["verdict"], data["recommended_clamp"]) == ("pmtu-black-hole", "fail", 1240)
    assert {row["host"] for row in data["table"]} == {"cp1", "pve"}


def test_pass_and_warn_exit_0(tmp_path, capsys):
    good = write(tmp_path / "good.json", [http(None), pull(None)])
    assert main(["diagnose", f"cp1={good}"]) == 0
    assert capsys.readouterr().out.startswith("PASS: healthy")
    only_http = write(tmp_path / "http.json", http(None, urls=("https://ghcr.io/v2/",)))
    assert main(["diagnose", f"cp1={only_http}"]) == 0
    assert capsys.readouterr().out.startswith("WARN: healthy")


def test_criteria_from_a_file_change_the_verdict(tmp_path, capsys):
    lossy = write(tmp_path / "lossy.json", [http(*([None] * 27 + ["read_timeout", None, None]), repeat=10), pull(None)])
    assert main(["diagnose", f"cp1={lossy}"]) == 1
    assert capsys.readouterr().out.startswith("FAIL: packet-loss")
    criteria = write(tmp_path / "criteria.json", {"tolerate": ["packet-loss"]})
    assert main(["diagnose", "--criteria", criteria, f"cp1={lossy}"]) == 0
    assert capsys.readouterr().out.startswith("WARN: packet-loss")


@pytest.mark.parametrize(("args", "message"), [
    (["cp1"], "python -m probes: expected HOST=FILE, a judge fixture FILE or a lab-report/<scenario>/ folder, got 'cp1'"),
    (["cp1=missing.json"], "python -m probes: missing.json: cannot read it: No such file or directory"),
    (["cp1=bad.json"], "python -m probes: bad.json: not JSON (Expecting value: line 1 column 1 (char 0))"),
    (["cp1=other.json"], "python -m probes: other.json: cp1, document 1: not a netstab.probe/v1 document (schema 'something/v9')"),
    (["cp1=records.json"], "python -m probes: records.json: cp1, document 1: records must be a list of objects with a target and ok"),
    (["cp1=good.json", "--reference", "pve"], "python -m probes: --reference pve: no HOST=FILE gives evidence for it"),
    (["cp1=good.json", "--criteria", "criteria.json"], "python -m probes: criteria.json: min_pull_success: 95 is not a fraction between 0 "
                                                        "and 1 (0.95 means 95%)"),
    (["cp1=good.json", "--bogus"], "python -m probes: unrecognized arguments: --bogus (see --help)"),
    ([], "python -m probes: the following arguments are required: EVIDENCE (see --help)"),
], ids=["no-equals", "missing-file", "bad-json", "other-schema", "bad-records", "unknown-reference", "bad-criteria", "unknown-option",
        "no-evidence"])
def test_usage_errors_exit_2_with_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "good.json", http(None))
    (tmp_path / "bad.json").write_text("not json")
    write(tmp_path / "other.json", {"schema": "something/v9", "command": "http", "records": []})
    write(tmp_path / "records.json", {**http(None), "records": [{"target": "x"}]})
    write(tmp_path / "criteria.json", {"min_pull_success": 95})
    assert main(["diagnose", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [message] and not captured.out


def _with_sweep(**changes: object) -> dict:
    doc = sweep("black-hole", clamp=1240)
    return {**doc, "mss_sweep": {**doc["mss_sweep"], **changes}}


@pytest.mark.parametrize(("document", "message"), [
    ({**http(None), "records": [{"target": "https://ghcr.io/v2/", "ok": True, "phases_ms": {"tls": "fast"}}]},
     "cp1, document 1: malformed: could not convert string to float: 'fast'"),
    ({**http(None), "records": [{"target": "https://[::1/", "ok": True}]}, "cp1, document 1: malformed: Invalid IPv6 URL"),
    (_with_sweep(trials=["x"]), "cp1, document 1: mss_sweep trials must be a list of objects"),
    (_with_sweep(recommended_clamp="1240"), "cp1, document 1: mss_sweep recommended_clamp is '1240', not an integer"),
    (_with_sweep(working_mss=True), "cp1, document 1: mss_sweep working_mss is True, not an integer"),
    (_with_sweep(remote_ip=7), "cp1, document 1: mss_sweep remote_ip is 7, not an address"),
], ids=["phase_not_a_number", "unparsable_url", "trials_not_objects", "clamp_a_string", "mss_a_boolean", "address_a_number"])
def test_a_malformed_document_with_the_right_schema_tag_is_a_usage_error_not_a_traceback(tmp_path, capsys, document, message):
    assert main(["diagnose", f"cp1={write(tmp_path / 'doc.json', document)}"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"python -m probes: {tmp_path / 'doc.json'}: {message}"]


def test_the_module_runs_as_a_command_with_its_exit_code(black_hole, tmp_path):
    done = subprocess.run([sys.executable, "-m", "probes", "diagnose", *black_hole], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout.startswith("FAIL: pmtu-black-hole") and not done.stderr
    done = subprocess.run([sys.executable, "-m", "probes", "diagnose", f"cp1={tmp_path / 'nothing.json'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
