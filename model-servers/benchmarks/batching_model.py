"""A model, not a measurement: the p99 latency that continuous batching would give at each arrival
rate, for a given step-cost curve step(N) (ms for a step of N images), so that a UNet speed-up
measured on the GPU can be turned into the rate it would hold at the SLO before spending device
time on a server run. Poisson arrivals, every job 25 steps, a job joins the running batch at the
next step it can (up to --max-batch; one arriving while a batch runs joins --lookahead steps later,
as the engine queues two steps ahead of the GPU), the decoder's --decode-ms per finished image on
the steps' stream, plus a fixed per-request overhead outside both (text encoding, copy, PNG, HTTP:
0.092 s, so that a lone request takes the H200 server's unloaded latency).

Checked against the H200 server (README, fourth session): with the static-graph server's curve it
gives p50 0.389 s and p95 0.643 s at 240/min, where the server measured 0.375-0.398 s and
0.588-0.783 s; with the dynamic-shape server's step (6.4 + 3.5 ms per image) a long-run p99 of
0.97 s at 250/min, where that server measured 0.992 s.

    python benchmarks/batching_model.py                      # the curves in the README
    python benchmarks/batching_model.py --scale 0.8          # the measured static curve x 0.8
    python benchmarks/batching_model.py --bound 0.85         # each curve also with HWAI_LATENCY_TARGET_S
    python benchmarks/batching_model.py --window 300         # one calibration step's p99 and its spread
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from hwai_models.batch_bound import InFlight, StepTimes, joinable  # noqa: E402
from hwai_models.calibrate import percentile  # noqa: E402


def latencies(
    rate_per_min: float, step_ms: Callable[[int], float], overhead_s: float, steps: int = 25, max_batch: int = 8, jobs: int = 60000, seed: int = 1, bound_s: float = 0.0,
    pause_every_s: float = 0.0, pause_s: float = 0.0, decode_ms: float = 0.0, lookahead: int = 0,
) -> list[float]:
    """The latencies of ``jobs`` Poisson arrivals in the order they finish, the first 1,000 (the
    empty start) left out. ``bound_s`` > 0 admits as the engine does with HWAI_LATENCY_TARGET_S
    (``batch_bound.joinable``, with the step times known exactly). ``pause_every_s`` > 0 stalls the
    loop for ``pause_s`` that often (a full garbage collection holding the GIL), requests arriving
    meanwhile. ``decode_ms`` per finished image runs on the GPU before the next step (the engine's
    decoder shares the stream); ``lookahead`` steps: the engine decides a step's batch while the
    GPU still runs that many earlier ones, so a job that arrives while a batch runs joins that
    many steps later than it could."""
    rng = random.Random(seed)
    lam = rate_per_min / 60
    t, arrivals = 0.0, []
    for _ in range(jobs):
        t += rng.expovariate(lam)
        arrivals.append(t)
    times = StepTimes()
    for n in range(1, max_batch + 1):
        times.observe(n, step_ms(n) / 1000)
    now, i, active, waiting, lat = 0.0, 0, [], [], []
    next_pause = pause_every_s if pause_every_s > 0 else float("inf")
    last_step = 0.0
    while len(lat) < jobs:
        while next_pause <= now:  # the pauses come at fixed times, busy or idle
            now = max(now, next_pause + pause_s)
            next_pause += pause_every_s
        late = lookahead * last_step if active else 0.0  # an idle engine takes a job at once
        while i < jobs and arrivals[i] + late <= now:
            waiting.append(arrivals[i])
            i += 1
        take = joinable([InFlight(now - j[0], j[1]) for j in active], [InFlight(now - w, steps) for w in waiting], times, bound_s, 0.05, max_batch)
        active += [[w, steps] for w in waiting[:take]]
        del waiting[:take]
        if not active:
            now = arrivals[i]
            continue
        last_step = step_ms(len(active)) / 1000
        now += last_step
        for j in active:
            j[1] -= 1
        done = [j for j in active if j[1] == 0]
        now += len(done) * decode_ms / 1000
        lat += [now - j[0] + overhead_s for j in done]
        active = [j for j in active if j[1] > 0]
    return lat[1000:]


def long_run_p99(lat: list[float]) -> float:
    return sorted(lat)[int(0.99 * len(lat))]


def p99_latency(rate_per_min: float, step_ms: Callable[[int], float], overhead_s: float, **kw: float) -> float:
    """The long-run p99 latency (:func:`latencies`, the same arguments)."""
    return long_run_p99(latencies(rate_per_min, step_ms, overhead_s, **kw))  # type: ignore[arg-type]


def window_p99s(lat: list[float], window: int = 300) -> list[float]:
    """The p99 of each run of ``window`` consecutive requests, judged as the calibrator judges one
    step (its nearest-rank percentile: the 4th slowest of 300): how far one measurement's p99
    strays from the long-run one."""
    return [percentile(lat[i : i + window], 99) for i in range(0, len(lat) - window + 1, window)]


def measured_static(sizes: dict[str, dict[str, float]]) -> Callable[[int], float]:
    """Piecewise-linear through the static-shape graph replays of h200_scaling.py (batch 1 runs as 2)."""
    pts = sorted((int(k), v["ms"]) for k, v in sizes.items() if "ms" in v)
    pts = [(1, pts[0][1])] + pts if pts[0][0] > 1 else pts
    slope = (pts[-1][1] - pts[-2][1]) / (pts[-1][0] - pts[-2][0])

    def f(n: int) -> float:
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if n <= x1:
                return y0 + (y1 - y0) * (n - x0) / (x1 - x0)
        return pts[-1][1] + slope * (n - pts[-1][0])

    return f


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--scaling", default=str(HERE / "h200" / "scaling-512" / "scaling.json"), help="h200_scaling.py's output (512x512)")
    p.add_argument("--two-images-ms", type=float, default=10.01, help="the static step at 2 images (levers-2img-graphs.json), when the scaling run lacks it")
    p.add_argument("--rates", default="250,300,350,400,450,500")
    p.add_argument("--overhead", type=float, default=0.092, help="seconds per request outside the steps and the decoder (text encoding, copy, PNG, HTTP)")
    p.add_argument("--decode-ms", type=float, default=8.0, help="the compiled decoder's GPU time per image, on the steps' stream (H200, first session)")
    p.add_argument("--lookahead", type=int, default=2, help="steps the engine queues ahead of the GPU (diffusion_engine: two)")
    p.add_argument("--scale", type=float, action="append", help="also the static curve times this (a faster UNet); repeatable")
    p.add_argument("--seeds", type=int, default=3, help="the worst p99 over this many arrival seeds")
    p.add_argument("--bound", type=float, action="append", help="also each curve with the batch bound at this latency target (s); repeatable")
    p.add_argument("--max-batch", type=int, default=8, help="HWAI_MAX_BATCH_SIZE (8 in every H200 server run)")
    p.add_argument("--window", type=int, default=0, help="instead: how the p99 of one calibration step of this many requests spreads, and the chance that 3 of 3 pass")
    p.add_argument("--slo", type=float, default=0.9)
    p.add_argument("--pause-every", type=float, default=0.0, help="with --window: the loop stalls every this many seconds ...")
    p.add_argument("--pause", type=float, default=0.0, help="... for this long (a full garbage collection: benchmarks/gc_pause.py)")
    a = p.parse_args()

    sizes = json.loads(Path(a.scaling).read_text())["sizes"]
    sizes.setdefault("2", {"ms": a.two_images_ms})
    static = measured_static(sizes)
    curves: dict[str, Callable[[int], float]] = {
        "server as measured (dynamic shapes: 6.4 + 3.5 ms/image)": lambda n: 6.4 + 3.5 * n,
        "static shapes, one graph per size (measured curve)": static,
    }
    for s in a.scale or [0.85, 0.8, 0.7]:
        curves[f"static curve x {s}"] = lambda n, s=s: static(n) * s
    rates = [float(r) for r in a.rates.split(",")]
    if a.window:
        print_windows(curves, rates, a)
        return
    print("| step cost | " + " | ".join(f"{r:g}/min" for r in rates) + " |")
    print("| --- |" + " ---: |" * len(rates))
    for name, f in curves.items():
        for bound in [0.0] + (a.bound or []):
            cells = [max(p99_latency(r, f, a.overhead, max_batch=a.max_batch, seed=s, bound_s=bound, decode_ms=a.decode_ms, lookahead=a.lookahead) for s in range(1, a.seeds + 1)) for r in rates]
            label = f"{name}, batch bound {bound} s" if bound else name
            print(f"| {label} | " + " | ".join(f"{c:.2f} s" for c in cells) + " |")


def print_windows(curves: dict[str, Callable[[int], float]], rates: list[float], a: argparse.Namespace) -> None:
    """Per curve and rate: the long-run p99, the median and 90th percentile of the p99 one step of
    ``a.window`` requests measures, and the chance that one step, and three in a row, pass."""
    print(f"| step cost | images/min | long-run p99 | one step's p99 ({a.window} requests): median, p90 | a step passes | 3 of 3 pass |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for name, f in curves.items():
        for r in rates:
            lat = [x for s in range(1, a.seeds + 1) for x in latencies(r, f, a.overhead, max_batch=a.max_batch, seed=s, pause_every_s=a.pause_every, pause_s=a.pause, decode_ms=a.decode_ms, lookahead=a.lookahead)]
            w = sorted(window_p99s(lat, a.window))
            ok = sum(x <= a.slo for x in w) / len(w)
            print(f"| {name} | {r:g} | {long_run_p99(lat):.2f} s | {w[len(w) // 2]:.2f} s, {w[int(0.9 * len(w))]:.2f} s | {ok:.0%} | {ok ** 3:.0%} |")


if __name__ == "__main__":
    main()
