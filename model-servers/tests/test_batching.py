"""The micro-batcher behind every task but diffusion on GPUs/CPU: nothing is stranded, callers that
leave are dropped before their batch, and its death fails /health. Fault injectors (a gated model
call, a broken loop), never timing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from hwai_models.batching import EngineFailed, MicroBatcher

from .conftest import settings_for


class GatedModel:
    """Fault injector: the model call holds until the test opens the gate; records its batches."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[Any]] = []

    def __call__(self, items: list[Any]) -> list[Any]:
        self.batches.append(list(items))
        self.entered.set()
        self.gate.wait(60)
        return [f"done {i}" for i in items]


async def until(cond: Any) -> None:
    for _ in range(6000):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def test_caller_that_leaves_is_dropped_before_its_batch() -> None:
    async def scenario() -> None:
        model = GatedModel()
        b: MicroBatcher[str, str] = MicroBatcher(model, max_batch=1, wait_ms=0, max_concurrency=1, max_queue=10)
        b.start()
        running = asyncio.ensure_future(b.submit("a"))
        await asyncio.to_thread(model.entered.wait, 60)
        gone = asyncio.ensure_future(b.submit("b"))
        kept = asyncio.ensure_future(b.submit("c"))
        await until(lambda: b.queued == 1 and len(b._forming) == 1)  # "b" waits for the model, "c" behind it
        gone.cancel()  # its client disconnected, or it timed out
        model.gate.set()
        assert await running == "done a" and await kept == "done c"
        assert model.batches == [["a"], ["c"]]  # "b" never reached the model
        await b.stop()

    asyncio.run(scenario())


def test_loop_death_fails_what_it_held_and_refuses_new_work() -> None:
    async def scenario() -> None:
        model = GatedModel()
        b: MicroBatcher[str, str] = MicroBatcher(model, max_batch=4, wait_ms=0, max_concurrency=1, max_queue=10)

        def broken(batch: list[Any]) -> None:  # fault injector: a bug in the loop itself
            raise RuntimeError("injected: batching bug")

        b._take_ready = broken  # type: ignore[method-assign]
        b.start()
        with pytest.raises(EngineFailed, match="batching loop died: RuntimeError: injected: batching bug"):
            await b.submit("a")  # taken from the queue when the loop died: failed, not stranded
        assert b.failure and "injected" in b.failure
        with pytest.raises(EngineFailed):
            await b.submit("b")  # refused at once
        assert model.batches == []
        await b.stop()

    asyncio.run(scenario())


def test_dead_batcher_fails_health(models: dict[str, Any], live: Any) -> None:
    srv = live(settings_for("sentiment", models["sentiment"]))
    srv.wait_ready()
    assert httpx.get(srv.url + "/health").status_code == 200

    def broken(batch: list[Any]) -> None:  # fault injector
        raise RuntimeError("injected: batching bug")

    srv.runner.batcher._take_ready = broken
    r = httpx.post(srv.url + srv.route, json={"text": "fine"}, timeout=60)
    assert r.status_code == 503 and "batching loop died" in r.json()["error"]
    h = httpx.get(srv.url + "/health")
    assert h.status_code == 503 and "injected: batching bug" in h.json()["error"]
    assert httpx.post(srv.url + srv.route, json={"text": "fine"}, timeout=60).status_code == 503
    assert [l["status"] for l in srv.emf.lines()] == [503, 503] and all(l["ErrorCount"] == 1 for l in srv.emf.lines())


def test_error_escaping_the_route_is_still_counted(live: Any) -> None:
    # An answer the app cannot even serialise fails after the route's own error handling: the
    # client still gets a 500 and the EMF line still says so.
    s = settings_for("sleep", None, sleep_ms=1.0)
    srv = live(s)
    srv.wait_ready()
    infer = srv.runner.infer

    async def unserialisable(req: Any) -> Any:  # fault injector
        await infer(req)
        return {"value": object()}

    srv.runner.infer = unserialisable
    r = httpx.post(srv.url + srv.route, json={"payload": "x"}, timeout=60)
    assert r.status_code == 500
    (line,) = srv.emf.lines()
    assert line["status"] == 500 and line["RequestCount"] == 1 and line["ErrorCount"] == 1 and "SuccessCount" not in line
