"""Bounded, batched execution of blocking model calls off the event loop.

``MicroBatcher`` gathers concurrent requests into one model call: it takes whatever is queued when
the model is free (so batches grow by themselves under load), optionally waits ``wait_ms`` for more,
runs the batch in a worker thread, and never has more than ``max_concurrency`` batches in flight.
A full queue is refused at once (``Overloaded`` -> 503) rather than growing without bound.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Generic, Sequence, TypeVar

log = logging.getLogger("hwai_models.batching")

In = TypeVar("In")
Out = TypeVar("Out")


class Overloaded(Exception):
    """The server's queue is full; the client should retry elsewhere (HTTP 503)."""


class MicroBatcher(Generic[In, Out]):
    def __init__(
        self,
        fn: Callable[[list[In]], Sequence[Out | BaseException]],
        max_batch: int,
        wait_ms: float,
        max_concurrency: int,
        max_queue: int,
        name: str = "model",
    ) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self.max_queue = max_queue
        self.executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"hwai-{name}")
        self._sem = asyncio.Semaphore(max_concurrency)
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.items = 0
        self.max_seen_batch = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    async def submit(self, item: In) -> Out:
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(f"queue full ({self.max_queue} waiting)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await fut

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
            batch = [first]
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
            t = loop.create_task(self._run(batch))
            self._inflight.add(t)
            t.add_done_callback(self._inflight.discard)

    async def _run(self, batch: list[tuple[In, asyncio.Future[Any]]]) -> None:
        loop = asyncio.get_running_loop()
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
            self._sem.release()
