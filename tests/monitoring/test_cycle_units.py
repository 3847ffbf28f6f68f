"""The cycle runner's pure and file-level parts: which hosts get swept, the store's rotation, the
config it refuses, and a full disk counted in the metrics rather than raised."""

from __future__ import annotations

import errno
import json
import os

import pytest

from probes import agent
from tests.monitoring.docs import doc, http, pull

CFG = {"plain_http": []}


def test_only_hosts_whose_handshake_stalled_are_swept_blob_hosts_included():
    docs = [doc("http", [http("https://ghcr.io/v2/", False, "tls_handshake_timeout"), http("https://quay.io/v2/", True),
                         http("https://api.doppler.com/v3/projects", False, "connect_timeout"),
                         http("https://ghcr.io/v2/", False, "tls_handshake_timeout", big=True)]),
            doc("pull", [dict(pull("docker.io/rancher/mirrored-library-busybox:1.37.0", False, "tls_handshake_timeout"),
                              error="TLS handshake with production.cloudflare.docker.com did not finish in 1.0s"),
                         dict(pull("quay.io/prometheus/node-exporter:v1.8.2", False, "tls_handshake_timeout"),
                              error="TLS handshake with quay.io did not finish in 1.0s")])]
    assert agent.stalled_hosts(docs, CFG) == [("ghcr.io", 443, None), ("production.cloudflare.docker.com", 443, "registry-1.docker.io"),
                                              ("quay.io", 443, None)]


def test_a_stall_on_the_mirror_before_a_fallback_is_swept_too():
    rec = dict(pull("ghcr.io/fluxcd/helm-controller:v1.5.1", True), fallbacks=[
        {"endpoint": "https://10.27.27.5:5000", "role": "mirror", "error_class": "tls_handshake_timeout",
         "error": "TLS handshake with 10.27.27.5 did not finish in 1.0s", "steps": []}])
    assert agent.stalled_hosts([doc("pull", [rec])], CFG) == [("10.27.27.5", 443, "ghcr.io")]


def test_plain_http_registries_have_no_handshake_to_sweep():
    rec = dict(pull("10.27.27.5:5000/x/y:1", False, "tls_handshake_timeout"), error="TLS handshake with 10.27.27.5:5000 did not finish in 1s")
    assert agent.stalled_hosts([doc("pull", [rec])], {"plain_http": ["10.27.27.5:5000"]}) == []


def _run(store, name: str, size: int, age_s: float, now: float) -> None:
    path = store / name
    path.write_bytes(b"x" * size)
    os.utime(path, (now - age_s, now - age_s))


def test_rotation_drops_runs_older_than_the_retention_and_keeps_the_newest(tmp_path):
    now = 1_800_000_000.0
    _run(tmp_path, "run-20260101T000000Z-1.json", 10, 25 * 3600, now)
    _run(tmp_path, "run-20260101T010000Z-1.json", 10, 23 * 3600, now)
    (tmp_path / "state.json").write_text("{}")
    assert agent.rotate_store(str(tmp_path), 24 * 3600, 10**6, now) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-20260101T010000Z-1.json", "state.json"]
    # the newest run stays even when it is older than the retention (the timer was off for a day)
    assert agent.rotate_store(str(tmp_path), 3600, 10**6, now) == 0


@pytest.mark.parametrize("cap,left", [(30, 3), (29, 2), (10, 1), (1, 1)])
def test_rotation_keeps_the_store_under_its_byte_cap_oldest_first(tmp_path, cap, left):
    now = 1_800_000_000.0
    for i in range(3):
        _run(tmp_path, f"run-2026010{i + 1}T000000Z-1.json", 10, 60, now)
    agent.rotate_store(str(tmp_path), 24 * 3600, cap, now)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == left and names[-1] == "run-20260103T000000Z-1.json"


def test_rotation_removes_temporary_files_a_killed_run_left_after_an_hour(tmp_path):
    now = 1_800_000_000.0
    _run(tmp_path, "run-20260101T000000Z-1.json.4242", 10, 7200, now)
    _run(tmp_path, "run-20260101T000000Z-2.json.4243", 10, 60, now)  # perhaps still being written
    agent.rotate_store(str(tmp_path), 24 * 3600, 10**6, now)
    assert [p.name for p in tmp_path.iterdir()] == ["run-20260101T000000Z-2.json.4243"]


def _write_config(tmp_path, **values):
    base = {"host": "cp1", "endpoints": ["https://ghcr.io/v2/"], "images": [], "store": str(tmp_path / "s")}
    base.update(values)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(base))
    return str(path)


@pytest.mark.parametrize("values,message", [
    ({"interval_seconds": 0}, "interval_seconds: a positive number"),
    ({"interval_seconds": -5}, "interval_seconds: a positive number"),
    ({"retention_hours": 0}, "retention_hours: a positive number"),
    ({"textfile_dir": "var/lib/node-exporter"}, "textfile_dir: an absolute path"),
    ({"store": "probes"}, "store: an absolute path"),
    ({"host": "bad host"}, "host: a host name"),
    ({"role": "king"}, "role: one of node, mirror, reference"),
    ({"endpoints": [], "images": []}, "nothing to probe"),
    ({"endpoints": ["ftp://x/"]}, "is not valid"),
    ({"colour": "blue"}, "unknown key(s): colour"),
])
def test_a_bad_config_is_refused(tmp_path, values, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        agent.load_cycle_config(_write_config(tmp_path, **values))


def test_the_defaults_are_the_documented_ones(tmp_path):
    cfg = agent.load_cycle_config(_write_config(tmp_path))
    assert (cfg["interval_seconds"], cfg["retention_hours"], cfg["max_store_bytes"], cfg["textfile_dir"]) == \
        (300, 24, 50 * 1024 * 1024, "/var/lib/prometheus/node-exporter")


def test_the_cheap_set_is_repeats_plus_one_big_hello_and_manifest_checks(tmp_path):
    cfg = agent.load_cycle_config(_write_config(tmp_path, images=["ghcr.io/fluxcd/helm-controller:v1.5.1"],
                                                     mirrors={"ghcr.io/fluxcd/helm-controller:v1.5.1": "http://10.27.27.5:5001"}))
    commands = agent.cycle_commands(cfg)
    assert [c[0] for c in commands] == ["http", "http", "pull"]
    assert commands[0][commands[0].index("--repeat") + 1] == "3" and "--big-hello" not in commands[0]
    assert "--big-hello" in commands[1] and "--repeat" not in commands[1]
    assert "--manifest-only" in commands[2] and commands[2][commands[2].index("--mirror") + 1] == "http://10.27.27.5:5001"
    assert agent.cycle_plan(cfg) == [("http", "ghcr.io/v2/"), ("http_big_hello", "ghcr.io/v2/"), ("manifest", "ghcr.io/fluxcd/helm-controller:v1.5.1")]


def test_a_full_disk_is_counted_in_the_metrics_not_raised(tmp_path, monkeypatch):
    cfg = agent.load_cycle_config(_write_config(tmp_path, textfile_dir=str(tmp_path / "tf")))
    (tmp_path / "tf").mkdir()
    real = agent.write_atomically

    def full(path, text):
        if not path.endswith(agent.METRICS_FILE):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(agent, "write_atomically", full)
    docs = [doc("http", [http("https://ghcr.io/v2/", True)])]
    assert agent.finish_cycle(cfg, docs, 1_800_000_000.0, 4.0) == 0
    text = (tmp_path / "tf" / agent.METRICS_FILE).read_text()
    assert 'netstab_probe_store_errors_total{host="cp1",role="node"} 2' in text  # the run and the counters
    assert 'result="ok"} 1' in text


def test_an_atomic_write_leaves_no_temporary_behind_when_it_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(agent.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    with pytest.raises(OSError):
        agent.write_atomically(str(tmp_path / "x.prom"), "text")
    assert list(tmp_path.iterdir()) == []


def test_one_cycle_at_the_defaults_takes_at_most_200_seconds():
    """6 endpoints x 3 repeats and 6 big hellos, 8 at once, 5 s each: 4 rounds, 20 s; 5 manifest checks at
    once through a mirror with fallback: 6 requests x 5 s x 2, 60 s; 3 sweeps of 30 s + 10 s: 120 s."""
    assert agent.cycle_bound_s(6, 5, 3, 5.0, 8, True, 3, 30.0) == 200.0
    assert agent.cycle_bound_s(6, 5, 3, 5.0, 8, False, 3, 30.0) == 170.0
    assert agent.cycle_bound_s(6, 0, 3, 5.0, 8, True, 0, 30.0) == 20.0


@pytest.mark.parametrize("interval,ok", [(200, True), (199, False)])
def test_an_interval_below_one_cycle_is_refused_from_both_sides(tmp_path, interval, ok):
    values = {"endpoints": ["https://ghcr.io/v2/"] * 6, "images": ["ghcr.io/fluxcd/helm-controller:v1.5.1"] * 5,
              "mirrors": {"ghcr.io/fluxcd/helm-controller:v1.5.1": "http://10.27.27.5:5002"}, "interval_seconds": interval}
    if ok:
        agent.load_cycle_config(_write_config(tmp_path, **values))
    else:
        with pytest.raises(ValueError, match="shorter than one cycle can take with these settings \\(200 s\\)"):
            agent.load_cycle_config(_write_config(tmp_path, **values))
