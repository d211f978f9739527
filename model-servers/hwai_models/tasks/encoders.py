"""Encoder tasks: DistilBERT sentiment, ViT image classification, YOLOS object detection.

Each is one forward pass per batch: concurrent requests are micro-batched into one call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .. import backends
from ..config import Backend, Settings, Task
from ..hub import resolve_model_path
from .base import BatchedRunner, InputError, decode_image



def _warmup_image() -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 160, 200)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


class _Batched(BatchedRunner):
    """Shared plumbing: load model + preprocessor, a batch function under inference mode."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.model: Any = None
        self.batch_name = self.task.value

    def _place(self, model: Any) -> Any:
        import torch

        model = model.to(self.settings.torch_device).eval()
        torch.set_grad_enabled(False)
        backends.configure_torch(self.settings)
        if self.settings.backend == Backend.TRITON:
            model.forward = backends.compile_module(model.forward, self.settings)
        return model

    def _inputs(self, enc: Any) -> dict[str, Any]:
        s = self.settings
        if s.backend == Backend.NEURON:
            from .. import neuron

            return neuron.compiled_inputs(self.model, enc)
        out = {}
        for k, v in enc.items():
            v = v.to(s.torch_device)
            if v.is_floating_point():
                v = v.to(backends.torch_dtype(s))
            out[k] = v
        backends.mark_batch_dynamic(s, *out.values())
        return out

    def run_batch(self, items: list[Any]) -> list[Any]:
        import torch

        with torch.inference_mode():
            return self._run_batch(items)

    def _run_batch(self, items: list[Any]) -> list[Any]:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- sentiment


class SentimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=100_000, description="text to classify")


class SentimentRunner(_Batched):
    task = Task.SENTIMENT
    route = "/v1/sentiment"
    request_model = SentimentRequest

    def load(self) -> None:
        from transformers import AutoTokenizer

        s = self.settings
        self.model_path = resolve_model_path(s)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.max_len = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 512)
        if s.backend == Backend.NEURON:
            from .. import neuron

            self.model = neuron.load_traced("NeuronModelForSequenceClassification", self.model_path, self.task)
            self.max_batch = min(self.max_batch, neuron.static_batch(self.model))
            self.max_len = neuron.sequence_length(self.model)
        else:
            from transformers import AutoModelForSequenceClassification

            self.model = self._place(AutoModelForSequenceClassification.from_pretrained(self.model_path, dtype=backends.torch_dtype(s)))

    async def infer(self, req: SentimentRequest) -> dict[str, Any]:
        if len(req.text) > self.settings.max_input_chars:
            raise InputError("text", f"longer than {self.settings.max_input_chars} characters")
        return await self.submit(req.text)

    def _run_batch(self, items: list[str]) -> list[dict[str, Any]]:
        enc = self.tokenizer(items, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        logits = self.model(**self._inputs(enc)).logits.float().softmax(-1).cpu()
        labels = self.model.config.id2label
        out = []
        for row in logits:
            scores = {labels[i]: round(float(p), 6) for i, p in enumerate(row)}
            best = int(row.argmax())
            out.append({"label": labels[best], "score": round(float(row[best]), 6), "scores": scores})
        return out

    def warmup_requests(self) -> list[BaseModel]:
        return [SentimentRequest(text="warm-up: this is a fine day")]


# --------------------------------------------------------------------------- vision


class _VisionRunner(_Batched):
    """An image processor plus a model class by name (optimum-neuron's or transformers' Auto class)."""

    neuron_model_class: str
    auto_model_class: str

    def load(self) -> None:
        import transformers
        from transformers import AutoImageProcessor

        s = self.settings
        self.model_path = resolve_model_path(s)
        self.processor = AutoImageProcessor.from_pretrained(self.model_path)
        if s.backend == Backend.NEURON:
            from .. import neuron

            self.model = neuron.load_traced(self.neuron_model_class, self.model_path, self.task)
            self.max_batch = min(self.max_batch, neuron.static_batch(self.model))
            neuron.fit_image_processor(self.processor, self.model)
        else:
            auto = getattr(transformers, self.auto_model_class)
            self.model = self._place(auto.from_pretrained(self.model_path, dtype=backends.torch_dtype(s)))

    def batch_item(self, req: Any, img: Any) -> tuple[Any, ...]:
        raise NotImplementedError

    async def infer(self, req: Any) -> dict[str, Any]:
        img = await asyncio.get_running_loop().run_in_executor(None, decode_image, req.image, "image", self.settings)
        return await self.submit(self.batch_item(req, img))


# --------------------------------------------------------------------------- image classification


class ImageClassificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, description="base64-encoded image (PNG, JPEG, ...) or a data: URL")
    top_k: int = Field(default=5, ge=1, le=100)


class ImageClassificationRunner(_VisionRunner):
    task = Task.IMAGE_CLASSIFICATION
    route = "/v1/image-classification"
    request_model = ImageClassificationRequest

    neuron_model_class = "NeuronModelForImageClassification"
    auto_model_class = "AutoModelForImageClassification"

    def batch_item(self, req: ImageClassificationRequest, img: Any) -> tuple[Any, int]:
        return (img, req.top_k)

    def _run_batch(self, items: list[tuple[Any, int]]) -> list[dict[str, Any]]:
        enc = self.processor(images=[i for i, _ in items], return_tensors="pt")
        probs = self.model(**self._inputs(enc)).logits.float().softmax(-1).cpu()
        labels = self.model.config.id2label
        out = []
        for row, (_, k) in zip(probs, items):
            top = row.topk(min(k, row.numel()))
            out.append({"predictions": [{"label": labels[int(i)], "score": round(float(p), 6)} for p, i in zip(top.values, top.indices)]})
        return out

    def warmup_requests(self) -> list[BaseModel]:
        return [ImageClassificationRequest(image=_warmup_image())]


# --------------------------------------------------------------------------- object detection


class ObjectDetectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, description="base64-encoded image (PNG, JPEG, ...) or a data: URL")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, ge=1, le=1000)


class ObjectDetectionRunner(_VisionRunner):
    task = Task.OBJECT_DETECTION
    route = "/v1/object-detection"
    request_model = ObjectDetectionRequest

    neuron_model_class = "NeuronModelForObjectDetection"
    auto_model_class = "AutoModelForObjectDetection"

    def batch_item(self, req: ObjectDetectionRequest, img: Any) -> tuple[Any, float, int]:
        return (img, req.threshold, req.max_detections)

    def _run_batch(self, items: list[tuple[Any, float, int]]) -> list[dict[str, Any]]:
        imgs = [i for i, _, _ in items]
        enc = self.processor(images=imgs, return_tensors="pt")
        outputs = self.model(**self._inputs(enc))
        logits, boxes = outputs.logits.float().cpu(), outputs.pred_boxes.float().cpu()
        labels = self.model.config.id2label
        out = []
        for n, (img, thr, cap) in enumerate(items):
            one = type(outputs)(logits=logits[n : n + 1], pred_boxes=boxes[n : n + 1])
            res = self.processor.post_process_object_detection(one, threshold=thr, target_sizes=[(img.height, img.width)])[0]
            dets = [
                {"label": labels.get(int(lab), str(int(lab))), "score": round(float(sc), 6), "box": [round(float(x), 2) for x in bx]}
                for sc, lab, bx in zip(res["scores"], res["labels"], res["boxes"])
            ]
            dets.sort(key=lambda d: -d["score"])
            out.append({"detections": dets[:cap]})
        return out

    def warmup_requests(self) -> list[BaseModel]:
        return [ObjectDetectionRequest(image=_warmup_image())]
