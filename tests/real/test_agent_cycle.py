"""`agent.py pull --manifest-only` and `agent.py cycle` for real, on loopback: the cheap set, a
sweep only of the host that stalled, the bounded store, counters that keep counting across runs,
the metrics file written atomically, and a store that cannot be written counted, never fatal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lab.servers import serve_in_thread
from tests import promtool
from tests.real.conftest import AGENT, agent, free_port


@pytest.fixture(scope="module")
def servers(localhost_cert):
    started = {mode: serve_in_thread(mode, localhost_cert.cert, localhost_cert.key) for mode in ("normal", "silent")}
    yield {mode: f"https://localhost:{s.server_address[1]}/v2/" for mode, s in started.items()}
    for s in started.values():
        s.shutdown()


def test_a_manifest_check_fetches_no_layer_but_touches_the_blob_host(fake):
    host = fake.url.split("//")[1]
    rc, doc = agent("pull", "--manifest-only", f"{host}/team/app:v1", "--plain-http", host, "--platform", "linux/amd64")
    rec = doc["records"][0]
    assert rc == 0 and rec["ok"] and rec["mode"] == "manifest", rec
    steps = [s["step"] for s in rec["steps"]]
    assert steps == ["token", "manifest", "manifest", "config-head"]
    assert f"localhost:{fake.blobs.server_address[1]}" in rec["hosts"]
    assert rec["bytes"] < 20000  # the index, the manifest and one config: a full pull of this image reads far more


def test_a_full_pull_reads_the_layers_the_manifest_check_skips(fake):
    """Counterfactual: without --manifest-only the same image reads every layer."""
    host = fake.url.split("//")[1]
    _, doc = agent("pull", f"{host}/team/app:v1", "--plain-http", host, "--platform", "linux/amd64")
    assert "layer" in [s["step"] for s in doc["records"][0]["steps"]]


def _config(tmp_path: Path, servers, localhost_cert, fake, **extra) -> Path:
    host = fake.url.split("//")[1]
    cfg = {"host": "cp1", "role": "node", "interval_seconds": 60, "endpoints": [servers["normal"], servers["silent"]],
           "images": [f"{host}/team/app:v1"], "plain_http": [host], "platform": "linux/amd64", "ca_file": str(localhost_cert.ca),
           "repeats": 2, "timeout_seconds": 2, "store": str(tmp_path / "store"), "textfile_dir": str(tmp_path / "textfile"),
           "sweep_budget_seconds": 3, "tracepath_timeout_seconds": 1}
    cfg.update(extra)
    (tmp_path / "textfile").mkdir(exist_ok=True)
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(cfg))
    return path


def cycle(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(AGENT), "cycle", "--config", str(config)], capture_output=True, text=True, timeout=120)


def value(text: str, name: str, **labels: str) -> str:
    want = [f'{k}="{v}"' for k, v in labels.items()]
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + "{") and all(w in line for w in want)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_a_cycle_stores_its_run_sweeps_only_the_stalled_host_and_writes_metrics(tmp_path, servers, localhost_cert, fake):
    config = _config(tmp_path, servers, localhost_cert, fake)
    done = cycle(config)
    assert done.returncode == 0, done.stderr
    store = tmp_path / "store"
    (run,) = sorted(store.glob("run-*.json"))
    docs = json.loads(run.read_text())
    commands = [d["command"] for d in docs]
    assert commands == ["http", "http", "pull", "mss-sweep"]
    silent_port = servers["silent"].split(":")[2].split("/")[0]
    assert docs[3]["mss_sweep"]["target"] == f"localhost:{silent_port}"  # only the host whose handshake stalled
    assert (store / "state.json").exists()
    text = (tmp_path / "textfile" / "netstab_probe.prom").read_text()
    silent = servers["silent"].split("://")[1]
    assert value(text, "netstab_probe_attempts_total", probe="http", target=silent, result="tls_handshake_timeout") == "2"
    assert value(text, "netstab_probe_attempts_total", probe="http_big_hello", target=silent, result="tls_handshake_timeout") == "1"
    assert value(text, "netstab_probe_attempts_total", probe="manifest", result="ok") == "1"
    assert value(text, "netstab_probe_sweeps_total", target="localhost", path="direct", verdict="unreachable") == "1"
    assert value(text, "netstab_probe_store_errors_total") == "0"
    assert value(text, "netstab_probe_interval_seconds") == "60"
    assert abs(float(value(text, "netstab_probe_last_run_timestamp_seconds")) - time.time()) < 60
    assert [p.name for p in (tmp_path / "textfile").iterdir()] == ["netstab_probe.prom"]  # no NAME.prom.<pid> left
    checked = promtool.run("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    assert cycle(config).returncode == 0  # the counters keep counting across runs
    again = (tmp_path / "textfile" / "netstab_probe.prom").read_text()
    assert value(again, "netstab_probe_attempts_total", probe="http", target=silent, result="tls_handshake_timeout") == "4"
    assert len(list(store.glob("run-*.json"))) == 2


def test_an_unwritable_store_is_counted_and_never_fatal(tmp_path, servers, localhost_cert, fake):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = _config(tmp_path, servers, localhost_cert, fake, store=str(blocker / "store"), endpoints=[servers["normal"]], images=[])
    done = cycle(config)
    assert done.returncode == 0
    assert "cannot store the run" in done.stderr
    text = (tmp_path / "textfile" / "netstab_probe.prom").read_text()
    assert int(value(text, "netstab_probe_store_errors_total")) >= 1
    assert value(text, "netstab_probe_attempts_total", probe="http", result="ok") == "2"


def test_a_bad_config_exits_2_before_any_packet(tmp_path, servers, localhost_cert, fake):
    config = _config(tmp_path, servers, localhost_cert, fake, textfile_dir="relative/dir")
    done = cycle(config)
    assert done.returncode == 2 and "textfile_dir: an absolute path" in done.stderr
    assert not (tmp_path / "store").exists()


def test_serve_metrics_answers_the_file_at_metrics(tmp_path):
    metrics = tmp_path / "netstab_probe.prom"
    metrics.write_text("# HELP x y\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(AGENT), "serve-metrics", "--listen", f"127.0.0.1:{port}", "--file", str(metrics)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            assert resp.read() == b"# HELP x y\n"
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    finally:
        proc.terminate()
        proc.wait(10)
    assert os.path.exists(metrics)
