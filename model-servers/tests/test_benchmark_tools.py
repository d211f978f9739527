"""The H200 benchmark's pure parts: the step-cost fit and kernel kinds of h200_scaling.py, the
batching model that turns a step-cost curve into a p99 (benchmarks/batching_model.py), and the
FP8 probe's projection of the step (benchmarks/h200_fp8_ops.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import batching_model  # noqa: E402
import h200_fp8_ops  # noqa: E402
import h200_scaling  # noqa: E402


def test_fit_recovers_a_fixed_and_a_per_image_cost() -> None:
    assert h200_scaling.fit([(4, 3.0 + 4 * 3.5), (8, 3.0 + 8 * 3.5), (12, 3.0 + 12 * 3.5)]) == {"fixedMs": 3.0, "perImageMs": 3.5}
    assert h200_scaling.fit([(8, 31.0)]) is None  # one size says nothing about the slope


@pytest.mark.parametrize(
    ("kernel", "kind"),
    [
        ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7", "attention"),
        ("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize256x128x64", "convolution"),
        ("nvjet_sm90_hsh_256x128_64x4_1x2_h_bz_coopA_bias_TNT", "matmul"),
        ("triton_poi_fused_convolution_native_group_norm_silu_120", "inductor fused (norm, elementwise)"),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>", "other"),
    ],
)
def test_kernels_are_sorted_into_the_kinds_the_readme_reports(kernel: str, kind: str) -> None:
    # a Triton kernel named after the convolution whose bias it fused is Inductor's, not a convolution
    assert h200_scaling.kind_of(kernel) == kind


def test_a_lone_request_takes_its_steps_plus_the_overhead() -> None:
    # a request every ten minutes, on average, all but never meets another: 25 steps of the batch-1
    # cost, plus what follows them
    p99 = batching_model.p99_latency(0.1, lambda n: 10.0 * n, overhead_s=0.1, jobs=1500)
    assert p99 == pytest.approx(25 * 0.010 + 0.1)


def test_a_faster_step_holds_a_lower_p99_and_bursts_cost_more_than_the_mean() -> None:
    slow = batching_model.p99_latency(400, lambda n: 3.7 + 3.5 * n, overhead_s=0.1, jobs=6000)
    fast = batching_model.p99_latency(400, lambda n: 0.8 * (3.7 + 3.5 * n), overhead_s=0.1, jobs=6000)
    assert fast < slow
    assert slow > 25 * (3.7 + 3.5) / 1000 + 0.1  # the p99 sees batches larger than one


def test_the_measured_curve_is_interpolated_and_extended_past_its_last_size() -> None:
    f = batching_model.measured_static({"2": {"ms": 10.0}, "4": {"ms": 18.0}, "8": {"ms": 30.0}, "12": {"skipped": "budget"}})
    assert f(1) == 10.0  # batch 1 runs as 2
    assert f(3) == pytest.approx(14.0)
    assert f(10) == pytest.approx(36.0)  # the last slope, 3 ms per image


def test_one_step_of_300_requests_is_judged_as_the_calibrator_judges_it_and_strays_from_the_long_run_p99() -> None:
    assert batching_model.window_p99s([float(i) for i in range(600)], 300) == [296.0, 596.0]  # the 4th slowest of each 300
    lat = batching_model.latencies(300, lambda n: 3.7 + 3.5 * n, overhead_s=0.1, jobs=12000)
    long_run = sorted(lat)[int(0.99 * len(lat))]
    steps = batching_model.window_p99s(lat, 300)
    assert len(steps) == len(lat) // 300
    # the same server and rate measure p99s on both sides of the long-run figure: a single
    # calibration step cannot tell 0.1 s apart, which is why the breaking point is repeated
    assert min(steps) < long_run < max(steps)
    assert max(steps) - min(steps) > 0.1


def test_a_stalled_loop_delays_the_requests_in_flight_by_the_stall() -> None:
    # one request a minute on a 10 ms step, a 0.5 s stall every 2 s: some request waits one out
    calm = batching_model.latencies(1, lambda n: 10.0, overhead_s=0.0, jobs=1300, seed=3)
    stalled = batching_model.latencies(1, lambda n: 10.0, overhead_s=0.0, jobs=1300, seed=3, pause_every_s=2.0, pause_s=0.5)
    assert max(calm) == pytest.approx(0.25)
    assert max(stalled) > 0.25 + 0.5 - 0.010  # the pause begins at most one step before the loop sees it


def test_the_decoder_and_the_engine_s_lookahead_cost_what_the_engine_pays() -> None:
    # alone: the steps, its own decode, the overhead; the lookahead costs nothing to an idle engine
    alone = batching_model.latencies(0.1, lambda n: 10.0, overhead_s=0.05, jobs=1100, decode_ms=8.0, lookahead=2)
    assert max(alone) == pytest.approx(25 * 0.010 + 0.008 + 0.05)
    # under load a job that arrives while a batch runs joins two steps later, and decodes delay steps
    plain = sorted(batching_model.latencies(300, lambda n: 3.7 + 3.5 * n, overhead_s=0.1, jobs=6000))
    engine = sorted(batching_model.latencies(300, lambda n: 3.7 + 3.5 * n, overhead_s=0.1, jobs=6000, decode_ms=8.0, lookahead=2))
    assert engine[len(engine) // 2] > plain[len(plain) // 2] + 0.01


def test_the_fp8_projection_keeps_each_op_at_its_faster_precision_and_counts_only_the_casts_it_needs() -> None:
    rows = [
        # a convolution FP8 made faster (its cast counts), one it made slower (stays fp16, no cast)
        {"kind": "conv", "count": 2, "fp16Ms": 1.0, "fp8Ms": 0.5, "castMs": 0.1},
        {"kind": "conv", "count": 1, "fp16Ms": 0.2, "fp8Ms": 0.6, "castMs": 0.1},
        {"kind": "linear", "count": 10, "fp16Ms": 0.1, "fp8Ms": 0.05, "castMs": 0.02},
        # an op cuDNN refused has no FP8 time: it is left as it was, not counted as free
        {"kind": "attention", "count": 5, "fp16Ms": 0.8, "error": "cudnnGraphNotSupportedError"},
    ]
    p = h200_fp8_ops.project(rows, step_ms=10.0)
    assert p["byKind"]["conv"] == {"fp16Ms": 2.2, "bestMs": 1.2, "castMs": 0.2, "ops": 3, "opsInFp8": 2}
    assert p["byKind"]["linear"]["bestMs"] == 0.5 and "attention" not in p["byKind"]
    # 10 ms less 1.0 (convolutions) and 0.5 (linears); the casts, unfused, give 0.4 back
    assert (p["projectedStepMs"], p["projectedFraction"]) == (8.5, 0.85)
    assert (p["projectedStepWithCastsMs"], p["projectedFractionWithCasts"]) == (8.9, 0.89)
    assert "projectedStepMs" not in h200_fp8_ops.project(rows, step_ms=0.0)  # no step measured: kinds only
