"""Bounded, batched execution of blocking model calls off the event loop.

``MicroBatcher`` gathers concurrent requests into one model call: it takes whatever is queued when
the model is free (so batches grow by themselves under load), optionally waits ``wait_ms`` for more,
runs the batch in a worker thread, and never has more than ``max_concurrency`` batches in flight.
A request that could not start in time is refused at once (``Overloaded`` -> 503, see
``admission.py``) rather than queueing into a time-out. A request whose caller went away (client
disconnect, time-out) before its batch started is dropped; one already in a batch runs to the end
of that one call (a single forward pass cannot be stopped half-way).

Nothing is stranded: if the batching loop itself dies, every queued request gets the error and
``failure`` says why (``/health`` then fails, so the pod is restarted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Sequence, TypeVar

from .admission import Admission, Overloaded

log = logging.getLogger("hwai_models.batching")

In = TypeVar("In")
Out = TypeVar("Out")

__all__ = ["MicroBatcher", "Overloaded", "EngineFailed"]


class EngineFailed(RuntimeError):
    """The engine (batching loop or engine thread) has died: nothing more can be served here."""


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out | BaseException]],
        max_batch: int,
        wait_ms: float,
        max_concurrency: int,
        max_queue: int,
        name: str = "model",
        max_wait_s: float = float("inf"),
    ) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self.admission = Admission(max_batch * max_concurrency, max_wait_s, max_queue)
        self.executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"hwai-{name}")
        self._sem = asyncio.Semaphore(max_concurrency)
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._forming: list[tuple[In, asyncio.Future[Any]]] = []  # taken from the queue, not yet running
        self.running = 0  # items in batches now in flight
        self.failure: str | None = None
        self.batches = 0
        self.items = 0
        self.max_seen_batch = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
            self._task.add_done_callback(self._loop_ended)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # a loop that died said why in failure
                pass
            self._task = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def info(self) -> dict[str, Any]:
        return {"batches": self.batches, "items": self.items, "maxBatch": self.max_seen_batch, "queued": self.queued, "refused": self.admission.refused}

    async def submit(self, item: In) -> Out:
        if self.failure is not None:
            raise EngineFailed(self.failure)
        self.admission.admit(self.running, self._queue.qsize())
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await fut  # cancelled by the caller (disconnect, time-out): its entry is skipped

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        e = task.exception()
        if e is None:
            return
        self.failure = f"batching loop died: {type(e).__name__}: {e}"
        log.error("%s", self.failure, exc_info=e)
        err = EngineFailed(self.failure)
        held, self._forming = self._forming, []
        while not self._queue.empty():
            held.append(self._queue.get_nowait())
        for _, fut in held:
            if not fut.done():
                fut.set_exception(err)

    def _take_ready(self, batch: list[tuple[In, asyncio.Future[Any]]]) -> None:
        while len(batch) < self.max_batch:
            try:
                entry = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if not entry[1].cancelled():
                batch.append(entry)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first[1].cancelled():
                continue
            batch = self._forming = [first]
            self._take_ready(batch)
            if len(batch) < self.max_batch and self.wait_s > 0:
                deadline = loop.time() + self.wait_s
                while len(batch) < self.max_batch:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        entry = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                    if not entry[1].cancelled():
                        batch.append(entry)
            await self._sem.acquire()
            self._take_ready(batch)  # requests that arrived while the model was busy join now
            batch = [e for e in batch if not e[1].cancelled()]  # callers gone while it waited
            self._forming = []
            if not batch:
                self._sem.release()
                continue
            self.running += len(batch)
            t = loop.create_task(self._run(batch))
            self._inflight.add(t)
            t.add_done_callback(self._inflight.discard)

    async def _run(self, batch: list[tuple[In, asyncio.Future[Any]]]) -> None:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        try:
            items = [i for i, _ in batch]
            self.batches += 1
            self.items += len(items)
            self.max_seen_batch = max(self.max_seen_batch, len(items))
            try:
                results = await loop.run_in_executor(self.executor, self.fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} inputs")
            except BaseException as e:  # noqa: BLE001 - delivered to every waiter
                log.exception("batch of %d failed", len(batch))
                results = [e] * len(batch)
            for (_, fut), r in zip(batch, results):
                if fut.done():
                    continue
                if isinstance(r, BaseException):
                    fut.set_exception(r)
                else:
                    fut.set_result(r)
        finally:
            self.running -= len(batch)
            self.admission.observe(time.perf_counter() - t0)
            self._sem.release()
