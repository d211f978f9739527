"""The calibrator finds a known breaking point, and writes the calibration file the fleet spec reads.

The server under calibration is the real one with the ``sleep`` task: one worker holding each
request for a fixed service time, so its capacity is known exactly. The service time is long
(250 ms: 240 requests per minute) so that the client has to offer only a few requests a second:
a rate any machine, however busy, keeps to. Where the client must fall behind, a fault injector
makes it (a request hook that blocks the client's event loop), and the calibrator must say so.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hwai_models import calibrate

from .test_server_process import start

SERVICE_MS = 250.0
WORKERS = 1
CAPACITY_RPM = WORKERS / (SERVICE_MS / 1000) * 60  # 240 requests per minute


def test_finds_known_breaking_point(tmp_path: Path) -> None:
    proc, url = start({"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-cpu", "HWAI_SLEEP_MS": str(SERVICE_MS), "HWAI_MAX_CONCURRENCY": str(WORKERS), "HWAI_DRAIN_SECONDS": "0"})
    out, png, js = tmp_path / "calibration.yaml", tmp_path / "bp.png", tmp_path / "steps.json"
    out.write_text(yaml.safe_dump({"kind": "hwai/calibration", "units": {"other-unit": {"maxRpm": 1.0, "latencySeconds": 0.5, "sloSeconds": 0.9, "measuredAt": "2026-01-01T00:00:00Z", "method": "kept"}}}))
    try:
        rc = calibrate.main([
            "--url", url, "--body", '{"payload": "x"}', "--slo", str(4 * SERVICE_MS / 1000), "--arrivals", "uniform",
            "--start-rpm", "120", "--growth", "1.25", "--step-seconds", "3", "--refine", "3", "--cooldown", "0.3",
            "--timeout", "10", "--out", str(out), "--plot", str(png), "--json", str(js),
        ])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert rc == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["kind"] == "hwai/calibration"
    assert set(doc["units"]) == {"other-unit", "calib-cpu"}  # merged, not overwritten
    unit = doc["units"]["calib-cpu"]
    assert list(unit) == ["maxRpm", "latencySeconds", "sloSeconds", "measuredAt", "method"]
    # The ramp passes 120, 150, 187.5 and 234 rpm (the server keeps up) and fails 293 (15 requests
    # need 3.75 s of service in a 3 s step); the bisections stay between 234 and 262 rpm, since
    # above 262 a 3 s step holds more service than its span.
    assert abs(unit["maxRpm"] - CAPACITY_RPM) <= 0.10 * CAPACITY_RPM, unit
    assert SERVICE_MS / 1000 * 0.9 <= unit["latencySeconds"] <= unit["sloSeconds"] == 1.0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", unit["measuredAt"])
    assert "open-loop" in unit["method"] and "p99" in unit["method"]
    result = json.loads(js.read_text())
    steps = result["steps"]
    assert any(not s["passed"] for s in steps) and any(s["phase"] == "refine" for s in steps)
    assert result["clientLimited"] is None and not any(s["client_limited"] for s in steps)
    for s in steps:  # the client kept to its schedule, so every step's sent rate is its offered rate
        assert s["sent_rpm"] >= 0.9 * s["offered_rpm"], s
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def slow_client(seconds: float) -> Any:
    """Fault injector: a request hook that blocks the client's event loop for ``seconds`` before
    each send, as a starved machine would. The client can then send at most 1/seconds a second."""

    async def hook(request: httpx.Request) -> None:
        time.sleep(seconds)

    return hook


def test_client_that_cannot_offer_the_rate_is_not_a_breaking_point(tmp_path: Path, capsys: Any) -> None:
    # A server with room to spare (8 workers, 5 ms each: 96,000 rpm) and a client that can send
    # at most 600 rpm (100 ms blocked per send): the 200 rpm step is kept to and passes; the
    # 800 rpm step cannot be offered, and the calibrator must say so instead of failing the
    # server there (or claiming 200 rpm as its breaking point).
    proc, url = start({"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-cpu", "HWAI_SLEEP_MS": "5", "HWAI_MAX_CONCURRENCY": "8", "HWAI_DRAIN_SECONDS": "0"})
    out, js = tmp_path / "calibration.yaml", tmp_path / "steps.json"
    argv = [
        "--url", url, "--body", '{"payload": "x"}', "--slo", "1.0", "--arrivals", "uniform",
        "--start-rpm", "200", "--growth", "4", "--step-seconds", "2", "--refine", "3", "--cooldown", "0",
        "--timeout", "10", "--out", str(out), "--json", str(js),
    ]
    real_client = httpx.AsyncClient

    def hooked(*args: Any, **kw: Any) -> httpx.AsyncClient:
        return real_client(*args, event_hooks={"request": [slow_client(0.1)]}, **kw)

    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(calibrate.httpx, "AsyncClient", hooked)
            rc = calibrate.main(argv)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    err = capsys.readouterr().err
    assert rc == 4, err
    assert not out.exists()  # nothing calibrated from a step the client could not offer
    result = json.loads(js.read_text())
    assert result["breakingPoint"] is None
    assert [s["offered_rpm"] for s in result["steps"]] == [200, 800]
    ok, limited = result["steps"]
    assert ok["passed"] and not ok["client_limited"] and ok["sent_rpm"] >= 0.9 * 200
    assert limited["client_limited"] and not limited["passed"] and limited["sent_rpm"] <= 600 * 1.05
    assert result["clientLimited"]["offered_rpm"] == 800 and result["lowerBound"]["offered_rpm"] == 200
    assert "client-limited: meant to offer 800.0 rpm" in err and "the server passed 200.0 rpm" in err


def test_client_limited_step_is_neither_pass_nor_failure() -> None:
    s = calibrate.Step(offered_rpm=600, start_s=0, duration_s=10, sent=100, ok=100, achieved_rpm=600, p99=0.1, pct=0.1, sent_rpm=600)
    assert not calibrate.client_limited(s, 0.1)
    s.sent_rpm = 541  # within 10 % of the intended rate
    assert not calibrate.client_limited(s, 0.1)
    s.sent_rpm = 539
    assert calibrate.client_limited(s, 0.1)
    s.client_limited = True
    assert not calibrate.judge(s, 0.9, 99, 0.01, 0.9)  # never a pass, whatever its latency


def test_percentile_and_judge() -> None:
    assert calibrate.percentile([], 99) == float("inf")
    vals = [i / 100 for i in range(1, 101)]
    assert calibrate.percentile(vals, 50) == 0.5 and calibrate.percentile(vals, 99) == 0.99 and calibrate.percentile(vals, 100) == 1.0
    s = calibrate.Step(offered_rpm=60, start_s=0, duration_s=60, sent=60, ok=60, achieved_rpm=59, p99=0.5, pct=0.5)
    assert calibrate.judge(s, 0.9, 99, 0.01, 0.9)
    s.pct = 1.0
    assert not calibrate.judge(s, 0.9, 99, 0.01, 0.9)
    s.pct, s.errors = 0.5, 2
    assert not calibrate.judge(s, 0.9, 99, 0.01, 0.9)
    s.errors, s.achieved_rpm = 0, 40
    assert not calibrate.judge(s, 0.9, 99, 0.01, 0.9)


def test_calibration_file_shape(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    calibrate.write_calibration(p, "sd21-g5-triton", 90, 0.68, 0.9, "open-loop ramp, p99 at SLO", dt.datetime(2026, 11, 28, 18, 0, tzinfo=dt.timezone.utc))
    assert yaml.safe_load(p.read_text()) == {
        "kind": "hwai/calibration",
        "units": {"sd21-g5-triton": {"maxRpm": 90.0, "latencySeconds": 0.68, "sloSeconds": 0.9, "measuredAt": "2026-11-28T18:00:00Z", "method": "open-loop ramp, p99 at SLO"}},
    }
