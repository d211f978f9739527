"""The FastAPI app: one task, one backend, chosen by configuration.

Routes:
- ``GET /health``: liveness: the process and its event loop answer; 503 if start-up failed or the
  runner's engine has died (its thread or batching loop), so the kubelet restarts the pod.
- ``GET /readiness``: 200 once the model is loaded *and* a warm-up inference has completed, 503
  before that and while draining after SIGTERM (so the ALB stops sending before the pod exits).
- ``POST <task route>``: the inference route, e.g. ``/v1/text-to-image``; also ``POST /invocations``.
- ``GET /info``: configuration and batching statistics.
- ``GET /ui``: a page to try the model from a browser (``ui.py``).

Every inference request (not warm-up, not probes) emits one EMF line (see ``emf.py``), whatever
its answer: 2xx, 4xx, a refusal (503), a time-out, a client that went away (499) or a 500.

Every inference request ends, and so does its work: a request that could not start in time is
refused at once (503 with ``Retry-After``); one that runs past ``request_timeout_s`` is answered
503 and its job cancelled; a client that disconnects has its job cancelled (a diffusion job stops
stepping at the next step) and is logged as 499; an unexpected error is a JSON 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response

from .admission import Overloaded
from .batching import EngineFailed
from .config import Settings
from .emf import EmfLogger
from .gc_pauses import GcPauses, freeze_alive
from .tasks import InputError, Runner, runner_for
from .ui import PAGE

log = logging.getLogger("hwai_models.app")

# nginx's "client closed request": what the log and the metrics say of a request whose client went
# away before its answer (nobody receives the response itself).
CLIENT_CLOSED = 499


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


class RequestMetrics:
    """Pure ASGI middleware: one EMF line per inference request with its final status, 500s from
    unhandled errors included (a ``BaseHTTPMiddleware`` would miss those, and would hide the
    client's disconnect from the route). Bodies over ``max_body`` are refused (413) unread."""

    def __init__(self, app: Any, routes: set[str], emf: EmfLogger, max_body: int) -> None:
        self.app, self.routes, self.emf, self.max_body = app, routes, emf, max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.routes:
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500  # unless a response starts: an error that escaped the app

        async def send_and_note(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            cl = dict(scope.get("headers") or []).get(b"content-length", b"")
            if cl.isdigit() and int(cl) > self.max_body:
                resp = JSONResponse({"error": f"request body larger than {self.max_body} bytes", "field": "body"}, status_code=413)
                await resp(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            self.emf.request((time.perf_counter() - t0) * 1000.0, scope["path"], status)


async def client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body has been read: the next ASGI message is the
    disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def server_timing(timings: Any, app_ms: float) -> str:
    """The answer's ``Server-Timing`` header (W3C): ``app`` is the whole handler, then each
    ``<name>_ms`` of the task's timings (text-to-image: ``queue`` before the batch, ``total`` from
    submission to the image on the host, ``encode`` the image's encoding), so a client can tell
    where a slow answer spent its time."""
    parts = [f"app;dur={app_ms:.1f}"]
    if isinstance(timings, dict):
        parts += [f"{k[:-3]};dur={float(v):.1f}" for k, v in timings.items() if k.endswith("_ms") and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return ", ".join(parts)


def create_app(settings: Settings, runner: Runner | None = None, emf: EmfLogger | None = None) -> FastAPI:
    runner = runner or runner_for(settings)
    emf = emf or EmfLogger(settings.service, settings.unit)
    state = ServerState()
    gc_stats = GcPauses().install()
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
            runner.warmed()
            if settings.gc_freeze:
                freeze_alive()
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
            gc_stats.uninstall()

    app = FastAPI(title="hwai model server", version="0.1.0", lifespan=lifespan)
    app.state.hwai = state
    app.state.runner = runner
    app.state.settings = settings
    app.state.emf = emf

    app.add_middleware(RequestMetrics, routes=routes, emf=emf, max_body=max_body)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")} for e in exc.errors()]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return JSONResponse({"error": f"invalid request: {summary}", "field": details[0]["field"] if details else "body", "details": details}, status_code=422)

    @app.get("/health")
    async def health() -> JSONResponse:
        failed = state.failed or runner.failure()
        if failed:
            return JSONResponse({"status": "failed", "error": failed}, status_code=503)
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
            "stats": {**runner.info(), **gc_stats.stats()},
        }

    @app.get("/ui", include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(PAGE)

    async def serve(req: Any, request: Request) -> Response:
        t0 = time.perf_counter()
        if not (state.loaded and state.warm) or state.failed:
            return JSONResponse({"error": "model not ready", "ready": False}, status_code=503, headers={"Retry-After": "5"})
        failed = runner.failure()
        if failed:
            return JSONResponse({"error": failed}, status_code=503, headers={"Retry-After": "5"})
        work = asyncio.ensure_future(runner.infer(req))
        gone = asyncio.ensure_future(client_gone(request))
        try:
            done, _ = await asyncio.wait({work, gone}, timeout=settings.request_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is shutting down
            work.cancel()
            raise
        finally:
            gone.cancel()
        if work not in done:
            # Cancelling the work cancels its job: dropped from the queue, or out of the batch
            # before its next step.
            work.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await work
            if gone in done:
                log.info("client went away: its job was cancelled")
                return Response(status_code=CLIENT_CLOSED)
            return JSONResponse({"error": f"timed out after {settings.request_timeout_s:g} s"}, status_code=503, headers={"Retry-After": "1"})
        try:
            out = work.result()
        except InputError as e:
            return JSONResponse({"error": str(e), "field": e.field}, status_code=422)
        except Overloaded as e:
            return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": e.retry_after})
        except EngineFailed as e:
            return JSONResponse({"error": str(e)}, status_code=503, headers={"Retry-After": "5"})
        except Exception as e:  # noqa: BLE001 - a JSON 500, logged, and counted like any answer
            log.error("inference failed: %s: %s\n%s", type(e).__name__, e, traceback.format_exc())
            return JSONResponse({"error": f"internal error ({type(e).__name__})"}, status_code=500)
        return JSONResponse(out, headers={"Server-Timing": server_timing(out.get("timings"), 1000 * (time.perf_counter() - t0))})

    model = runner.request_model

    async def infer_route(req: model, request: Request) -> Response:  # type: ignore[valid-type]
        return await serve(req, request)

    infer_route.__annotations__ = {"req": model, "request": Request, "return": Response}
    app.add_api_route(runner.route, infer_route, methods=["POST"], summary=f"{settings.task.value} inference")
    app.add_api_route("/invocations", infer_route, methods=["POST"], include_in_schema=False)
    return app
