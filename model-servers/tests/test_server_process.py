"""The real entry point in its own process: stdout carries only EMF lines; SIGTERM drains."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(env_extra: dict[str, str], logs: Path | None = None) -> tuple[subprocess.Popen, str]:
    """The server in its own process; stdout and stderr go to files (a pipe nobody reads would
    fill up and block the server)."""
    import tempfile

    port = free_port()
    env = dict(os.environ, HWAI_HOST="127.0.0.1", HWAI_PORT=str(port), PYTHONPATH=str(ROOT), **env_extra)
    logs = logs or Path(tempfile.mkdtemp(prefix="hwai-server-"))
    proc = subprocess.Popen([sys.executable, "-m", "hwai_models.server"], env=env, stdout=open(logs / "stdout", "w"), stderr=open(logs / "stderr", "w"), text=True, cwd=str(ROOT))
    proc.logs = logs  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/readiness", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (logs / "stderr").read_text()
        time.sleep(0.1)
    proc.kill()
    raise TimeoutError((logs / "stderr").read_text())


def test_sigterm_drains_then_exits() -> None:
    proc, url = start({"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-cpu", "HWAI_SLEEP_MS": "20", "HWAI_DRAIN_SECONDS": "1.5"})
    try:
        assert httpx.post(url + "/v1/sleep", json={"payload": "x"}).status_code == 200
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        r = httpx.get(url + "/readiness")
        assert r.status_code == 503 and r.json()["draining"] is True
        assert httpx.get(url + "/health").status_code == 200  # alive while draining
        assert httpx.post(url + "/v1/sleep", json={}).status_code == 200  # still serving
        t0 = time.time()
        proc.wait(timeout=20)
        out, err = (proc.logs / "stdout").read_text(), (proc.logs / "stderr").read_text()
        assert proc.returncode == 0, err
        assert 0.5 < time.time() - t0 + 0.3 < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 2
    for l in lines:  # stdout is for CloudWatch: nothing but EMF
        d = json.loads(l)
        assert d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "hw-agnostic-infer"
        assert d["service"] == "calib" and d["unit"] == "calib-cpu" and d["RequestCount"] == d["SuccessCount"] == 1
    assert "draining" in err


def test_ready_server_has_frozen_its_objects_and_reports_collector_pauses() -> None:
    """After the warm-up the server freezes what is alive (the model, the compiler's graphs) out of
    the collector's reach, and /info's stats count every collection's pause; HWAI_GC_FREEZE=false
    leaves the collector as it was."""
    env = {"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-cpu", "HWAI_SLEEP_MS": "1"}
    frozen = {}
    for freeze in (True, False):
        proc, url = start({**env, "HWAI_GC_FREEZE": str(freeze).lower()})
        try:
            stats = httpx.get(url + "/info").json()["stats"]
            frozen[freeze] = stats["gcFrozenObjects"]
            assert stats["gcPauseSeconds"] >= stats["gcFullPauseSeconds"] >= 0
            assert stats["maxGcPauseMs"] >= 0
            if freeze:
                assert stats["gcFullCollections"] >= 1  # the one just before the freeze, timed
        finally:
            proc.kill()
            proc.wait(10)
    assert frozen[True] > 10_000  # the app and the framework it imported, at least
    assert frozen[False] < frozen[True] / 10  # (an imported library may freeze a few itself)


def test_bad_configuration_exits_2() -> None:
    env = dict(os.environ, HWAI_TASK="sentiment", HWAI_SERVICE="s", HWAI_UNIT="u", HWAI_BACKEND="gpu9000", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "hwai_models.server"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "HWAI_BACKEND" in p.stderr and p.stdout == ""
