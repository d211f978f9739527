"""The calibrator finds a known breaking point, says when its client could not offer a rate, and
writes the calibration file the fleet spec reads.

A load test against a real server measures the machine as much as the server: on a busy 2-core
machine the client fell behind and "found" 1,773 rpm for a known 3,000. So these tests run the
calibrator's own code (its schedule, its HTTP client, its judgement and search) on an event loop
whose clock is virtual, against a server on that same clock whose capacity is known exactly: a
queue in front of ``workers`` workers that each hold a request for ``service_s``. Virtual time
moves only when every task waits, so the client keeps its schedule and the server its service time
however busy the machine is, and the run takes no real time. Where the client must fall behind, a
fault injector stalls its event loop on every send, as a starved machine would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hwai_models import calibrate


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when nothing is ready to run: it then jumps to the
    next timer. ``stall(s)`` moves the clock as a loop blocked for ``s`` seconds would."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0

    def time(self) -> float:
        return self._now

    def stall(self, seconds: float) -> None:
        self._now += seconds

    def _run_once(self) -> None:
        scheduled: list[Any] = self._scheduled  # type: ignore[attr-defined]
        while scheduled and scheduled[0]._cancelled:  # as BaseEventLoop does before it waits
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            heapq.heappop(scheduled)._scheduled = False
        if not self._ready and scheduled:  # type: ignore[attr-defined]
            self._now = max(self._now, scheduled[0].when())
        super()._run_once()  # type: ignore[misc]


def run_virtual(coro: Any) -> Any:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class QueueingServer(httpx.AsyncBaseTransport):
    """The server under calibration, on the loop's clock: FIFO queue, ``workers`` workers, each
    request held for exactly ``service_s``; capacity ``workers / service_s``."""

    def __init__(self, workers: int, service_s: float) -> None:
        self.workers, self.service_s = workers, service_s
        self.sem: asyncio.Semaphore | None = None
        self.served = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/readiness":
            return httpx.Response(200, json={"ready": True})
        if request.url.path == "/info":
            return httpx.Response(200, json={"unit": "calib-cpu", "route": "/v1/sleep", "stats": {"served": self.served, "note": "not a number"}})
        self.sem = self.sem or asyncio.Semaphore(self.workers)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with self.sem:
            t1 = loop.time()
            await asyncio.sleep(self.service_s)
        self.served += 1
        timing = f"queue;dur={1000 * (t1 - t0):.1f}, total;dur={1000 * (loop.time() - t0):.1f}"
        return httpx.Response(200, json={"echo": json.loads(request.content)}, headers={"Server-Timing": timing})


class StalledClient(httpx.AsyncBaseTransport):
    """Fault injector: every send after the first ``after`` costs the client's event loop
    ``seconds`` (as on a starved machine), so it can send at most 1/seconds requests a second."""

    def __init__(self, server: httpx.AsyncBaseTransport, seconds: float, after: int = 0) -> None:
        self.server, self.seconds, self.after = server, seconds, after
        self.sends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.sends += 1
            loop = asyncio.get_running_loop()
            assert isinstance(loop, VirtualTimeLoop)
            if self.sends > self.after:
                loop.stall(self.seconds)
        return await self.server.handle_async_request(request)


SERVICE_S = 0.040
WORKERS = 2
CAPACITY_RPM = WORKERS / SERVICE_S * 60  # 3000 requests per minute
ARGS = ["--url", "http://calib.test", "--body", '{"payload": "x"}', "--arrivals", "uniform", "--timeout", "10", "--min-requests", "0"]


def calibrate_known_server(tmp_path: Path) -> tuple[int, Path, Path, Path]:
    out, png, js = tmp_path / "calibration.yaml", tmp_path / "bp.png", tmp_path / "steps.json"
    out.write_text(yaml.safe_dump({"kind": "hwai/calibration", "units": {"other-unit": {"maxRpm": 1.0, "latencySeconds": 0.5, "sloSeconds": 0.9, "measuredAt": "2026-01-01T00:00:00Z", "method": "kept"}}}))
    rc = calibrate.main(
        ARGS + ["--slo", str(5 * SERVICE_S), "--start-rpm", "1200", "--growth", "1.25", "--step-seconds", "3", "--refine", "3", "--cooldown", "0.3",
                "--out", str(out), "--plot", str(png), "--json", str(js)],
        run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S),
    )
    return rc, out, png, js


def test_finds_known_breaking_point(tmp_path: Path) -> None:
    rc, out, png, js = calibrate_known_server(tmp_path)
    assert rc == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["kind"] == "hwai/calibration"
    assert set(doc["units"]) == {"other-unit", "calib-cpu"}  # merged, not overwritten
    unit = doc["units"]["calib-cpu"]
    assert list(unit) == ["maxRpm", "latencySeconds", "sloSeconds", "measuredAt", "method"]
    assert abs(unit["maxRpm"] - CAPACITY_RPM) <= 0.10 * CAPACITY_RPM, unit
    assert SERVICE_S * 0.99 <= unit["latencySeconds"] <= unit["sloSeconds"] == 0.2
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", unit["measuredAt"])
    assert "open-loop" in unit["method"] and "p99" in unit["method"]
    result = json.loads(js.read_text())
    steps = result["steps"]
    assert any(not s["passed"] for s in steps) and any(s["phase"] == "refine" for s in steps)
    assert result["clientLimited"] is None
    for s in steps:  # the client kept its schedule exactly
        assert s["sent_rpm"] == pytest.approx(s["offered_rpm"]) and s["max_send_lag_s"] < 1e-9 and not s["client_limited"], s
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # Each step keeps its slowest answers with the server's account of them: past the breaking
    # point the tail is the server's queue, and the server's total is the whole latency.
    failing = next(s for s in steps if not s["passed"])
    slow = failing["slowest"]
    assert len(slow) == calibrate.SLOWEST_KEPT and [r["latencyS"] for r in slow] == sorted((r["latencyS"] for r in slow), reverse=True)
    assert slow[0]["latencyS"] == pytest.approx(failing["p99"], rel=0.5)
    for r in slow:
        assert r["serverTiming"]["total"] == pytest.approx(1000 * r["latencyS"], abs=0.2)
        assert r["serverTiming"]["queue"] > r["serverTiming"]["total"] - 1000 * SERVICE_S - 0.2 > 0
        assert 0 <= r["sentAtS"] <= failing["duration_s"]
    # Deterministic: the same run finds the same point.
    again = tmp_path / "again"
    again.mkdir()
    assert calibrate_known_server(again)[0] == 0
    assert yaml.safe_load((again / "calibration.yaml").read_text())["units"]["calib-cpu"]["maxRpm"] == unit["maxRpm"]


def test_steps_hold_enough_requests_and_the_breaking_point_is_repeated_with_other_seeds(tmp_path: Path) -> None:
    # A p99 over 40 requests is the slowest one: each step must last long enough for 300 arrivals
    # (here 6 to 15 s of virtual time instead of the 3 s asked), and the breaking point's rate is
    # measured twice more with independent arrival schedules, its spread reported.
    js = tmp_path / "steps.json"
    rc = calibrate.main(
        ARGS[:-2] + ["--min-requests", "300", "--repeat", "2", "--slo", str(5 * SERVICE_S), "--start-rpm", "1200", "--growth", "1.25",
                     "--step-seconds", "3", "--refine", "2", "--cooldown", "0", "--seed", "5", "--json", str(js)],
        run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S),
    )
    assert rc == 0
    result = json.loads(js.read_text())
    steps = result["steps"]
    assert all(s["sent"] >= 300 and s["duration_s"] == pytest.approx(max(3.0, 300 * 60 / s["offered_rpm"])) for s in steps)
    best, repeats = result["breakingPoint"], result["repeats"]
    assert [r["phase"] for r in repeats] == ["repeat", "repeat"] and all(r["offered_rpm"] == best["offered_rpm"] for r in repeats)
    assert len({best["seed"], *(r["seed"] for r in repeats)}) == 3  # independent schedules
    assert result["confirmed"] == all(r["passed"] for r in repeats)
    p99s = [best["p99"], *(r["p99"] for r in repeats)]
    assert result["spread"]["p99Seconds"] == [min(p99s), max(p99s)]
    # the server's counters over each step alone: what it served then, nothing from other steps
    for s in steps:
        assert s["server_stats"] == {"served": s["ok"]}, s


def test_a_first_rate_that_fails_steps_down_until_one_passes(tmp_path: Path) -> None:
    # Started at twice the server's capacity: without --descend the run has no breaking point;
    # with it the ramp steps down by its own factor until a rate passes, then bisects as usual.
    js = tmp_path / "steps.json"
    common = ARGS + ["--slo", str(5 * SERVICE_S), "--start-rpm", str(2 * CAPACITY_RPM), "--growth", "1.25", "--step-seconds", "3", "--refine", "2", "--cooldown", "0", "--json", str(js)]
    assert calibrate.main(common, run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S)) != 0
    assert json.loads(js.read_text())["breakingPoint"] is None
    assert calibrate.main(common + ["--descend", "5"], run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S)) == 0
    result = json.loads(js.read_text())
    phases = [s["phase"] for s in result["steps"]]
    assert phases[0] == "ramp" and "descend" in phases
    descents = [s for s in result["steps"] if s["phase"] == "descend"]
    assert all(not s["passed"] for s in descents[:-1]) and descents[-1]["passed"]
    assert abs(result["breakingPoint"]["offered_rpm"] - CAPACITY_RPM) <= 0.15 * CAPACITY_RPM, result["breakingPoint"]


def test_max_seconds_stops_the_run_and_keeps_what_it_measured(tmp_path: Path, capsys: Any) -> None:
    # A device call has a hard limit: with --max-seconds the run starts no step that would end
    # past it, writes what it measured, and says the run is incomplete. Steps of 3 s (+ 0.3 s
    # cooldown) from 1200 rpm, x1.25: the server's 3000 rpm capacity fails at the 5th step.
    js = tmp_path / "steps.json"
    common = ARGS + ["--slo", str(5 * SERVICE_S), "--start-rpm", "1200", "--growth", "1.25", "--step-seconds", "3", "--refine", "2", "--cooldown", "0.3", "--repeat", "2", "--json", str(js)]

    # Time for three steps: the ramp has not failed yet, so there is no breaking point, only a lower bound.
    assert calibrate.main(common + ["--max-seconds", "10"], run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S)) == 5
    result = json.loads(js.read_text())
    assert [s["phase"] for s in result["steps"]] == ["ramp"] * 3 and all(s["passed"] for s in result["steps"])
    assert result["breakingPoint"] is None and result["lowerBound"]["offered_rpm"] == pytest.approx(1200 * 1.25**2)
    assert "would have ended past --max-seconds 10" in result["cutShort"] and not result["reachedMaxRpm"]
    assert "before the time ran out" in capsys.readouterr().err

    # Time for the ramp and the bisection but not both repeats: a breaking point, not confirmed.
    full = calibrate.main(common, run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S))
    assert full == 0
    done = json.loads(js.read_text())
    assert done["cutShort"] is None and len(done["repeats"]) == 2
    first = done["repeats"][0]  # the same virtual schedule again: the first repeat fits, the second not
    limit = first["start_s"] + first["duration_s"] + 0.3 + 0.05
    assert calibrate.main(common + ["--max-seconds", f"{limit:.2f}"], run=run_virtual, transport=QueueingServer(WORKERS, SERVICE_S)) == 0
    cut = json.loads(js.read_text())
    assert cut["breakingPoint"]["offered_rpm"] == done["breakingPoint"]["offered_rpm"]
    assert len(cut["repeats"]) == 1 and cut["confirmed"] is False and "repeat step" in cut["cutShort"]
    assert "1 of the 2 repeats" in capsys.readouterr().err


def test_client_that_cannot_offer_the_rate_is_not_a_breaking_point(tmp_path: Path, capsys: Any) -> None:
    # A server with room to spare (8 workers, 5 ms each: 96,000 rpm) and a client whose every send
    # stalls it 100 ms (at most 600 rpm): the 200 rpm step is kept to and passes; the 800 rpm step
    # cannot be offered, and the calibrator must say so instead of failing the server there (or
    # calling 200 rpm its breaking point).
    out, js = tmp_path / "calibration.yaml", tmp_path / "steps.json"
    rc = calibrate.main(
        ARGS + ["--slo", "1.0", "--start-rpm", "200", "--growth", "4", "--step-seconds", "2", "--refine", "3", "--cooldown", "0", "--out", str(out), "--json", str(js)],
        run=run_virtual, transport=StalledClient(QueueingServer(8, 0.005), 0.1),
    )
    err = capsys.readouterr().err
    assert rc == 4, err
    assert not out.exists()  # nothing calibrated from a step the client could not offer
    result = json.loads(js.read_text())
    assert result["breakingPoint"] is None
    assert [s["offered_rpm"] for s in result["steps"]] == [200, 800]
    ok, limited = result["steps"]
    assert ok["passed"] and not ok["client_limited"] and ok["sent_rpm"] == 200
    # 27 sends 75 ms apart, each stalling the client 100 ms: the last leaves 0.65 s late.
    assert limited["client_limited"] and not limited["passed"]
    assert limited["max_send_lag_s"] == pytest.approx(26 * 0.025, abs=0.03) and limited["sent_rpm"] < 0.9 * 800
    assert result["clientLimited"]["offered_rpm"] == 800 and result["lowerBound"]["offered_rpm"] == 200
    assert "client-limited: meant to offer 800.0 rpm" in err and "the server passed 200.0 rpm" in err


def test_client_limited_refinement_keeps_the_bracketed_breaking_point(tmp_path: Path, capsys: Any) -> None:
    # The server (1 worker, 100 ms: 600 rpm) fails the ramp's 900 rpm step on its own. Then the
    # client's machine gets busy (every send after the ramp's 190 stalls it 100 ms: 600 rpm at
    # most), so the bisection's 735 rpm step is client-limited. The breaking point stays the last
    # real pass below the real failure, and is written.
    out, js = tmp_path / "calibration.yaml", tmp_path / "steps.json"
    rc = calibrate.main(
        ARGS + ["--slo", "0.5", "--start-rpm", "400", "--growth", "1.5", "--step-seconds", "6", "--refine", "3", "--cooldown", "0", "--out", str(out), "--json", str(js)],
        run=run_virtual, transport=StalledClient(QueueingServer(1, 0.1), 0.1, after=40 + 60 + 90),
    )
    err = capsys.readouterr().err
    result = json.loads(js.read_text())
    phases = [(s["phase"], round(s["offered_rpm"]), s["passed"], s["client_limited"]) for s in result["steps"]]
    assert rc == 0, (err, phases)
    assert phases[:3] == [("ramp", 400, True, False), ("ramp", 600, True, False), ("ramp", 900, False, False)], phases
    assert phases[3][:2] == ("refine", 735) and phases[3][3] and len(phases) == 4, phases
    assert yaml.safe_load(out.read_text())["units"]["calib-cpu"]["maxRpm"] == 600.0
    assert round(result["clientLimited"]["offered_rpm"]) == 735 and result["lowerBound"] is None
    assert "client-limited: meant to offer 734.8 rpm" in err


def test_calibrates_a_real_server(tmp_path: Path) -> None:
    """The wiring against the real server, over real HTTP: the unit and route come from its /info,
    requests reach its inference route, the file is written. One request a second, and a step that
    passes on any machine (30 s SLO, no throughput floor): what is checked here is not timing."""
    from .test_server_process import start

    proc, url = start({"HWAI_TASK": "sleep", "HWAI_SERVICE": "calib", "HWAI_UNIT": "calib-real", "HWAI_SLEEP_MS": "1", "HWAI_DRAIN_SECONDS": "0"})
    out = tmp_path / "calibration.yaml"
    try:
        rc = calibrate.main([
            "--url", url, "--body", '{"payload": "x"}', "--slo", "30", "--start-rpm", "60", "--max-rpm", "60", "--step-seconds", "2",
            "--min-achieved", "0", "--client-tolerance", "0.99", "--cooldown", "0", "--min-requests", "0", "--out", str(out),
        ])
    finally:
        proc.terminate()
        proc.wait(20)
    assert rc == 0
    assert yaml.safe_load(out.read_text())["units"]["calib-real"]["maxRpm"] == 60.0
    emf = [json.loads(l) for l in (proc.logs / "stdout").read_text().splitlines() if l.strip()]  # type: ignore[attr-defined]
    assert len(emf) == 2 and all(l["route"] == "/v1/sleep" and l["SuccessCount"] == 1 for l in emf)


def test_client_limited_step_is_neither_pass_nor_failure() -> None:
    s = calibrate.Step(offered_rpm=600, start_s=0, duration_s=10, sent=100, ok=100, achieved_rpm=600, p99=0.1, pct=0.1, sent_rpm=600)
    assert not calibrate.client_limited(s, 0.1)
    s.sent_rpm = 541  # within 10 % of the intended rate
    assert not calibrate.client_limited(s, 0.1)
    s.sent_rpm = 539
    assert calibrate.client_limited(s, 0.1)
    s.client_limited = True
    assert not calibrate.judge(s, 0.9, 99, 0.01, 0.9)  # never a pass, whatever its latency


def test_server_timing_header_is_read_by_name_and_junk_ignored() -> None:
    assert calibrate.parse_server_timing("app;dur=812.3, queue;dur=12, total;desc=x;dur=790.5") == {"app": 812.3, "queue": 12.0, "total": 790.5}
    assert calibrate.parse_server_timing("cache;desc=hit, bad;dur=fast, ;dur=3") == {}
    assert calibrate.parse_server_timing(None) == {}


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
