"""The try-it page (GET /ui) in headless Chromium, on every task's tiny model: what a person sees
after pressing Run is the answer the API gives for the same input, with a latency figure, and a
refusal shows the server's message and the field it names. Chromium (Debian's /usr/bin/chromium,
`make browser`) is driven by the repository's playwright-core (tests/ui/drive.mjs); the page may
reach nothing but the server."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import png_b64, settings_for

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().parent / "ui" / "drive.mjs"
CHROMIUM = "/usr/bin/chromium"
IMAGE_TASKS = ("image-classification", "object-detection")


def page_input(task: str, png: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the test types or uploads on the page, and the API body the page must send for it."""
    if task in IMAGE_TASKS:
        return {"file": str(png)}, {"image": "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()}
    text = "what a fine day"
    body = {"sentiment": {"text": text}, "text-generation": {"prompt": text, "max_new_tokens": 32}, "text-to-image": {"prompt": text}}[task]
    return {"prompt": text}, body


def drive(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    node = shutil.which("node")
    assert node, "node is needed to drive Chromium (playwright-core)"
    assert (ROOT / "node_modules" / "playwright-core").exists(), "playwright-core is missing: run `make deps` (npm ci) at the repository root"
    done = subprocess.run([node, str(DRIVER), json.dumps(cases)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, f"the browser driver failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def without_timings(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("timings", "image")}


def test_page_tries_every_task(models: dict[str, Path], live: Any, tmp_path: Path) -> None:
    png = tmp_path / "red.png"
    png.write_bytes(base64.b64decode(png_b64()))
    servers = {}
    for task in ("text-to-image", "text-generation", "sentiment", "image-classification", "object-detection"):
        srv = live(settings_for(task, models[task]))
        srv.wait_ready()
        servers[task] = srv
    cases = [{"url": srv.url, "input": page_input(task, png)[0]} for task, srv in servers.items()]
    # a refusal: the empty prompt the API answers 422 for
    cases.append({"url": servers["text-to-image"].url, "input": {"prompt": ""}})
    seen = drive(cases)

    for (task, srv), got in zip(servers.items(), seen):
        assert got["task"] == task
        assert got["problems"] == [] and got["outside"] == [], got
        assert got["error"] == "", f"{task}: the page showed an error: {got['error']}"
        assert re.fullmatch(r"\d+ ms", got["latency"]), got["latency"]
        shown = json.loads(got["result"])
        if task == "text-to-image":
            # random noise from a random model: the page shows the picture itself, at the size served
            assert got["image"] == {"width": 32, "height": 32, "complete": True}
            assert shown["width"] == 32 and shown["format"] == "png"
            continue
        assert got["image"] is None
        api = httpx.post(srv.url + srv.route, json=page_input(task, png)[1], timeout=60).json()
        assert without_timings(shown) == without_timings(api), task

    refused = seen[-1]
    assert refused["error"].startswith("HTTP 422: invalid request: prompt") and refused["error"].endswith("(field: prompt)"), refused["error"]
    assert refused["image"] is None and refused["result"] == ""
