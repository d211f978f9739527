"""The calibrator finds a known breaking point, and writes the calibration file the fleet spec reads."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
from pathlib import Path

import yaml

from hwai_models import calibrate

from .test_server_process import start

SERVICE_MS = 40.0
WORKERS = 2
CAPACITY_RPM = WORKERS / (SERVICE_MS / 1000) * 60  # 3000 requests per minute


def test_finds_known_breaking_point(tmp_path: Path) -> None:
    proc, url = start({"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-cpu", "HWAI_SLEEP_MS": str(SERVICE_MS), "HWAI_MAX_CONCURRENCY": str(WORKERS), "HWAI_DRAIN_SECONDS": "0"})
    out, png, js = tmp_path / "calibration.yaml", tmp_path / "bp.png", tmp_path / "steps.json"
    out.write_text(yaml.safe_dump({"kind": "hwai/calibration", "units": {"other-unit": {"maxRpm": 1.0, "latencySeconds": 0.5, "sloSeconds": 0.9, "measuredAt": "2026-01-01T00:00:00Z", "method": "kept"}}}))
    try:
        rc = calibrate.main([
            "--url", url, "--body", '{"payload": "x"}', "--slo", str(5 * SERVICE_MS / 1000), "--arrivals", "uniform",
            "--start-rpm", "1200", "--growth", "1.25", "--step-seconds", "3", "--refine", "3", "--cooldown", "0.3",
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
    assert abs(unit["maxRpm"] - CAPACITY_RPM) <= 0.10 * CAPACITY_RPM, unit
    assert SERVICE_MS / 1000 * 0.9 <= unit["latencySeconds"] <= unit["sloSeconds"] == 0.2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", unit["measuredAt"])
    assert "open-loop" in unit["method"] and "p99" in unit["method"]
    steps = json.loads(js.read_text())["steps"]
    assert any(not s["passed"] for s in steps) and any(s["phase"] == "refine" for s in steps)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


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
