"""The batch bound: who may join the running diffusion batch, from measured step times."""

from __future__ import annotations

import pytest

from hwai_models.batch_bound import InFlight, StepTimes, joinable

TARGET, TAIL = 0.9, 0.05


def h200_steps() -> StepTimes:
    """The H200's compiled UNet step, about 8 ms + 4.3 ms per image, measured at two sizes."""
    st = StepTimes()
    st.observe(1, 0.0123)
    st.observe(4, 0.0252)
    return st


def fresh(k: int, steps: int = 25) -> list[InFlight]:
    return [InFlight(0.0, steps) for _ in range(k)]


def test_a_burst_joins_only_as_far_as_every_job_stays_on_time() -> None:
    # 25 steps at n images: 25 * (8 + 4.3 n) ms + 50 ms <= 900 ms holds up to n = 6, not 7.
    assert joinable([], fresh(8), h200_steps(), TARGET, TAIL, max_batch=8) == 6
    # without the bound the free slots alone decide
    assert joinable([], fresh(8), h200_steps(), 0.0, TAIL, max_batch=8) == 8


def test_a_job_near_its_end_leaves_room_a_fresh_one_would_not() -> None:
    st = h200_steps()
    nearly_done = [InFlight(0.5, 2) for _ in range(6)]  # 2 steps left: slower steps cost it little
    assert joinable(nearly_done, fresh(2), st, TARGET, TAIL, max_batch=8) == 2
    just_started = fresh(6)
    assert joinable(just_started, fresh(2), st, TARGET, TAIL, max_batch=8) == 0


def test_a_job_late_already_does_not_block_and_the_idle_engine_always_takes_one() -> None:
    st = h200_steps()
    late = [InFlight(2.0, 10)]  # late whatever happens
    assert joinable(late, fresh(3), st, TARGET, TAIL, max_batch=8) == 3
    # the only waiting job cannot make the target even alone: it still starts at once
    assert joinable([], [InFlight(5.0, 25)], st, TARGET, TAIL, max_batch=8) == 1


def test_no_bound_until_two_sizes_are_measured() -> None:
    st = StepTimes()
    assert joinable([], fresh(8), st, TARGET, TAIL, max_batch=8) == 8
    st.observe(2, 0.5)  # one size, however slow: no line through it yet
    assert joinable([], fresh(8), st, TARGET, TAIL, max_batch=8) == 8


def test_step_times_are_smoothed_and_unmeasured_sizes_lie_on_the_line() -> None:
    st = StepTimes(smoothing=0.5)
    st.observe(2, 0.010)
    st.observe(2, 0.020)
    assert st.estimate(2) == pytest.approx(0.015)
    st.observe(4, 0.025)
    assert st.estimate(3) == pytest.approx(0.020)
    assert st.estimate(8) == pytest.approx(0.045)
    assert st.estimate(1) == pytest.approx(0.015)  # never below the fastest measured step
