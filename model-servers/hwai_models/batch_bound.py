"""The batch bound: a job joins the running diffusion batch only if that pushes no job that would
finish in time past the latency target.

Every sample in the running batch takes one step per step of the batch, and a step costs more the
larger the batch (on the H200 about 8 ms + 4.3 ms per image). So a burst that lets eight jobs
into the batch at once makes all eight late, where six on time and two a little later would give
a lower p99. Before a queued job joins, the engine projects each job's finish time with the batch
it would make: ``elapsed + steps_left * step_seconds(n) + tail_s``. The job may join unless a job
that is on time at the current size would be late at the new one. A job that is late already
does not block (it is late whatever happens), and neither does the joining job's own projection
(waiting would only make it later). An idle engine always takes the first job.

Step times are measured per batch size by the engine (GPU time from CUDA events, wall time on a
CPU) as moving averages; a size not yet seen is estimated from the line through the sizes that
were, and with fewer than two sizes measured there is no estimate and nothing is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass


class StepTimes:
    """Moving averages of the step time per batch size. Engine thread only."""

    def __init__(self, smoothing: float = 0.1) -> None:
        self.smoothing = smoothing
        self.by_size: dict[int, float] = {}

    def observe(self, n: int, seconds: float) -> None:
        old = self.by_size.get(n)
        self.by_size[n] = seconds if old is None else old + self.smoothing * (seconds - old)

    def estimate(self, n: int) -> float | None:
        """Seconds for a step of ``n`` samples; None until two sizes have been measured."""
        if n in self.by_size:
            return self.by_size[n]
        if len(self.by_size) < 2:
            return None
        xs, ys = list(self.by_size), list(self.by_size.values())
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        return max(min(ys), my + max(0.0, slope) * (n - mx))


@dataclass(frozen=True)
class InFlight:
    """A job as the bound sees it: seconds since it was submitted and denoising steps left."""

    elapsed_s: float
    steps_left: int


def joinable(running: list[InFlight], waiting: list[InFlight], step_s: StepTimes, target_s: float, tail_s: float, max_batch: int) -> int:
    """How many of ``waiting`` (in order) may join ``running`` now, at most ``max_batch`` in all."""
    room = max(0, max_batch - len(running))
    if not waiting or room == 0:
        return 0
    if target_s <= 0:
        return min(room, len(waiting))
    taken = 0
    batch = list(running)
    if not batch:  # an idle GPU never waits
        batch.append(waiting[0])
        taken = 1
    while taken < min(room, len(waiting)):
        now_s, then_s = step_s.estimate(len(batch)), step_s.estimate(len(batch) + 1)
        if now_s is not None and then_s is not None:  # else nothing measured yet: no bound
            if any(_finish(j, now_s, tail_s) <= target_s < _finish(j, then_s, tail_s) for j in batch):
                break
        batch.append(waiting[taken])
        taken += 1
    return taken


def _finish(j: InFlight, step_s: float, tail_s: float) -> float:
    """Seconds from the job's submission to its answer, with steps of ``step_s`` from now on."""
    return j.elapsed_s + j.steps_left * step_s + tail_s
