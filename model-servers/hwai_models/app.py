"""The FastAPI app: one task, one backend, chosen by configuration.

Routes:
- ``GET /health``: liveness: the process and its event loop answer (503 only if start-up failed,
  so the kubelet restarts the pod).
- ``GET /readiness``: 200 once the model is loaded *and* a warm-up inference has completed, 503
  before that and while draining after SIGTERM (so the ALB stops sending before the pod exits).
- ``POST <task route>``: the inference route, e.g. ``/v1/text-to-image``; also ``POST /invocations``.
- ``GET /info``: configuration and batching statistics.

Every inference request (not warm-up, not probes) emits one EMF line (see ``emf.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .batching import Overloaded
from .config import Settings
from .emf import EmfLogger
from .tasks import InputError, Runner, runner_for

log = logging.getLogger("hwai_models.app")


class ServerState:
    def __init__(self) -> None:
        self.loaded = False
        self.warm = False
        self.draining = False
        self.failed: str | None = None
        self.started_at = time.time()
        self.ready_at: float | None = None

    @property
    def ready(self) -> bool:
        return self.loaded and self.warm and not self.draining and self.failed is None

    def begin_drain(self) -> None:
        if not self.draining:
            log.info("draining: /readiness now answers 503")
        self.draining = True


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) if parts else "body"


def create_app(settings: Settings, runner: Runner | None = None, emf: EmfLogger | None = None) -> FastAPI:
    runner = runner or runner_for(settings)
    emf = emf or EmfLogger(settings.service, settings.unit)
    state = ServerState()
    routes = {runner.route, "/invocations"}
    max_body = (settings.max_image_bytes * 4) // 3 + 256 * 1024

    async def startup() -> None:
        loop = asyncio.get_running_loop()
        try:
            t0 = time.perf_counter()
            await loop.run_in_executor(None, runner.load)
            await runner.start()
            state.loaded = True
            log.info("model loaded in %.1f s from %s", time.perf_counter() - t0, runner.model_path)
            t1 = time.perf_counter()
            for _ in range(settings.warmup_runs):
                reqs = runner.warmup_requests()
                await runner.infer(reqs[0])
                if len(reqs) > 1:
                    await asyncio.gather(*(runner.infer(r) for r in reqs[1:]))
            state.warm = True
            state.ready_at = time.time()
            log.info("warm-up done in %.1f s: ready", time.perf_counter() - t1)
        except Exception as e:  # noqa: BLE001
            state.failed = f"{type(e).__name__}: {e}"
            log.error("start-up failed: %s\n%s", state.failed, traceback.format_exc())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(startup())
        app.state.startup_task = task
        try:
            yield
        finally:
            state.begin_drain()
            if not task.done():
                task.cancel()
            try:
                await runner.stop()
            except Exception:  # noqa: BLE001
                log.exception("stopping the runner failed")

    app = FastAPI(title="hwai model server", version="0.1.0", lifespan=lifespan)
    app.state.hwai = state
    app.state.runner = runner
    app.state.settings = settings
    app.state.emf = emf

    @app.middleware("http")
    async def metrics(request: Request, call_next: Any) -> Any:
        if request.method != "POST" or request.url.path not in routes:
            return await call_next(request)
        t0 = time.perf_counter()
        cl = request.headers.get("content-length")
        if cl is not None and cl.isdigit() and int(cl) > max_body:
            resp: Any = JSONResponse({"error": f"request body larger than {max_body} bytes", "field": "body"}, status_code=413)
        else:
            resp = await call_next(request)
        emf.request((time.perf_counter() - t0) * 1000.0, request.url.path, resp.status_code)
        return resp

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return JSONResponse({"error": f"invalid request: {summary}", "field": details[0]["field"] if details else "body", "details": details}, status_code=422)

    @app.get("/health")
    async def health() -> JSONResponse:
        if state.failed:
            return JSONResponse({"status": "failed", "error": state.failed}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/readiness")
    async def readiness() -> JSONResponse:
        body = {"ready": state.ready, "loaded": state.loaded, "warm": state.warm, "draining": state.draining}
        if state.failed:
            body["error"] = state.failed
        return JSONResponse(body, status_code=200 if state.ready else 503)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        s = settings
        return {
            "task": s.task.value,
            "backend": s.backend.value,
            "service": s.service,
            "unit": s.unit,
            "route": runner.route,
            "model": runner.model_path or s.model_id,
            "maxBatchSize": s.max_batch_size,
            "ready": state.ready,
            "stats": runner.info(),
        }

    async def serve(req: Any) -> JSONResponse:
        if not (state.loaded and state.warm) or state.failed:
            return JSONResponse({"error": "model not ready", "ready": False}, status_code=503, headers={"Retry-After": "5"})
        try:
            out = await asyncio.wait_for(runner.infer(req), settings.request_timeout_s)
        except InputError as e:
            return JSONResponse({"error": str(e), "field": e.field}, status_code=422)
        except Overloaded as e:
            return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": "1"})
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"timed out after {settings.request_timeout_s} s"}, status_code=503)
        return JSONResponse(out)

    model = runner.request_model

    async def infer_route(req: model) -> JSONResponse:  # type: ignore[valid-type]
        return await serve(req)

    infer_route.__annotations__ = {"req": model, "return": JSONResponse}
    app.add_api_route(runner.route, infer_route, methods=["POST"], summary=f"{settings.task.value} inference")
    app.add_api_route("/invocations", infer_route, methods=["POST"], include_in_schema=False)
    return app
