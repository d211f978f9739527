"""The diffusion engine never strands a request, and its images are diffusers' own.

Every test here drives the real engine, with the tiny SD model, through the real HTTP app on a real
uvicorn. Nothing depends on how fast the machine is: where a test needs the engine to be busy, a
fault injector (``StepGate``) holds its denoising steps until the test lets them go, and where it
needs a failure, a fault injector raises it. The only clock is the time-out under test, against an
engine that is held and cannot finish.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import httpx
import numpy as np
import pytest

from hwai_models.admission import Admission, Overloaded
from hwai_models.batch_bound import StepTimes
from hwai_models.emf import ERROR_COUNT, LATENCY, REQUEST_COUNT, SUCCESS_COUNT
from hwai_models.tasks import runner_for
from hwai_models.tasks.diffusion_engine import DiffusionEngine, DiffusionJob

from .conftest import settings_for

BODY = {"prompt": "a red cat", "num_inference_steps": 8, "seed": 3}


class StepGate:
    """Fault injector: while closed, each denoising step of the engine waits until the test lets
    it run (``allow``) or opens the gate. ``entered`` counts the steps that reached the gate since
    it was last closed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._permits = 0
        self.entered = 0

    def install(self, engine: DiffusionEngine) -> None:
        step = engine._step

        def gated(active: list[DiffusionJob]) -> None:
            with self._cond:
                self.entered += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._open or self._permits > 0)
                if not self._open:
                    self._permits -= 1
            step(active)

        engine._step = gated  # type: ignore[method-assign]

    def close(self) -> None:
        with self._cond:
            self._open = False
            self.entered = 0

    def open(self) -> None:
        with self._cond:
            self._open = True
            self._cond.notify_all()

    def allow(self, n: int) -> None:
        with self._cond:
            self._permits += n
            self._cond.notify_all()

    def wait_entered(self, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.entered >= n, timeout), f"{self.entered} steps reached the gate, waited for {n}"


def eventually(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Wait for a condition the test has caused (not a speed threshold: the deadline only stops a
    test that would otherwise hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


class SdServer:
    def __init__(self, live: Any, models: dict[str, Any], **settings: Any) -> None:
        self.settings = settings_for("text-to-image", models["text-to-image"], **settings)
        self.runner = runner_for(self.settings)
        self.gate = StepGate()
        load = self.runner.load

        def load_and_gate() -> None:
            load()
            self.gate.install(self.runner.engine)

        self.runner.load = load_and_gate  # type: ignore[method-assign]
        self.srv = live(self.settings, self.runner)
        self.srv.wait_ready()
        self.url = self.srv.url + self.runner.route
        self.pool = ThreadPoolExecutor(4)

    @property
    def engine(self) -> DiffusionEngine:
        return self.runner.engine

    def post(self, body: dict[str, Any] = BODY) -> httpx.Response:
        return httpx.post(self.url, json=body, timeout=120)

    def post_later(self, body: dict[str, Any] = BODY) -> Any:
        return self.pool.submit(self.post, body)

    def lines(self) -> list[dict[str, Any]]:
        return self.srv.emf.lines()

    def health(self) -> httpx.Response:
        return httpx.get(self.srv.url + "/health", timeout=10)


@pytest.fixture
def sd(live: Any, models: dict[str, Any]) -> Callable[..., SdServer]:
    return lambda **kw: SdServer(live, models, **kw)


def assert_counted(lines: list[dict[str, Any]], statuses: list[int]) -> None:
    """One EMF line per request received, each with RequestCount, and SuccessCount (with
    Latency) or ErrorCount as its status says."""
    assert sorted(l["status"] for l in lines) == sorted(statuses), lines
    for l in lines:
        assert l[REQUEST_COUNT] == 1
        if 200 <= l["status"] < 300:
            assert l[SUCCESS_COUNT] == 1 and l[LATENCY] > 0 and ERROR_COUNT not in l
        else:
            assert l[ERROR_COUNT] == 1 and SUCCESS_COUNT not in l and LATENCY not in l


def test_queue_full_is_refused_at_once_with_retry_after(sd: Any) -> None:
    s = sd(max_batch_size=1, max_queue=1, max_wait_s=3600)
    s.gate.close()
    first = s.post_later()
    s.gate.wait_entered(1)  # the only slot is busy
    second = s.post_later()
    eventually(lambda: s.engine.queued() == 1, "the second request queued")
    r = s.post()  # answered while the engine is held: refused without waiting for it
    assert r.status_code == 503 and r.headers["Retry-After"] == "1", r.text
    assert "queue full (1 waiting)" in r.json()["error"]
    s.gate.open()
    assert first.result().status_code == 200 and second.result().status_code == 200
    assert_counted(s.lines(), [200, 200, 503])


def test_request_that_cannot_start_in_time_is_refused(sd: Any) -> None:
    # One slot, and no time at all to wait for it: once the server has measured a job's service
    # time, a request that finds the slot busy cannot start in time, however fast the machine.
    s = sd(max_batch_size=1, max_queue=100, max_wait_s=1e-6)
    assert s.post().status_code == 200  # measured: a job holds the slot for some time > 0
    s.gate.close()
    busy = s.post_later()
    s.gate.wait_entered(1)
    r = s.post()
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert "cannot start within 1e-06 s" in r.json()["error"]
    assert s.engine.queued() == 0  # refused, not queued
    s.gate.open()
    assert busy.result().status_code == 200
    assert_counted(s.lines(), [200, 200, 503])


def test_time_out_cancels_the_job(sd: Any) -> None:
    s = sd(request_timeout_s=0.5)
    s.gate.close()  # the job can never finish while the gate is closed
    before = s.engine.info()
    r = s.post()
    assert r.status_code == 503 and r.json()["error"] == "timed out after 0.5 s"
    s.gate.open()
    eventually(lambda: s.engine.info()["cancelled"] == 1 and s.engine.info()["running"] == 0, "the timed-out job left the batch")
    after = s.engine.info()
    assert after["served"] == before["served"]  # not counted as served
    assert after["samplesStepped"] - before["samplesStepped"] <= 1 < BODY["num_inference_steps"]
    assert_counted(s.lines(), [503])


def test_client_disconnect_cancels_its_job(sd: Any) -> None:
    s = sd()
    before = s.engine.info()
    s.gate.close()
    body = json.dumps(BODY).encode()
    sock = socket.create_connection(("127.0.0.1", s.srv.port))
    sock.sendall(
        f"POST {s.runner.route} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    s.gate.wait_entered(1)  # admitted and stepping
    assert s.engine.info()["running"] == 1
    sock.close()
    eventually(lambda: s.lines(), "the app noticed the client was gone")
    s.gate.open()
    eventually(lambda: s.engine.info()["cancelled"] == before["cancelled"] + 1, "the job was cancelled")
    after = s.engine.info()
    assert after["running"] == 0 and after["served"] == before["served"]  # its slot is free; not served
    # It stopped at the next step: at most the step it was in, of the 8 it asked for.
    assert after["samplesStepped"] - before["samplesStepped"] <= 1
    assert_counted(s.lines(), [499])


def test_unexpected_error_is_a_json_500_and_counted(sd: Any) -> None:
    s = sd()
    decode = s.engine.vae.decode

    def broken_decoder(*a: Any, **kw: Any) -> Any:  # fault injector
        raise RuntimeError("injected: decoder out of memory")

    s.engine.vae.decode = broken_decoder
    r = s.post()
    assert r.status_code == 500 and r.json() == {"error": "internal error (RuntimeError)"}  # no internals leaked
    s.engine.vae.decode = decode
    assert s.post().status_code == 200  # the batch failed, the engine serves on
    assert s.health().status_code == 200
    assert_counted(s.lines(), [500, 200])


def test_failed_admission_fails_only_the_new_jobs(sd: Any) -> None:
    s = sd()
    encode = s.engine._encode

    def poisoned_encoder(texts: list[str]) -> Any:  # fault injector
        if any("poison" in t for t in texts):
            raise RuntimeError("injected: text encoder failed")
        return encode(texts)

    s.engine._encode = poisoned_encoder  # type: ignore[method-assign]
    s.gate.close()
    running = s.post_later()
    s.gate.wait_entered(1)
    poisoned = s.post_later({"prompt": "poison", "num_inference_steps": 2})
    eventually(lambda: s.engine.queued() == 1, "the poisoned request queued")
    s.gate.open()  # the engine admits it at its next turn, and that fails
    assert poisoned.result().status_code == 500
    assert running.result().status_code == 200  # the running batch went on
    assert s.engine.info()["failed"] == 1 and s.health().status_code == 200
    assert_counted(s.lines(), [500, 200])


def test_engine_death_fails_jobs_in_flight_and_health(sd: Any) -> None:
    s = sd()
    s.gate.close()
    in_flight = s.post_later()
    s.gate.wait_entered(1)

    def broken_loop(*a: Any) -> Any:  # fault injector: an error outside the step's own handling
        raise RuntimeError("injected: engine loop bug")

    s.engine._take_new = broken_loop  # type: ignore[method-assign]
    s.gate.open()
    r = in_flight.result()
    assert r.status_code == 503 and "diffusion engine died: RuntimeError: injected: engine loop bug" in r.json()["error"]
    h = s.health()
    assert h.status_code == 503 and "engine loop bug" in h.json()["error"]  # the kubelet restarts the pod
    r = s.post()
    assert r.status_code == 503 and "engine loop bug" in r.json()["error"]  # refused at once, not stranded
    assert_counted(s.lines(), [503, 503])


def test_joining_a_running_batch_keeps_the_image(models: dict[str, Any]) -> None:
    """Continuous batching: a job that joins a running batch mid-way gets the same image as when it
    runs alone (same seed), and jobs with different step counts share steps."""
    s = settings_for("text-to-image", models["text-to-image"])
    r = runner_for(s)
    r.load()
    eng = r.engine
    gate = StepGate()
    gate.install(eng)
    eng.start()
    try:
        alone = eng.submit(DiffusionJob("a red cat", None, 6, 7.5, 123)).result(60)[0]
        gate.close()
        long = eng.submit(DiffusionJob("a blue dog", "ugly", 9, 5.0, 5))
        gate.allow(3)
        gate.wait_entered(4)  # the long job has taken 3 steps alone and waits at its 4th
        joined = eng.submit(DiffusionJob("a red cat", None, 6, 7.5, 123))
        gate.open()
        a, b = joined.result(60), long.result(60)
        assert b[1]["max_batch"] == 2 and a[1]["max_batch"] == 2  # they shared steps
        diff = np.abs(a[0].astype(int) - alone.astype(int)).max()
        assert diff <= 2, diff  # same sample, whatever joined it (float rounding only)
    finally:
        eng.stop()


@pytest.mark.parametrize(("step_graphs", "buckets", "sizes"), [(True, "", [1, 2, 3]), (True, "2,4,8", [2, 4]), (False, "", None)], ids=["fixed-step-buffers", "padded-buckets", "fresh-tensors"])
def test_continuous_batches_match_diffusers_pipeline(models: dict[str, Any], step_graphs: bool, buckets: str, sizes: list[int] | None) -> None:
    """Jobs with different step counts, guidance and negative prompts, stepped together in one
    running batch, each give the image diffusers' own StableDiffusionPipeline gives for it alone;
    also when each step runs on the fixed buffers a CUDA graph replays on a GPU (on a CPU, the
    same buffers without the capture)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    s = settings_for("text-to-image", models["text-to-image"], step_graphs=step_graphs, step_buckets=buckets)
    r = runner_for(s)
    r.load()
    eng = r.engine
    jobs = [
        DiffusionJob("a red cat", None, 3, 7.5, 11),
        DiffusionJob("a blue dog on a lake", "dark", 5, 4.0, 22),
        DiffusionJob("photo of a mountain", None, 8, 9.0, 33),
    ]
    futures = [eng.submit(j) for j in jobs]  # queued before the engine starts: admitted together
    eng.start()
    try:
        results = [f.result(120) for f in futures]
    finally:
        eng.stop()
    assert all(t["max_batch"] == 3 for _, t in results)  # batched together
    # The batch shrank from 3 to 2 to 1 as jobs finished: each size (or its bucket, the rows
    # past the batch padding) had buffers of its own.
    assert (sorted(eng._graphs) if step_graphs else eng._graphs) == sizes
    pipe = StableDiffusionPipeline.from_pretrained(str(models["text-to-image"]), safety_checker=None, requires_safety_checker=False)
    assert isinstance(pipe.scheduler, DDIMScheduler)
    pipe.set_progress_bar_config(disable=True)
    for job, (img, _) in zip(jobs, results):
        ref = pipe(
            job.prompt, negative_prompt=job.negative, num_inference_steps=job.steps, guidance_scale=job.guidance,
            height=s.image_size, width=s.image_size, generator=torch.Generator("cpu").manual_seed(job.seed), output_type="np",
        ).images[0]
        assert img.shape == ref.shape and img.dtype == np.uint8
        diff = np.abs(img.astype(np.float64) / 255.0 - ref.astype(np.float64)).max()
        assert diff <= 1 / 255, (job.steps, diff * 255)


def test_a_step_capture_that_fails_falls_back_to_stepping_without_graphs(models: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture that fails (a driver or kernel that refuses stream capture) must not fail every
    request: the engine logs it, steps without graphs and says so in /info."""
    from hwai_models.tasks import diffusion_engine

    class CaptureFails:  # fault injector: what a GPU that refuses stream capture does
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(diffusion_engine, "StepGraph", CaptureFails)
    s = settings_for("text-to-image", models["text-to-image"], step_graphs=True)
    r = runner_for(s)
    r.load()
    eng = r.engine
    eng.start()
    try:
        first = eng.submit(DiffusionJob("a red cat", None, 4, 7.5, 1)).result(60)[0]
        second = eng.submit(DiffusionJob("a red cat", None, 4, 7.5, 1)).result(60)[0]
    finally:
        eng.stop()
    assert first.shape == (32, 32, 3) and np.array_equal(first, second)
    assert eng.info()["stepGraphs"] is False and "batch 1" in (eng.graph_failure or "")
    assert eng.info()["served"] == 2 and eng.info()["failed"] == 0


def test_warm_up_runs_the_encoder_and_decoder_at_every_size_serving_meets(models: dict[str, Any]) -> None:
    """Jobs admitted together are encoded together and jobs that joined together finish and are
    decoded together: 1..max_batch of them. Each size runs before the server is ready, so none is
    met first (its cuDNN plans built, its pinned buffer allocated) with requests waiting."""
    s = settings_for("text-to-image", models["text-to-image"], max_batch_size=5)
    r = runner_for(s)
    r.load()
    eng = r.engine
    seen: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    hooks = [
        eng.text_encoder.register_forward_hook(lambda m, args, out: seen["encoder"].add(int(args[0].shape[0]))),
        eng.vae.decoder.register_forward_hook(lambda m, args, out: seen["decoder"].add(int(args[0].shape[0]))),
    ]
    try:
        import torch

        with torch.inference_mode():
            eng.warm_edges()
    finally:
        for h in hooks:
            h.remove()
    assert seen == {"encoder": {1, 2, 3, 4, 5}, "decoder": {1, 2, 3, 4, 5}}


class GpuStepCurve(StepTimes):
    """Fault injector: a GPU's step-time curve (100 s per image per step, far above any CPU noise)
    in place of what the engine measures on the tiny CPU model, which is too small to bound
    anything; the engine's own observations are ignored."""

    def __init__(self) -> None:
        super().__init__()
        self.by_size = {1: 100.0, 2: 200.0}

    def observe(self, n: int, seconds: float) -> None:
        pass


@pytest.mark.parametrize(("target_s", "first_batch"), [(2450.0, 3), (0.0, 8)], ids=["bounded", "unbounded"])
def test_a_burst_joins_the_batch_only_as_far_as_the_latency_target_allows(models: dict[str, Any], target_s: float, first_batch: int) -> None:
    """Eight jobs of 8 steps arrive together. With 100 s per image per step and a 2,450 s target,
    three fresh jobs finish in time (2,400 s) and a fourth would make all of them late (3,200 s):
    three start, five wait; none is lost, and the ones held back join as the batch's remaining
    steps shrink. Without a target the free slots alone decide."""
    s = settings_for("text-to-image", models["text-to-image"], latency_target_s=target_s)
    r = runner_for(s)
    r.load()
    eng = r.engine
    eng.step_times = GpuStepCurve()
    gate = StepGate()
    gate.install(eng)
    gate.close()
    futures = [eng.submit(DiffusionJob(f"a cat number {k}", None, 8, 7.5, k)) for k in range(8)]
    eng.start()
    try:
        gate.wait_entered(1)
        assert (len(eng._active), eng.queued()) == (first_batch, 8 - first_batch)
        gate.open()
        results = [f.result(120) for f in futures]
    finally:
        eng.stop()
    assert all(img.shape == (32, 32, 3) for img, _ in results)
    assert eng.info()["served"] == 8


def test_admission_estimates_the_wait_from_measured_service() -> None:
    a = Admission(slots=4, max_wait_s=1.0, max_queue=10)
    a.admit(running=4, queued=9)  # nothing measured yet: only the hard cap applies
    with pytest.raises(Overloaded, match=r"queue full \(10 waiting\)"):
        a.admit(running=4, queued=10)
    a.observe(0.8)
    assert a.expected_wait(running=3, queued=0) == 0.0  # a slot is free
    assert a.expected_wait(running=4, queued=0) == pytest.approx(0.2)  # 4 slots, one frees every 0.2 s
    assert a.expected_wait(running=4, queued=3) == pytest.approx(0.8)
    a.admit(running=4, queued=4)  # 1.0 s: just in time
    with pytest.raises(Overloaded, match="cannot start within 1 s") as e:
        a.admit(running=4, queued=5)
    assert e.value.retry_after == "2"  # whole seconds, rounded up from 1.2
    a.observe(0.0)  # a moving average: one fast job moves it part of the way
    assert a.service_s == pytest.approx(0.64)
    a.forget()
    assert a.expected_wait(running=4, queued=50) == 0.0 and a.refused == 2
