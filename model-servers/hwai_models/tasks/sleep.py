"""A model-free task with a deterministic service time: the calibrator's known target.

``max_concurrency`` worker threads each hold a request for exactly ``sleep_ms``: capacity is
``max_concurrency / sleep_ms`` requests per millisecond, and beyond it the queue grows.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..batching import Overloaded
from ..config import Settings, Task
from .base import Runner


class SleepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(default="", max_length=10_000)


class SleepRunner(Runner):
    task = Task.SLEEP
    route = "/v1/sleep"
    request_model = SleepRequest

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.executor: ThreadPoolExecutor | None = None
        self.waiting = 0
        self.served = 0

    def load(self) -> None:
        self.model_path = None

    async def start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=self.settings.max_concurrency, thread_name_prefix="hwai-sleep")

    async def stop(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _work(self) -> float:
        t0 = time.perf_counter()
        end = t0 + self.settings.sleep_ms / 1000.0
        while True:  # sleep, then spin the last fraction: a service time that does not drift
            left = end - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left if left > 0.002 else 0)
        return time.perf_counter() - t0

    async def infer(self, req: SleepRequest) -> dict[str, Any]:
        if self.waiting >= self.settings.max_queue:
            raise Overloaded(f"queue full ({self.settings.max_queue} waiting)")
        self.waiting += 1
        try:
            service = await asyncio.get_running_loop().run_in_executor(self.executor, self._work)
        finally:
            self.waiting -= 1
        self.served += 1
        return {"service_ms": round(service * 1000, 3), "echo": req.payload}

    def warmup_requests(self) -> list[BaseModel]:
        return [SleepRequest(payload="warm-up")]

    def info(self) -> dict[str, Any]:
        return {"served": self.served, "waiting": self.waiting}
