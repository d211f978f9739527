"""Admission: refuse at once a request that could not start in time, instead of queueing it into a
time-out.

A server that queues without bound turns overload into requests that wait until their time-out
(seconds to minutes) and then fail anyway, holding the client, the ALB connection and the memory
all along. Here the queue's bound follows from the latency budget: a new request that would wait
longer than ``max_wait_s`` before it starts is refused with ``Overloaded`` (HTTP 503 and a
``Retry-After``), so the ALB or the client can try another target while there is still time.

The wait is estimated from what the server measures: ``slots`` jobs are served at once (batch
slots times batches in flight) and each holds its slot for about ``service_s`` (a moving average
of the jobs that finished). With every slot busy and ``queued`` jobs ahead, the next slot frees up
at a rate of ``slots / service_s``, so a new job waits about ``(queued + 1) * service_s / slots``.
Until a job has finished there is no estimate and only the hard cap ``max_queue`` applies.
"""

from __future__ import annotations

import math
import threading


class Overloaded(Exception):
    """The server cannot start this request in time; the client should retry elsewhere (HTTP 503
    with ``Retry-After``)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after(self) -> str:
        """The ``Retry-After`` header: whole seconds, at least 1."""
        return str(max(1, math.ceil(self.retry_after_s)))


class Admission:
    """Thread-safe: ``observe`` is called from the engine's thread, ``admit`` from the event loop."""

    def __init__(self, slots: int, max_wait_s: float, max_queue: int, smoothing: float = 0.2) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.smoothing = smoothing
        self.service_s: float | None = None
        self.refused = 0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """A job held its slot for ``seconds``."""
        with self._lock:
            s = max(0.0, seconds)
            self.service_s = s if self.service_s is None else self.service_s + self.smoothing * (s - self.service_s)

    def forget(self) -> None:
        """Drop the estimate (after the warm-up, whose first calls compile and load kernels)."""
        with self._lock:
            self.service_s = None

    def expected_wait(self, running: int, queued: int) -> float:
        """Seconds a new job would wait for a slot with ``running`` jobs in slots and ``queued``
        waiting ahead of it (0 while a slot is free or while nothing has been measured)."""
        if running + queued < self.slots or self.service_s is None:
            return 0.0
        return (queued + 1) * self.service_s / self.slots

    def admit(self, running: int, queued: int) -> None:
        """Raise ``Overloaded`` if a new job could not start within ``max_wait_s`` (or the queue
        holds ``max_queue`` already)."""
        if queued >= self.max_queue:
            self.refused += 1
            wait = self.expected_wait(running, queued)
            raise Overloaded(f"queue full ({self.max_queue} waiting)", wait or 1.0)
        wait = self.expected_wait(running, queued)
        if wait > self.max_wait_s:
            self.refused += 1
            raise Overloaded(f"cannot start within {self.max_wait_s:g} s: about {wait:.2f} s of work is queued ahead", wait)
