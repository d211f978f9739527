"""Load tester and calibrator: find a unit's breaking point and write it into a calibration file.

    python -m hwai_models.calibrate --url http://127.0.0.1:8080 --unit sd21-g5-triton \\
        --body '{"prompt": "a photo of an astronaut riding a horse"}' --slo 0.9 \\
        --start-rpm 30 --growth 1.2 --step-seconds 60 --out calibration.yaml --plot breaking-point.png

Open loop: requests are sent on a schedule (Poisson or evenly spaced arrivals at the step's rate)
whatever the server's answers, as real users do, so a saturated server shows up as growing latency
rather than as a slower client. The rate ramps up step by step (multiplicative ``--growth`` or
additive ``--step-rpm``) until a step fails, then bisects between the last passing and the first
failing rate ``--refine`` times. A step passes when its p99 (``--percentile``) latency is within the
SLO, its error rate is at most ``--max-error-rate`` and its achieved throughput (answers per minute
from the step's start to its last answer) is at least ``--min-achieved`` of the offered rate. The
breaking point is the highest passing step: ``maxRpm`` is its rate (which the server sustained) and
``latencySeconds`` its p99.

A step is only evidence about the server if the client kept to its schedule. The tester records
when each request actually left (not when it was due); when the client falls behind (a busy
machine, a slow event loop) its requests leave later and later, and the rate it really offered,
``offered * duration / (duration + lateness of the latest send)``, drops below the intended one.
A p99 over a few dozen requests is the slowest one or two of them: every step lasts at least
``--step-seconds`` and long enough for ``--min-requests`` arrivals (300 by default), and
``--repeat K`` runs the breaking point's rate K more times with independent arrival schedules
(other seeds), so the figure comes with its spread; ``confirmed`` says whether every repeat passed.

A step whose offered rate falls short by more than ``--client-tolerance`` is *client-limited*:
neither a pass nor a failure. The ramp stops there, no breaking point is claimed from it, and the run says the
client could not offer the rate (run the calibrator on a bigger machine or split the load).

Outputs: the calibration YAML (merged into an existing file: other units are kept), a PNG of
throughput and latency per step and of latency against throughput (like the seed's figure 4), and
optionally every step as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import yaml


@dataclass
class Step:
    offered_rpm: float
    start_s: float  # since the run's start
    duration_s: float
    sent: int = 0
    ok: int = 0
    errors: int = 0
    achieved_rpm: float = 0.0
    p50: float = math.inf
    p95: float = math.inf
    p99: float = math.inf
    pct: float = math.inf  # the percentile judged against the SLO
    mean: float = math.inf
    passed: bool = False
    phase: str = "ramp"
    # What the client really offered: the intended rate over the step stretched by the lateness
    # of its latest send (equal to offered_rpm when the client kept its schedule).
    sent_rpm: float = 0.0
    max_send_lag_s: float = 0.0
    client_limited: bool = False
    status_counts: dict[str, int] = field(default_factory=dict)
    seed: int = 0  # of the arrival schedule
    # The server's own counters (/info "stats") over this step alone: the difference of their
    # numeric values from the step's start to its end (batch sizes, GPU seconds, ...).
    server_stats: dict[str, float] = field(default_factory=dict)
    # The step's slowest answered requests: latency, when they were sent (s into the step) and the
    # server's own account of them (its Server-Timing header, ms by name), so a tail can be told
    # apart: waiting for the batch, the steps, encoding, or outside the server.
    slowest: list[dict[str, Any]] = field(default_factory=list)


SLOWEST_KEPT = 5


class Answer(NamedTuple):
    latency: float
    done_at: float  # seconds into the step
    status: int  # 0: no answer (connection error, time-out)
    sent_at: float  # seconds into the step
    server_timing: str | None


def parse_server_timing(header: str | None) -> dict[str, float]:
    """``app;dur=812.3, queue;dur=12.0`` -> {"app": 812.3, "queue": 12.0}; anything else ignored."""
    out: dict[str, float] = {}
    for metric in (header or "").split(","):
        name, *params = (p.strip() for p in metric.split(";"))
        for param in params:
            key, _, value = param.partition("=")
            if name and key.strip() == "dur":
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); inf for an empty list."""
    if not values:
        return math.inf
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


class LoadTester:
    def __init__(self, url: str, route: str, body: Any, timeout: float, arrivals: str, seed: int) -> None:
        self.url = url.rstrip("/")
        self.route = route
        self.body = body
        self.timeout = timeout
        self.arrivals = arrivals
        self.rng = random.Random(seed)
        self.t0: float | None = None  # the event loop's clock at the first step

    async def run_step(self, client: httpx.AsyncClient, rpm: float, duration: float, phase: str = "ramp") -> Step:
        loop = asyncio.get_running_loop()
        if self.t0 is None:
            self.t0 = loop.time()
        step = Step(offered_rpm=rpm, start_s=loop.time() - self.t0, duration_s=duration, phase=phase)
        rate = rpm / 60.0
        # The arrival schedule, relative to the step's start: exactly round(rate * duration)
        # arrivals, evenly spaced ("uniform") or at uniformly random instants (a Poisson process
        # conditioned on its count: Poisson burstiness without the noise of a random count).
        n = max(1, round(rate * duration))
        if self.arrivals == "uniform":
            phase = self.rng.random() / rate
            times = [phase + k / rate for k in range(n) if phase + k / rate < duration]
        else:
            times = sorted(self.rng.uniform(0, duration) for _ in range(n))
        results: list[Answer] = []
        start = loop.time()

        lags: list[float] = []

        async def one(due: float) -> None:
            t_send = loop.time()
            lags.append(max(0.0, t_send - start - due))
            status, timing = 0, None
            try:
                r = await client.post(self.url + self.route, json=self.body, timeout=self.timeout)
                status, timing = r.status_code, r.headers.get("server-timing")
            except httpx.HTTPError:
                status = 0
            done = loop.time()
            results.append(Answer(done - t_send, done - start, status, t_send - start, timing))

        tasks = []
        for at in times:
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(at)))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 5)
        step.sent = len(tasks)
        # Lateness of the sends: a task that never started is as late as the step's end allows.
        step.max_send_lag_s = max(lags + [loop.time() - start - at for at in times[len(lags):]], default=0.0)
        step.sent_rpm = rpm * duration / (duration + step.max_send_lag_s)
        lat_all: list[float] = []
        ok_lat: list[float] = []
        last_done = duration
        for lat, done_at, status, *_ in results:
            key = str(status) if status else "conn-error"
            step.status_counts[key] = step.status_counts.get(key, 0) + 1
            if 200 <= status < 300:
                ok_lat.append(lat)
                lat_all.append(lat)
                last_done = max(last_done, done_at)
            else:
                lat_all.append(math.inf)  # a failed request never meets the SLO
        lat_all += [math.inf] * (step.sent - len(results))  # still outstanding: timed out
        step.ok = len(ok_lat)
        step.errors = step.sent - step.ok
        # Answers per minute over the span from the step's start to its last answer: equal to
        # the offered rate (less a latency's worth) while the server keeps up, its capacity when not.
        step.achieved_rpm = step.ok / last_done * 60.0
        step.p50, step.p95, step.p99 = (percentile(lat_all, q) for q in (50, 95, 99))
        step.mean = sum(ok_lat) / len(ok_lat) if ok_lat else math.inf
        answered = sorted((r for r in results if 200 <= r.status < 300), key=lambda r: -r.latency)[:SLOWEST_KEPT]
        step.slowest = [{"latencyS": round(r.latency, 4), "sentAtS": round(r.sent_at, 3), "serverTiming": parse_server_timing(r.server_timing)} for r in answered]
        return step


def step_seconds(a: argparse.Namespace, rpm: float) -> float:
    """Long enough for ``--min-requests`` arrivals at ``rpm``, and never shorter than ``--step-seconds``."""
    return max(a.step_seconds, a.min_requests * 60.0 / rpm)


def client_limited(step: Step, tolerance: float) -> bool:
    """The client offered less than the step meant to (by more than ``tolerance``, a fraction):
    the step measured the client, not the server."""
    return step.sent_rpm < (1.0 - tolerance) * step.offered_rpm


def judge(step: Step, slo: float, pct: float, max_error_rate: float, min_achieved: float) -> bool:
    return (
        not step.client_limited
        and step.sent > 0
        and step.pct <= slo
        and step.errors <= max_error_rate * step.sent
        and step.achieved_rpm >= min_achieved * step.offered_rpm
    )


async def wait_ready(client: httpx.AsyncClient, url: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = ""
    while loop.time() < deadline:
        try:
            r = await client.get(url.rstrip("/") + "/readiness", timeout=5)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as e:
            last = str(e)
        await asyncio.sleep(0.5)
    raise SystemExit(f"server at {url} not ready after {timeout} s: {last}")


async def calibrate(a: argparse.Namespace, log: Any = print, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    """Ramp and bisect against ``a.url``. Every wait goes through the event loop's clock, so a
    test can run it under a loop whose time is virtual (``transport`` then reaches a server on
    that clock)."""
    limits = httpx.Limits(max_connections=a.max_connections, max_keepalive_connections=a.max_connections)
    async with httpx.AsyncClient(limits=limits, transport=transport) as client:
        await wait_ready(client, a.url, a.wait_ready)
        info: dict[str, Any] = {}
        try:
            info = (await client.get(a.url.rstrip("/") + "/info", timeout=10)).json()
        except (httpx.HTTPError, ValueError):
            pass
        route = a.route or info.get("route") or "/invocations"
        unit = a.unit or info.get("unit")
        if not unit:
            raise SystemExit("no unit: pass --unit (the server's /info did not name one)")
        tester = LoadTester(a.url, route, a.body, a.timeout, a.arrivals, a.seed)
        steps: list[Step] = []

        async def server_stats() -> dict[str, float]:
            try:
                stats = (await client.get(a.url.rstrip("/") + "/info", timeout=10)).json().get("stats") or {}
            except (httpx.HTTPError, ValueError, AttributeError):
                return {}
            return {k: float(v) for k, v in stats.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

        started = asyncio.get_running_loop().time()
        cut_short: str | None = None  # why --max-seconds stopped the run, if it did

        async def run(rpm: float, phase: str, seed: int | None = None) -> Step | None:
            """One step, or None (and nothing more from then on) when it would end past --max-seconds."""
            nonlocal cut_short
            if cut_short is not None:
                return None
            if a.max_seconds > 0 and asyncio.get_running_loop().time() - started + step_seconds(a, rpm) + a.cooldown > a.max_seconds:
                cut_short = f"the {phase} step at {rpm:g} rpm would have ended past --max-seconds {a.max_seconds:g}"
                log(f"stopped: {cut_short}")
                return None
            if seed is not None:
                tester.rng = random.Random(seed)
            before = await server_stats()
            s = await tester.run_step(client, rpm, step_seconds(a, rpm), phase)
            after = await server_stats()
            # counters only: a maximum ("maxBatch") or a gauge ("queued") has no per-step difference
            s.server_stats = {k: round(after[k] - before[k], 6) for k in after if k in before and not k.startswith("max") and k not in ("queued", "running")}
            s.seed = a.seed if seed is None else seed
            s.pct = {50: s.p50, 95: s.p95, 99: s.p99}.get(int(a.percentile), s.p99)
            s.client_limited = client_limited(s, a.client_tolerance)
            s.passed = judge(s, a.slo, a.percentile, a.max_error_rate, a.min_achieved)
            steps.append(s)
            verdict = "CLIENT-LIMITED" if s.client_limited else "PASS" if s.passed else "FAIL"
            log(
                f"[{phase:6}] offered {s.offered_rpm:8.1f} rpm (sent {s.sent_rpm:8.1f})  achieved {s.achieved_rpm:8.1f} rpm  "
                f"p50 {s.p50:7.3f}s p95 {s.p95:7.3f}s p99 {s.p99:7.3f}s  errors {s.errors}/{s.sent}  {verdict}"
            )
            if a.cooldown > 0:
                await asyncio.sleep(a.cooldown)
            return s

        limited: Step | None = None  # the first step the client could not offer

        async def judged(rpm: float, phase: str) -> Step | None:
            """A step that says something about the server, or None when the search stops here:
            the time is up, or the client could not offer the rate (kept as ``limited``)."""
            nonlocal limited
            s = await run(rpm, phase)
            if s is not None and s.client_limited:
                limited = limited or s
                return None
            return s

        rpm = a.start_rpm
        last_pass: Step | None = None
        first_fail: Step | None = None
        while rpm <= a.max_rpm:
            s = await judged(rpm, "ramp")
            if s is None:
                break
            if s.passed:
                last_pass = s
            else:
                first_fail = s
                break
            rpm = rpm * a.growth if a.step_rpm is None else rpm + a.step_rpm
        # The first rate already failed: step down (up to --descend times) to find a rate that
        # passes, so that a run started too high still brackets its breaking point.
        for _ in range(a.descend if last_pass is None and first_fail is not None else 0):
            rpm = rpm / a.growth if a.step_rpm is None else rpm - a.step_rpm
            if rpm <= 0:
                break
            s = await judged(rpm, "descend")
            if s is None:
                break
            if s.passed:
                last_pass = s
                break
            first_fail = s
        if last_pass is not None and first_fail is not None:
            lo, hi = last_pass.offered_rpm, first_fail.offered_rpm
            for _ in range(a.refine):
                mid = math.sqrt(lo * hi)
                if hi - lo < max(1.0, 0.01 * lo):
                    break
                # A client-limited step ends the bisection: the server failed above (first_fail), so
                # the breaking point lies between the last pass and it; the client cannot narrow it.
                s = await judged(mid, "refine")
                if s is None:
                    break
                if s.passed:
                    lo = mid
                else:
                    hi = mid
        passing = [s for s in steps if s.passed]
        repeats: list[Step] = []
        if passing and a.repeat > 0 and not (limited is not None and first_fail is None):
            top = max(passing, key=lambda s: s.offered_rpm)
            for k in range(a.repeat):
                r = await run(top.offered_rpm, "repeat", seed=a.seed + 1000 * (k + 1))
                if r is None:
                    break
                repeats.append(r)
        # A breaking point needs a real server failure above it (or the ceiling --max-rpm the user
        # set): a ramp that ended because the client fell behind says only that the server's
        # breaking point is higher than its last pass.
        # So does a run that --max-seconds stopped before any step failed.
        ramp_limited = (limited is not None or cut_short is not None) and first_fail is None
        best = max((s for s in passing if s.phase != "repeat"), key=lambda s: s.offered_rpm) if passing and not ramp_limited else None
        at_best = ([best] + repeats) if best else []
        result: dict[str, Any] = {
            "unit": unit,
            "url": a.url,
            "route": route,
            "sloSeconds": a.slo,
            "percentile": a.percentile,
            "arrivals": a.arrivals,
            "server": info,
            "steps": [asdict(s) for s in steps],
            "breakingPoint": asdict(best) if best else None,
            "firstFailure": asdict(first_fail) if first_fail else None,
            "reachedMaxRpm": first_fail is None and limited is None and cut_short is None,
            "cutShort": cut_short,
            "clientLimited": asdict(limited) if limited else None,
            "lowerBound": asdict(max(passing, key=lambda s: s.offered_rpm)) if passing and ramp_limited else None,
            "repeats": [asdict(s) for s in repeats],
            # Every measurement of the breaking point's rate (the search's and the repeats'):
            # the figure holds only if all of them passed.
            "confirmed": bool(at_best) and len(repeats) == a.repeat and all(s.passed for s in at_best),
            "spread": {
                "p99Seconds": [min(s.p99 for s in at_best), max(s.p99 for s in at_best)],
                "achievedRpm": [min(s.achieved_rpm for s in at_best), max(s.achieved_rpm for s in at_best)],
                "requests": [min(s.sent for s in at_best), max(s.sent for s in at_best)],
            } if at_best else None,
        }
        return result


def finite(v: Any) -> Any:
    """JSON has no infinity: an unbounded latency (failed requests) becomes null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite(x) for x in v]
    return v


def method_text(a: argparse.Namespace) -> str:
    ramp = f"x{a.growth:g}" if a.step_rpm is None else f"+{a.step_rpm:g} rpm"
    return (
        f"open-loop {a.arrivals} arrivals, ramp {ramp} from {a.start_rpm:g} rpm in steps of at least {a.step_seconds:g} s and {a.min_requests} requests, "
        + (f"down by the same up to {a.descend} times if the first step fails, " if a.descend else "")
        + f"{a.refine} bisections, {a.repeat} repeats of the breaking point with other seeds; latencySeconds is p{a.percentile:g} at the highest step with p{a.percentile:g} <= SLO, "
        f"errors <= {a.max_error_rate:g} and achieved >= {a.min_achieved:g} x offered; maxRpm is that step's offered (and sustained) rate"
    )


def write_calibration(path: Path, unit: str, max_rpm: float, latency: float, slo: float, method: str, when: dt.datetime | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": "hwai/calibration", "units": {}}
    if path.exists():
        old = yaml.safe_load(path.read_text()) or {}
        if old.get("kind") not in (None, "hwai/calibration"):
            raise SystemExit(f"{path}: kind is {old.get('kind')!r}, not hwai/calibration")
        doc["units"] = dict(old.get("units") or {})
    when = when or dt.datetime.now(dt.timezone.utc)
    doc["units"][unit] = {
        "maxRpm": round(float(max_rpm), 1),
        "latencySeconds": round(float(latency), 3),
        "sloSeconds": float(slo),
        "measuredAt": when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": method,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return doc


def plot(result: dict[str, Any], path: Path, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    slo = result["sloSeconds"]
    best = result["breakingPoint"]
    fig = plt.figure(figsize=(13, 7.5))
    gs = fig.add_gridspec(2, 2, width_ratios=[2.2, 1])
    ax1 = fig.add_subplot(gs[0, 0])
    ax2 = fig.add_subplot(gs[1, 0], sharex=ax1)
    ax3 = fig.add_subplot(gs[:, 1])
    mid = [s["start_s"] / 60 + s["duration_s"] / 120 for s in steps]

    def fin(v: float) -> float:
        return v if math.isfinite(v) else float("nan")

    for s in steps:
        x0, x1 = s["start_s"] / 60, (s["start_s"] + s["duration_s"]) / 60
        ax1.hlines(s["offered_rpm"], x0, x1, colors="lightgray", lw=3)
        ax1.hlines(s["achieved_rpm"], x0, x1, colors="tab:orange", lw=2)
    ax1.plot(mid, [s["achieved_rpm"] for s in steps], "o", color="tab:orange", ms=3, label="achieved (2xx/min)")
    ax1.plot([], [], color="lightgray", lw=3, label="offered")
    limited = [(m, s) for m, s in zip(mid, steps) if s.get("client_limited")]
    if limited:  # not evidence about the server: the client sent less than it meant to
        ax1.plot([m for m, _ in limited], [s["sent_rpm"] for _, s in limited], "x", color="tab:red", ms=8, label="client-limited (sent)")
    ax1.set_ylabel("requests per minute")
    ax1.legend(loc="upper left")
    for q, c in (("p50", "tab:green"), ("p95", "tab:blue"), ("p99", "tab:red")):
        ax2.plot(mid, [fin(s[q]) for s in steps], "o-", color=c, ms=3, label=q)
    ax2.axhline(slo, color="k", ls=":", lw=1, label=f"SLO {slo:g} s")
    ax2.set_ylabel("latency (s)")
    ax2.set_xlabel("minutes since start")
    ax2.legend(loc="upper left")
    finite = [fin(s["p99"]) for s in steps if math.isfinite(s["p99"])]
    if finite:
        ax2.set_ylim(0, min(max(finite) * 1.1, slo * 3))
    order = sorted(steps, key=lambda s: s["offered_rpm"])
    ax3.plot([s["achieved_rpm"] for s in order], [fin(s["p99"]) for s in order], "o-", color="tab:red", ms=3, label="p99")
    ax3.plot([s["achieved_rpm"] for s in order], [fin(s["p50"]) for s in order], "o-", color="tab:green", ms=3, label="p50")
    ax3.axhline(slo, color="k", ls=":", lw=1)
    if finite:
        ax3.set_ylim(0, min(max(finite) * 1.1, slo * 3))
    ax3.set_xlabel("achieved requests per minute")
    ax3.set_ylabel("latency (s)")
    ax3.set_title("latency against throughput")
    ax3.legend(loc="upper left")
    if best:
        x = (best["start_s"] + best["duration_s"]) / 60
        for ax in (ax1, ax2):
            ax.axvline(x, color="k", ls="--", lw=1)
        ax1.annotate(f"{best['offered_rpm']:.0f} rpm", (x, best["achieved_rpm"]), textcoords="offset points", xytext=(-30, 8), fontweight="bold")
        ax3.axvline(best["achieved_rpm"], color="k", ls="--", lw=1)
        ax3.annotate(f"breaking point\n{best['offered_rpm']:.0f} rpm, p99 {best['p99']:.2f} s", (best["achieved_rpm"], best["p99"]), textcoords="offset points", xytext=(-120, 20))
    fig.suptitle(title or f"{result['unit']}: breaking point at SLO {slo:g} s (p{result['percentile']:g})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hwai_models.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("--route", help="inference route (default: the server's, from /info)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--body", help="request JSON")
    g.add_argument("--body-file", type=Path, help="file holding the request JSON")
    p.add_argument("--unit", help="deployment unit name (default: the server's, from /info)")
    p.add_argument("--slo", type=float, default=0.9, help="latency SLO in seconds (default 0.9)")
    p.add_argument("--percentile", type=float, default=99, choices=[50, 95, 99], help="percentile judged against the SLO")
    p.add_argument("--start-rpm", type=float, default=10.0)
    p.add_argument("--growth", type=float, default=1.2, help="multiplicative ramp factor per step")
    p.add_argument("--step-rpm", type=float, default=None, help="additive ramp instead of --growth")
    p.add_argument("--descend", type=int, default=0, help="when the first rate fails, step down (by the ramp's factor or step) up to this many times")
    p.add_argument("--max-rpm", type=float, default=1e6)
    p.add_argument("--step-seconds", type=float, default=60.0, help="shortest step")
    p.add_argument("--min-requests", type=int, default=300, help="arrivals per step at least: the step lasts as long as that takes (default 300)")
    p.add_argument("--repeat", type=int, default=0, help="measure the breaking point's rate this many more times, each with its own arrival seed")
    p.add_argument("--refine", type=int, default=3, help="bisections between the last pass and the first failure")
    p.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    p.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    p.add_argument("--max-error-rate", type=float, default=0.01)
    p.add_argument("--min-achieved", type=float, default=0.9, help="achieved/offered below this fails a step")
    p.add_argument(
        "--client-tolerance", type=float, default=0.1,
        help="a step whose really sent rate is below (1 - this) x its intended rate is client-limited: not judged (default 0.1)",
    )
    p.add_argument("--cooldown", type=float, default=1.0, help="idle seconds between steps")
    p.add_argument(
        "--max-seconds", type=float, default=0.0,
        help="start no step that would end past this many seconds from the first one; what ran is reported (0: no limit)",
    )
    p.add_argument("--max-connections", type=int, default=1000)
    p.add_argument("--wait-ready", type=float, default=900.0, help="seconds to wait for /readiness")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path, help="calibration YAML to write (merged into an existing one)")
    p.add_argument("--plot", type=Path, help="PNG of throughput and latency per step")
    p.add_argument("--json", type=Path, help="every step as JSON")
    return p


def main(argv: list[str] | None = None, run: Any = asyncio.run, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """The command. ``run`` runs the coroutine (a test passes a virtual-time loop's) and
    ``transport`` reaches the server (a test's server on that loop's clock)."""
    a = parser().parse_args(argv)
    if a.growth <= 1.0 and a.step_rpm is None:
        raise SystemExit("--growth must be > 1")
    raw = a.body_file.read_text() if a.body_file else (a.body or "{}")
    try:
        a.body = json.loads(raw)
    except ValueError as e:
        raise SystemExit(f"request body is not JSON: {e}")
    result = run(calibrate(a, log=lambda m: print(m, file=sys.stderr, flush=True), transport=transport))
    result["method"] = method_text(a)
    best = result["breakingPoint"]
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(finite(result), indent=2))
    if a.plot:
        plot(result, a.plot)
    limited = result["clientLimited"]
    if limited:
        print(
            f"client-limited: meant to offer {limited['offered_rpm']:.1f} rpm but sent {limited['sent_rpm']:.1f} rpm "
            f"(last send {limited['max_send_lag_s']:.3f} s late); that step is not evidence about the server",
            file=sys.stderr,
        )
    if result["cutShort"]:
        print(f"note: {result['cutShort']}: the run is incomplete", file=sys.stderr)
    if best is None:
        if result["cutShort"] and not limited:
            if result["lowerBound"]:
                print(f"{result['unit']}: no breaking point: the server passed {result['lowerBound']['offered_rpm']:.1f} rpm before the time ran out. Nothing written.", file=sys.stderr)
            else:
                print(f"{result['unit']}: no step passed before the time ran out. Nothing written.", file=sys.stderr)
            return 5
        if limited and result["lowerBound"]:
            print(
                f"{result['unit']}: no breaking point: the server passed {result['lowerBound']['offered_rpm']:.1f} rpm and the client "
                f"could offer no more; calibrate from a faster client (or several) to find it. Nothing written.",
                file=sys.stderr,
            )
            return 4
        if limited:
            print(f"{result['unit']}: the client could not offer even the first step ({a.start_rpm:g} rpm). Nothing written.", file=sys.stderr)
            return 4
        print(f"{result['unit']}: no step met the SLO (lowest rate {a.start_rpm:g} rpm)", file=sys.stderr)
        return 3
    if not result["confirmed"] and len(result["repeats"]) < a.repeat:
        print(f"note: {len(result['repeats'])} of the {a.repeat} repeats at {best['offered_rpm']:.1f} rpm ran: the breaking point is not confirmed", file=sys.stderr)
    elif not result["confirmed"]:
        bad = [s for s in result["repeats"] if not s["passed"]]
        print(f"note: {len(bad)} of {len(result['repeats'])} repeats at {best['offered_rpm']:.1f} rpm failed (p99 {result['spread']['p99Seconds']}): the breaking point is not confirmed", file=sys.stderr)
    if result["reachedMaxRpm"]:
        print(f"note: --max-rpm {a.max_rpm:g} reached without a failing step; the breaking point is higher", file=sys.stderr)
    if a.out:
        write_calibration(a.out, result["unit"], best["offered_rpm"], best["pct"], a.slo, result["method"])
    print(json.dumps({"unit": result["unit"], "maxRpm": round(best["offered_rpm"], 1), "achievedRpm": round(best["achieved_rpm"], 1), "latencySeconds": round(best["pct"], 3), "sloSeconds": a.slo}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
