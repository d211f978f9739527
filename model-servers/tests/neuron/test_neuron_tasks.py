"""Every task on the neuron backend, through optimum-neuron 0.4.5's own code and the real HTTP app.

Only the compiled-model call is a stand-in (tests/neuron/stubs, nxd_standin.py), and it refuses
any shape the artifact was not compiled for, as the Neuron runtime does. Each test below fails on
the server as it was before the neuron backend honoured the compiled shapes (the mismatch each
one covers is named in its docstring).
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import httpx
import pytest

from hwai_models.config import ConfigError, load_settings
from hwai_models.neuron import NotCompiled
from hwai_models.tasks import runner_for

from ..conftest import png_b64, settings_for
from .conftest import ENCODER, FIRST_WORD, LLM, SD, run_compile_script
from .nxd_standin import next_tokens


def neuron_settings(task: str, path: Any, **kw: Any) -> Any:
    base = dict(backend="neuron", max_batch_size=8, batch_wait_ms=20.0)
    base.update(kw)
    return settings_for(task, path, **base)


def burst(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """Requests sent together, so that the server batches them."""

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as c:
            return await asyncio.gather(*(c.post(url, json=b) for b in bodies))

    return asyncio.run(go())


def max_batch(srv: Any) -> int:
    """The largest batch the runner's micro-batcher handed to the model."""
    return int(srv.runner.batcher.max_seen_batch)


# ------------------------------------------------------------------------------ text generation


def expected_completion(tokenizer: Any, prompt: str, n: int, budget: int | None = None) -> str:
    ids = tokenizer(prompt, truncation=budget is not None, max_length=budget)["input_ids"]
    return tokenizer.decode(next_tokens(ids[-1], n, tokenizer.vocab_size, FIRST_WORD), skip_special_tokens=True)


def test_text_generation_right_pads_mixed_lengths_in_one_batch(compiled: Any, inf2_host: None) -> None:
    """Was: left padding, which optimum-neuron's generate refuses ("Left padding is not supported")."""
    runner = runner_for(neuron_settings("text-generation", compiled("text-generation")))
    runner.load()
    from hwai_models.tasks.text_generation import GenerateRequest

    prompts = ["hello", "tell me about the red cat and the blue dog"]
    items = [(p, GenerateRequest(prompt=p, max_new_tokens=5)) for p in prompts]
    out = runner.run_batch(items)
    for p, r in zip(prompts, out):
        assert r["text"] == expected_completion(runner.tokenizer, p, 5)
        assert r["completion_tokens"] == 5


def test_text_generation_never_exceeds_the_compiled_batch(compiled: Any, inf2_host: None) -> None:
    """Was: the batch size read from config.json's (absent) neuron section, so a burst of 4 became
    one generate call of 4 against a model compiled for 2 ("exceeds the model static batch size")."""
    runner = runner_for(neuron_settings("text-generation", compiled("text-generation")))
    runner.load()
    from hwai_models.tasks.text_generation import GenerateRequest

    prompts = ["hello world", "a cat", "the good dog", "write me a story about the city"]

    async def go() -> list[Any]:
        await runner.start()
        try:
            return await asyncio.gather(*(runner.infer(GenerateRequest(prompt=p, max_new_tokens=3)) for p in prompts))
        finally:
            await runner.stop()

    out = asyncio.run(go())
    assert [r["text"] for r in out] == [expected_completion(runner.tokenizer, p, 3) for p in prompts]
    assert runner.batcher is not None and runner.batcher.max_seen_batch <= LLM["batch_size"]
    assert runner.batcher.items == len(prompts)


def test_text_generation_fits_prompt_and_output_in_the_compiled_sequence(live: Any, compiled: Any, inf2_host: None) -> None:
    """Was: prompts truncated at max_position_embeddings (256) less the new tokens; a long prompt then
    overran the compiled sequence_length (32) and the request failed with a 500."""
    srv = live(neuron_settings("text-generation", compiled("text-generation")))
    srv.wait_ready()
    long_prompt = " ".join(["the red cat and the blue dog"] * 10)  # ~70 tokens
    r = httpx.post(srv.url + srv.route, json={"prompt": long_prompt, "max_new_tokens": 8}, timeout=60)
    assert r.status_code == 200, r.text
    budget = LLM["sequence_length"] - 8
    assert r.json()["prompt_tokens"] == budget
    assert r.json()["completion_tokens"] == 8
    assert r.json()["text"] == expected_completion(srv.runner.tokenizer, long_prompt, 8, budget)

    too_many = httpx.post(srv.url + srv.route, json={"prompt": "hello", "max_new_tokens": LLM["sequence_length"]}, timeout=60)
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "max_new_tokens"
    assert str(LLM["sequence_length"] - 1) in too_many.json()["error"]


# ------------------------------------------------------------------------------ sentiment


def test_sentiment_truncates_at_the_compiled_length_and_batch(live: Any, compiled: Any) -> None:
    """Was: truncation at 512 tokens against a model compiled for 16 ("Unable to pad input_ids");
    the batch and the compiled inputs come from the artifact."""
    srv = live(neuron_settings("sentiment", compiled("sentiment")))
    srv.wait_ready()
    long_text = " ".join(["what a really good day"] * 40)  # 200 words, far past 16 tokens
    bodies = [{"text": long_text}, {"text": "bad"}, {"text": "a fine movie"}]
    rs = burst(srv.url + srv.route, bodies)
    assert [r.status_code for r in rs] == [200, 200, 200], [r.text for r in rs]
    for r in rs:
        body = r.json()
        assert body["label"] in ("POSITIVE", "NEGATIVE") and abs(sum(body["scores"].values()) - 1) < 1e-3
    assert max_batch(srv) <= ENCODER["batch_size"]


# ------------------------------------------------------------------------------ vision


def test_image_classification_batches_at_the_compiled_size(live: Any, compiled: Any) -> None:
    srv = live(neuron_settings("image-classification", compiled("image-classification")))
    srv.wait_ready()
    rs = burst(srv.url + srv.route, [{"image": png_b64(40 + i, 30), "top_k": 2} for i in range(3)])
    assert [r.status_code for r in rs] == [200, 200, 200], [r.text for r in rs]
    assert all(len(r.json()["predictions"]) == 2 for r in rs)
    assert max_batch(srv) <= 2


def test_object_detection_resizes_to_the_compiled_image(live: Any, compiled: Any) -> None:
    """Was: YOLOS' own resize (shortest edge 800, longest 1333, aspect kept), a shape the artifact
    (compiled at the config's image_size, 64x64 here) does not take ("Unable to pad pixel_values").
    Boxes still come back in the original image's pixels."""
    srv = live(neuron_settings("object-detection", compiled("object-detection")))
    srv.wait_ready()
    r = httpx.post(srv.url + srv.route, json={"image": png_b64(640, 480), "threshold": 0.0, "max_detections": 5}, timeout=60)
    assert r.status_code == 200, r.text
    dets = r.json()["detections"]
    assert 0 < len(dets) <= 5
    for d in dets:
        x0, y0, x1, y1 = d["box"]
        assert -1 <= x0 <= x1 <= 641 and -1 <= y0 <= y1 <= 481


# ------------------------------------------------------------------------------ text-to-image


def test_text_to_image_pads_to_the_compiled_batch_and_becomes_ready(live: Any, compiled: Any) -> None:
    """Was: the text encoder and UNet called with the request count (1 in the warm-up) against a
    pipeline compiled for 2, so the warm-up failed and the server never became ready."""
    srv = live(neuron_settings("text-to-image", compiled("text-to-image"), image_size=SD["height"], default_steps=2))
    srv.wait_ready()
    one = httpx.post(srv.url + srv.route, json={"prompt": "a red cat", "seed": 3, "num_inference_steps": 2}, timeout=120)
    assert one.status_code == 200, one.text
    assert one.json()["width"] == SD["width"] and one.json()["height"] == SD["height"]
    rs = burst(srv.url + srv.route, [{"prompt": f"a dog {i}", "seed": i, "num_inference_steps": 2} for i in range(3)])
    assert [r.status_code for r in rs] == [200, 200, 200], [r.text for r in rs]
    assert max_batch(srv) <= SD["batch_size"]
    # A request's image depends on its seed, not on what it was batched (or padded) with.
    again = burst(srv.url + srv.route, [{"prompt": "a red cat", "seed": 3, "num_inference_steps": 2}, {"prompt": "the lake", "seed": 9, "num_inference_steps": 2}])
    assert again[0].status_code == 200
    assert pixels(again[0].json()["image"]) == pytest.approx(pixels(one.json()["image"]), abs=1)

    unguided = httpx.post(srv.url + srv.route, json={"prompt": "a cat", "guidance_scale": 1.0}, timeout=60)
    assert unguided.status_code == 422 and unguided.json()["field"] == "guidance_scale"


def pixels(b64: str) -> list[int]:
    from PIL import Image

    return list(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB").tobytes())


def test_text_to_image_refuses_an_image_size_the_artifact_was_not_compiled_for(compiled: Any) -> None:
    runner = runner_for(neuron_settings("text-to-image", compiled("text-to-image"), image_size=64))
    with pytest.raises(ValueError, match=r"HWAI_IMAGE_SIZE: 64.*compiled for 32x32"):
        runner.load()


# ------------------------------------------------------------------------------ artifacts


@pytest.mark.parametrize("task", ["text-generation", "sentiment", "image-classification", "object-detection", "text-to-image"])
def test_a_raw_checkpoint_is_refused_with_how_to_compile_it(task: str, raw: dict[str, Any]) -> None:
    """Was: optimum-neuron's own errors deep in loading (or a hub download attempt)."""
    runner = runner_for(neuron_settings(task, raw[task]))
    with pytest.raises(NotCompiled, match=r"neuron-compile\.sh") as e:
        runner.load()
    assert str(raw[task]) in str(e.value)


def test_the_neuron_backend_has_no_default_raw_model() -> None:
    """Was: the hub's raw checkpoints as defaults, which a Neuron pod can neither serve nor fetch offline."""
    with pytest.raises(ConfigError, match="HWAI_MODEL_ID or HWAI_MODEL_DIR"):
        load_settings({"HWAI_TASK": "sentiment", "HWAI_BACKEND": "neuron", "HWAI_SERVICE": "s", "HWAI_UNIT": "u"})


@pytest.mark.parametrize("task", ["sentiment", "text-generation"])
def test_a_compiled_artifact_starts_offline_from_the_hub_cache(task: str, compiled: Any, inf2_host: None, tmp_path: Any, live: Any) -> None:
    """A Neuron pod names its compiled repository (HWAI_MODEL_ID) and starts from the cache alone."""
    from ..test_config_hub import fake_hub_cache

    fake_hub_cache(tmp_path, f"hwai-test/{task}-neuron", compiled(task))
    srv = live(neuron_settings(task, None, model_id=f"hwai-test/{task}-neuron", cache_dir=str(tmp_path), offline=True))
    srv.wait_ready()
    body = {"text": "a fine day"} if task == "sentiment" else {"prompt": "hello", "max_new_tokens": 2}
    assert httpx.post(srv.url + srv.route, json=body, timeout=60).status_code == 200


def test_the_compile_script_takes_an_llm_as_far_as_the_neuron_compiler(raw: dict[str, Any], tmp_path: Any) -> None:
    """The script's LLM flags are optimum-cli's own: the export parses them, builds the neuron
    config and reaches NxD's ModelBuilder, the first call that needs the real compiler."""
    proc = run_compile_script(tmp_path, "llama-3.2-1b", LLAMA_MODEL=raw["text-generation"], LLM_BATCH=2, LLM_SEQUENCE=32)
    assert proc.returncode != 0
    assert "NeedsNeuronSdk: neuronx_distributed.trace.model_builder.ModelBuilder" in proc.stderr, proc.stderr[-2000:]
    assert "unrecognized arguments" not in proc.stderr and "invalid choice" not in proc.stderr
