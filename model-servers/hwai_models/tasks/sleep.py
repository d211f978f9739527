"""A model-free task with a deterministic service time: the calibrator's known target.

``max_concurrency`` worker threads each hold a request for exactly ``sleep_ms`` (batches of one):
capacity is ``max_concurrency / sleep_ms`` requests per millisecond, and beyond it the queue grows
until admission refuses what could not start in time.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings, Task
from .base import BatchedRunner


class SleepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(default="", max_length=10_000)


class SleepRunner(BatchedRunner):
    task = Task.SLEEP
    route = "/v1/sleep"
    request_model = SleepRequest
    batch_name = "sleep"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.max_batch = 1

    def load(self) -> None:
        self.model_path = None

    def run_batch(self, items: list[SleepRequest]) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        end = t0 + self.settings.sleep_ms / 1000.0
        while True:  # sleep, then spin the last fraction: a service time that does not drift
            left = end - time.perf_counter()
            if left <= 0:
                break
            time.sleep(left if left > 0.002 else 0)
        service = time.perf_counter() - t0
        return [{"service_ms": round(service * 1000, 3), "echo": r.payload} for r in items]

    async def infer(self, req: SleepRequest) -> dict[str, Any]:
        return await self.submit(req)

    def warmup_requests(self) -> list[BaseModel]:
        return [SleepRequest(payload="warm-up")]
