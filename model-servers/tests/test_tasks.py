"""Every task, with a tiny random-weight model, through the real HTTP app on a real uvicorn."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import httpx
import pytest

from hwai_models import calibrate
from hwai_models.emf import DIMENSIONS, ERROR_COUNT, LATENCY, NAMESPACE, REQUEST_COUNT, SUCCESS_COUNT
from hwai_models.tasks import runner_for

from .conftest import png_b64, settings_for

IMG = png_b64()
NOT_IMAGE = base64.b64encode(b"this is not an image at all").decode()

# task -> (valid body, check of the answer, [(bad body, field named in the 4xx answer)])
CASES: dict[str, tuple[dict[str, Any], Any, list[tuple[Any, str]]]] = {
    "text-to-image": (
        {"prompt": "an astronaut riding a horse", "num_inference_steps": 3, "seed": 7},
        lambda r: base64.b64decode(r["image"])[:8] == b"\x89PNG\r\n\x1a\n" and r["width"] == 32 and r["steps"] == 3,
        [
            ({}, "prompt"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": 42}, "prompt"),
            ({"prompt": "x" * 2001}, "prompt"),
            ({"prompt": "a", "num_inference_steps": 0}, "num_inference_steps"),
            ({"prompt": "a", "num_inference_steps": 11}, "num_inference_steps"),  # over max_steps
            ({"prompt": "a", "guidance_scale": "high"}, "guidance_scale"),
            ({"prompt": "a", "height": 33}, "height"),
            ({"prompt": "a", "width": 64}, "width"),  # not this server's size
            ({"prompt": "a", "seed": -1}, "seed"),
            ({"prompt": "a", "output_format": "gif"}, "output_format"),
            ({"prompt": "a", "unknown": 1}, "unknown"),
        ],
    ),
    "text-generation": (
        {"prompt": "hello world", "max_new_tokens": 5, "ignore_eos": True},
        lambda r: r["completion_tokens"] == 5 and isinstance(r["text"], str) and r["finish_reason"] == "length",
        [
            ({}, "body"),
            ({"prompt": "a", "messages": [{"role": "user", "content": "b"}]}, "body"),
            ({"prompt": ""}, "prompt"),
            ({"prompt": "a", "max_new_tokens": 0}, "max_new_tokens"),
            ({"prompt": "a", "max_new_tokens": 100000}, "max_new_tokens"),
            ({"prompt": "a", "temperature": -1}, "temperature"),
            ({"prompt": "a", "top_p": 0}, "top_p"),
            ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
            ({"messages": []}, "messages"),
            ({"prompt": ["a", "b"]}, "prompt"),
        ],
    ),
    "sentiment": (
        {"text": "what a fine day"},
        lambda r: r["label"] in ("POSITIVE", "NEGATIVE") and abs(sum(r["scores"].values()) - 1) < 1e-3,
        [
            ({}, "text"),
            ({"text": ""}, "text"),
            ({"text": 5}, "text"),
            ({"text": "x" * 9000}, "text"),  # over max_input_chars (8000)
            ({"text": "a", "extra": True}, "extra"),
        ],
    ),
    "image-classification": (
        {"image": IMG, "top_k": 3},
        lambda r: len(r["predictions"]) == 3 and all(0 <= p["score"] <= 1 for p in r["predictions"]),
        [
            ({}, "image"),
            ({"image": "%%% not base64 %%%"}, "image"),
            ({"image": NOT_IMAGE}, "image"),
            ({"image": IMG, "top_k": 0}, "top_k"),
            ({"image": IMG, "top_k": "all"}, "top_k"),
        ],
    ),
    "object-detection": (
        {"image": IMG, "threshold": 0.0, "max_detections": 3},
        lambda r: 0 < len(r["detections"]) <= 3 and all(len(d["box"]) == 4 for d in r["detections"]),
        [
            ({}, "image"),
            ({"image": NOT_IMAGE}, "image"),
            ({"image": IMG, "threshold": 1.5}, "threshold"),
            ({"image": IMG, "max_detections": 0}, "max_detections"),
        ],
    ),
}


def gated_runner(settings: Any, load_gate: threading.Event, warm_gate: threading.Event) -> Any:
    """The real runner, with loading and the warm-up held until the test lets them go."""
    runner = runner_for(settings)
    load, infer = runner.load, runner.infer

    def gated_load() -> None:
        load_gate.wait(30)
        load()

    async def gated_infer(req: Any) -> Any:
        await asyncio.to_thread(warm_gate.wait, 30)
        return await infer(req)

    runner.load = gated_load
    runner.infer = gated_infer
    return runner


@pytest.mark.parametrize("task", list(CASES))
def test_task_end_to_end(task: str, models: dict[str, Any], live: Any) -> None:
    body, check, bad = CASES[task]
    s = settings_for(task, models[task])
    load_gate, warm_gate = threading.Event(), threading.Event()
    srv = live(s, gated_runner(s, load_gate, warm_gate))
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        # Loading: alive, not ready, inference refused with 503.
        assert c.get("/health").status_code == 200
        r = c.get("/readiness")
        assert r.status_code == 503 and r.json()["loaded"] is False
        assert c.post(srv.route, json=body).status_code == 503
        # Loaded, warm-up not done: still not ready.
        load_gate.set()
        for _ in range(500):
            if c.get("/readiness").json()["loaded"]:
                break
            threading.Event().wait(0.02)
        r = c.get("/readiness")
        assert r.status_code == 503 and r.json() == {"ready": False, "loaded": True, "warm": False, "draining": False}
        # Warm-up done: ready.
        warm_gate.set()
        srv.wait_ready()
        assert c.get("/readiness").json()["ready"] is True
        assert srv.emf.lines() == [e for e in srv.emf.lines() if e["status"] == 503]  # warm-up emits nothing

        r = c.post(srv.route, json=body)
        assert r.status_code == 200, r.text
        assert check(r.json()), r.json()
        assert c.post("/invocations", json=body).status_code == 200

        for payload, field in bad:
            r = c.post(srv.route, json=payload)
            assert 400 <= r.status_code < 500, (payload, r.status_code, r.text)
            j = r.json()
            assert field in j["field"] or any(field in d["field"] for d in j.get("details", [])), (payload, j)
            assert field.split(".")[0] in j["error"] or field == "body", j
        r = c.post(srv.route, content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422

    lines = srv.emf.lines()
    ok = [l for l in lines if l.get(SUCCESS_COUNT) == 1]
    err = [l for l in lines if l.get(ERROR_COUNT) == 1]
    assert len(ok) == 2
    assert len(err) == 1 + len(bad) + 1  # the 503 while loading, the bad inputs, the broken JSON
    assert len(lines) == len(ok) + len(err) and all(l[REQUEST_COUNT] == 1 for l in lines)  # every request received
    for line in lines:
        meta = line["_aws"]
        assert isinstance(meta["Timestamp"], int)
        (cwm,) = meta["CloudWatchMetrics"]
        assert cwm["Namespace"] == NAMESPACE == "hw-agnostic-infer"
        assert cwm["Dimensions"] == [list(DIMENSIONS)] == [["service", "unit"]]
        assert line["service"] == "svc" and line["unit"] == f"svc-cpu-{task}"
        for m in cwm["Metrics"]:
            assert m["Name"] in line  # every declared metric has its value at the top level
    for line in ok:
        units = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert units == {REQUEST_COUNT: "Count", SUCCESS_COUNT: "Count", LATENCY: "Milliseconds"}
        assert line[LATENCY] > 0 and line["status"] == 200 and line["route"] in (srv.route, "/invocations")
    for line in err:
        units = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
        assert units == {REQUEST_COUNT: "Count", ERROR_COUNT: "Count"} and 400 <= line["status"] < 600


@pytest.mark.parametrize("task", list(CASES))
def test_concurrent_requests_are_batched(task: str, models: dict[str, Any], live: Any) -> None:
    body = CASES[task][0]
    n = 8
    srv = live(settings_for(task, models[task], batch_wait_ms=50.0))
    srv.wait_ready()

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=120) as c:
            return await asyncio.gather(*(c.post(srv.route, json=body) for _ in range(n)))

    rs = asyncio.run(burst())
    assert [r.status_code for r in rs] == [200] * n
    assert all(CASES[task][1](r.json()) for r in rs)
    stats = httpx.get(srv.url + "/info").json()["stats"]
    assert stats["maxBatch"] >= 2, stats  # concurrent requests shared model calls
    assert sum(1 for l in srv.emf.lines() if l.get(SUCCESS_COUNT) == 1) == n


def test_mistral_architecture_serves(models: dict[str, Any], live: Any) -> None:
    srv = live(settings_for("text-generation", models["mistral"]))
    srv.wait_ready()
    r = httpx.post(srv.url + srv.route, json={"messages": [{"role": "user", "content": "hello"}], "max_new_tokens": 3, "ignore_eos": True}, timeout=60)
    assert r.status_code == 200 and r.json()["completion_tokens"] == 3


@pytest.mark.parametrize("fmt,magic", [("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")])
def test_image_formats_the_client_asks_for(fmt: str, magic: bytes, models: dict[str, Any], live: Any) -> None:
    # Encoded on a worker thread (not the event loop, not the engine's GPU thread) in the format asked for.
    srv = live(settings_for("text-to-image", models["text-to-image"]))
    srv.wait_ready()
    r = httpx.post(srv.url + srv.route, json={"prompt": "a red square", "num_inference_steps": 2, "seed": 3, "output_format": fmt}, timeout=60)
    assert r.status_code == 200, r.text
    data = base64.b64decode(r.json()["image"])
    assert r.json()["format"] == fmt and data.startswith(magic)
    # Where the time went, for a client: the whole handler, the wait for the batch, the engine
    # (submission to the image on the host) and the encoding, in the W3C Server-Timing header.
    t = calibrate.parse_server_timing(r.headers["server-timing"])
    assert set(t) == {"app", "queue", "total", "encode"}
    assert t["app"] >= t["total"] >= t["queue"] >= 0 and t["app"] >= t["encode"] > 0
    if fmt == "webp":
        assert data[8:12] == b"WEBP"
