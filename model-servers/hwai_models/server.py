"""Run the server: ``python -m hwai_models.server`` (configuration from ``HWAI_*`` variables).

stdout carries only EMF lines (one JSON object per line); logs go to stderr. On SIGTERM the server
drains: /readiness answers 503 at once, requests are still served for ``HWAI_DRAIN_SECONDS`` (the
ALB deregistration delay), then uvicorn shuts down gracefully. A second SIGTERM or a SIGINT stops
at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import uvicorn

from .app import create_app
from .config import ConfigError, load_settings

log = logging.getLogger("hwai_models.server")


def log_config() -> dict[str, Any]:
    cfg = dict(uvicorn.config.LOGGING_CONFIG)
    cfg["handlers"] = {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
    }
    cfg["loggers"] = dict(cfg["loggers"])
    cfg["loggers"]["hwai_models"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return cfg


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, state: Any, drain_seconds: float) -> None:
        super().__init__(config)
        self.hwai_state = state
        self.drain_seconds = drain_seconds
        self._drain_timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if sig == signal.SIGTERM and self.drain_seconds > 0 and self._drain_timer is None:
            self.hwai_state.begin_drain()
            log.info("SIGTERM: serving on for %.1f s, then shutting down", self.drain_seconds)
            self._drain_timer = threading.Timer(self.drain_seconds, self._exit, args=(sig, frame))
            self._drain_timer.daemon = True
            self._drain_timer.start()
            return
        self._exit(sig, frame)

    def _exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM:
            # A drained SIGTERM is a clean stop: exit 0 rather than re-raising the signal.
            self._captured_signals = [s for s in self._captured_signals if s != signal.SIGTERM]


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ConfigError as e:
        print(f"hwai model server: {e}", file=sys.stderr)
        return 2
    # The engine thread that feeds the accelerator must get the GIL back quickly from the HTTP
    # thread and the image encoders (the default switch interval is 5 ms, a third of a UNet step).
    sys.setswitchinterval(float(os.environ.get("HWAI_SWITCH_INTERVAL_MS", "0.5")) / 1000.0)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=log_config(),
        access_log=False,
        timeout_keep_alive=75,  # above the ALB's idle timeout (60 s)
        timeout_graceful_shutdown=int(settings.request_timeout_s),
    )
    server = DrainingServer(config, app.state.hwai, settings.drain_seconds)
    server.run()
    return 1 if app.state.hwai.failed else 0


if __name__ == "__main__":
    sys.exit(main())
