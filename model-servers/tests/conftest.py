"""Shared fixtures: tiny random-weight models (built once per session) and a live server helper."""

from __future__ import annotations

import asyncio
import io
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["HF_HUB_OFFLINE"] = "1"  # the tests never reach a hub
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import importlib.util

import pytest
import torch
import uvicorn

# tests/neuron runs in its own environment (optimum-neuron, transformers 4.57): make test-models-neuron.
collect_ignore = [] if importlib.util.find_spec("optimum") and importlib.util.find_spec("optimum.neuron") else ["neuron"]

torch.set_num_threads(1)

from hwai_models import tiny  # noqa: E402
from hwai_models.app import create_app  # noqa: E402
from hwai_models.config import Settings, load_settings  # noqa: E402
from hwai_models.emf import EmfLogger  # noqa: E402
from hwai_models.tasks import runner_for  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {}
    for task, build in tiny.BUILDERS.items():
        out[task] = build(root / task)
    out["mistral"] = tiny.tiny_llm(root / "mistral", arch="mistral")
    return out


def settings_for(task: str, model_dir: Path | None, **kw: Any) -> Settings:
    base: dict[str, Any] = dict(task=task, service="svc", unit=f"svc-cpu-{task}", model_dir=str(model_dir) if model_dir else None, image_size=32, default_steps=4, max_steps=10, batch_wait_ms=10.0, max_batch_size=8, gc_freeze=False)  # freezing is process-wide: tested in its own process
    base.update(kw)
    return load_settings({}, **base)


class EmfCapture(io.StringIO):
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(l) for l in self.getvalue().splitlines() if l.strip()]


class LiveServer:
    """The real app on a real uvicorn, on loopback, in a thread."""

    def __init__(self, settings: Settings, runner: Any = None) -> None:
        self.settings = settings
        self.emf = EmfCapture()
        self.runner = runner or runner_for(settings)
        self.app = create_app(settings, runner=self.runner, emf=EmfLogger(settings.service, settings.unit, self.emf))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def wait_ready(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            r = httpx.get(self.url + "/readiness", timeout=5)
            if r.status_code == 200:
                return
            if r.json().get("error"):
                raise RuntimeError(r.json()["error"])
            time.sleep(0.02)
        raise TimeoutError("server not ready")

    @property
    def route(self) -> str:
        return self.runner.route


@pytest.fixture
def live() -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(settings: Settings, runner: Any = None) -> LiveServer:
        s = LiveServer(settings, runner).__enter__()
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def png_b64(w: int = 40, h: int = 30, color: tuple[int, int, int] = (200, 30, 30)) -> str:
    import base64

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)
