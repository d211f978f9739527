"""CloudWatch embedded metric format (EMF): one JSON object per line on stdout.

The CloudWatch agent (or Fluent Bit / Container Insights) turns each line into metrics; there is no
PutMetricData call on the request path. Every inference request the server receives emits one
line in namespace ``hw-agnostic-infer`` with the one dimension set ``[service, unit]``:

- ``RequestCount`` (Count): 1 per inference request *received*, whatever its answer: served,
  refused (503 queue full / cannot start in time / not ready), invalid (4xx), timed out, client
  gone (499) or failed (500). ``SUM(RequestCount)`` per unit per minute is the demand offered to
  the unit's pods, which the controller and KEDA scale on; it never hides demand the pods refused.
- ``SuccessCount`` (Count): 1 per request answered with 2xx (the unit's served throughput, what
  the fleet spec's ``maxRpm`` measures).
- ``ErrorCount`` (Count): 1 per request answered with anything else (4xx, 5xx, 499).
  ``RequestCount = SuccessCount + ErrorCount`` in every minute.
- ``Latency`` (Milliseconds): server-side time from the request's arrival to its answer, on 2xx
  answers only (the SLO is on served requests).

Each line also carries the ``route`` and the ``status`` code as properties (not dimensions), for
CloudWatch Logs Insights.

KEDA (aws-cloudwatch trigger, Metrics Insights):
``SELECT SUM(RequestCount) FROM SCHEMA("hw-agnostic-infer", service, unit) WHERE unit = 'sd21-g5-triton'``
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

NAMESPACE = "hw-agnostic-infer"
DIMENSIONS = ("service", "unit")
REQUEST_COUNT = "RequestCount"
SUCCESS_COUNT = "SuccessCount"
ERROR_COUNT = "ErrorCount"
LATENCY = "Latency"


class EmfLogger:
    """Writes EMF lines; thread-safe; one ``write`` + ``flush`` per line so lines never interleave."""

    def __init__(self, service: str, unit: str, stream: IO[str] | None = None) -> None:
        self.service = service
        self.unit = unit
        self._stream = stream
        self._lock = threading.Lock()

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stdout

    def record(
        self,
        metrics: dict[str, tuple[float, str]],
        properties: dict[str, Any] | None = None,
        timestamp_ms: int | None = None,
    ) -> dict[str, Any]:
        """Emit one line. ``metrics`` maps name -> (value, CloudWatch unit)."""
        doc: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
                "CloudWatchMetrics": [
                    {
                        "Namespace": NAMESPACE,
                        "Dimensions": [list(DIMENSIONS)],
                        "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in metrics.items()],
                    }
                ],
            },
            "service": self.service,
            "unit": self.unit,
        }
        for k, v in (properties or {}).items():
            if k not in doc:
                doc[k] = v
        for n, (v, _) in metrics.items():
            doc[n] = v
        line = json.dumps(doc, separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            s = self.stream
            s.write(line)
            s.flush()
        return doc

    def request(self, latency_ms: float, route: str, status: int, **props: Any) -> dict[str, Any]:
        metrics: dict[str, tuple[float, str]] = {REQUEST_COUNT: (1, "Count")}
        if 200 <= status < 300:
            metrics[SUCCESS_COUNT] = (1, "Count")
            metrics[LATENCY] = (round(latency_ms, 3), "Milliseconds")
        else:
            metrics[ERROR_COUNT] = (1, "Count")
        return self.record(metrics, {"route": route, "status": status, **props})
