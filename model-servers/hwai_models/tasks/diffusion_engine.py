"""The continuous-batching diffusion engine: Stable Diffusion at denoising-step granularity.

One engine thread owns the accelerator and runs a loop of denoising steps over a *running batch*:
a job that arrives joins the batch at the next step (after its prompt is encoded), each sample
keeps its own timestep (and step count, guidance scale, seed), and a sample that has taken its
last step leaves the batch for the VAE decoder at once. So a request never waits for a whole
batch to finish, only for the current step (tens of milliseconds), while the UNet sees batches as
large as the load makes them: what turns a GPU's idle matrix units into throughput without
breaking a 900 ms p99. The sampler is DDIM (eta 0, SD 2.1's own scheduler), vectorised over
per-sample timesteps; classifier-free guidance doubles the UNet batch.

The engine never strands a job: every submitted job ends with a result or an error.
- A job that cannot start in time is refused at submission (``Overloaded``, see ``admission.py``).
- If encoding the new jobs' prompts (admission) fails, those jobs get the error; the running
  batch goes on. If a step or the decoder fails, the jobs in the batch get the error.
- If anything else in the loop fails, the engine dies: every job it holds (running, decoded,
  queued) gets ``EngineFailed``, new submissions are refused with it, and ``failure`` says why
  (``/health`` then fails, so Kubernetes restarts the pod).
- A cancelled job (the client went away, or timed out) leaves the batch before the next step,
  frees its slot, and is counted as cancelled, not served.

It depends on the model's components and ``Settings`` only, not on the HTTP app or the runner:
``DiffusionEngine(...).start()`` then ``submit(DiffusionJob(...))`` returns a future of
``(uint8 HxWx3 image, timings)``.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any

from .. import backends
from ..admission import Admission
from ..batch_bound import InFlight, StepTimes, joinable
from ..batching import EngineFailed
from ..config import Backend, Settings

log = logging.getLogger("hwai_models.diffusion")

# The batch bound's allowance for what follows a job's last step: the decoder, the copy to the
# host and the image's encoding (the compiled decoder takes about 8 ms per image on the H200).
BOUND_TAIL_S = 0.05


class JobCancelled(CancelledError):
    """The job was cancelled by its caller while it ran; it left the batch unfinished."""


@dataclass
class DiffusionJob:
    prompt: str
    negative: str | None
    steps: int
    guidance: float
    seed: int | None
    future: Future = field(default_factory=Future)
    t_submit: float = field(default_factory=time.perf_counter)
    t_admit: float = 0.0
    # Set by cancel() from the caller's thread; the engine drops the job before its next step.
    cancel_requested: bool = False
    timesteps: list[int] = field(default_factory=list)
    step_ratio: int = 0
    i: int = 0
    latents: Any = None
    cond: Any = None
    uncond: Any = None
    max_batch_seen: int = 0
    t_dev: Any = None
    t_prev_dev: Any = None
    g_dev: Any = None


class DiffusionEngine:
    """The running batch. One thread; every tensor lives on ``device``."""

    def __init__(self, tokenizer: Any, text_encoder: Any, unet: Any, vae: Any, scheduler: Any, settings: Settings, device: str, dtype: Any, max_batch: int) -> None:
        import torch

        self.tokenizer, self.text_encoder, self.unet, self.vae = tokenizer, text_encoder, unet, vae
        self.settings = settings
        self.device, self.dtype = device, dtype
        self.max_batch = max_batch
        self.scheduler = scheduler
        cfg = scheduler.config
        self.prediction_type = cfg.get("prediction_type", "epsilon")
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"unsupported prediction_type {self.prediction_type!r}")
        self.acp = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
        self.final_acp = float(scheduler.final_alpha_cumprod)
        self.final_acp_t = torch.tensor(self.final_acp, device=device, dtype=torch.float32)
        self._denoise = backends.compile_module(self._denoise_eager, settings)
        # The decoder compiled as well (no CUDA graphs: its batch is whatever finished together).
        # Dynamic in its batch whatever the UNet's shapes are: how many samples finish together varies.
        self._decode_settings = settings.model_copy(update={"compile_mode": "default", "compile_dynamic": True})
        self._decode = backends.compile_module(self._decode_eager, self._decode_settings) if settings.compile_vae else self._decode_eager
        self.cudagraphs = settings.backend == Backend.TRITON and settings.compile_mode == "reduce-overhead"
        # One captured step per batch size (see StepGraph); built by warm_batches on a GPU, on
        # first use of a size elsewhere.
        self._graphs: dict[int, StepGraph] = {} if settings.step_graphs else None  # type: ignore[assignment]
        self._graph_pool: Any = None
        self.graph_failure: str | None = None  # why the engine steps without graphs it was asked for
        self._events: list[Any] = []
        self._t_dev: dict[int, Any] = {}
        self._pending: list[tuple[Any, Any, list[DiffusionJob]]] = []  # decoded images on their way to the host
        self.num_train = int(cfg.get("num_train_timesteps", 1000))
        self.latent_channels = int(unet.config.in_channels)
        self.vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.size = settings.image_size
        self._timesteps: dict[int, list[int]] = {}
        self._empty: Any = None
        self._q: queue.Queue[DiffusionJob] = queue.Queue()
        # Jobs taken from the queue, in order, that have not joined the batch yet (the batch bound
        # held them back); not started, so their callers can still cancel them. Engine thread only.
        self._waiting: list[DiffusionJob] = []
        self.step_times = StepTimes()
        self._active: list[DiffusionJob] = []  # the running batch (engine thread only)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hwai-diffusion", daemon=True)
        self._lock = threading.Lock()  # orders a submission against the engine's death
        self._failure: str | None = None
        self.admission = Admission(max_batch, settings.max_wait_s, settings.max_queue)
        # statistics
        self.steps_run = 0
        self.samples_stepped = 0
        self.max_batch_seen = 0
        self.unet_seconds = 0.0
        # Wall-clock time with a batch running (from one step's start to the next's): with
        # unet_seconds, how much of it the GPU spent in the UNet rather than waiting on the host.
        self.active_seconds = 0.0
        self._last_step_at: float | None = None
        self.served = 0
        self.cancelled = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def queued(self) -> int:
        return self._q.qsize() + len(self._waiting)

    @property
    def failure(self) -> str | None:
        """Why the engine can serve nothing more, or None while it can."""
        if self._failure is None and self._thread.ident is not None and not self._thread.is_alive() and not self._stop.is_set():
            return "the diffusion engine's thread has exited"
        return self._failure

    def submit(self, job: DiffusionJob) -> Future:
        """Queue a job; ``Overloaded`` if it could not start in time, ``EngineFailed`` if the
        engine is dead. The future ends with the image or an error, never neither."""
        with self._lock:
            if self.failure is not None:
                raise EngineFailed(self.failure)
            self.admission.admit(len(self._active), self.queued())
            self._q.put(job)
        return job.future

    def cancel(self, job: DiffusionJob) -> None:
        """The caller no longer wants the job: a queued job is never started; a running one
        leaves the batch before its next step."""
        job.cancel_requested = True
        job.future.cancel()  # succeeds only while it is still queued

    # -- the loop -------------------------------------------------------------------------------

    def warm_batches(self) -> None:
        """Run the UNet once for every batch size the engine can form, in the engine's thread:
        under torch.compile this compiles (and with CUDA graphs records) every shape before the
        server reports ready, instead of during the first real requests; in eager mode it loads
        the kernels each shape selects."""
        import torch

        if self.settings.backend not in (Backend.TRITON, Backend.CUDA):
            return
        t0 = time.perf_counter()
        for n in sorted(set(map(self._bucket, range(1, self.max_batch + 1))), reverse=True):  # largest first: the smaller ones reuse its memory
            if self._graphs is None or self._graph_for(n) is None:
                break
        if self._graphs is not None:
            self.warm_edges()
            if self.device == "cuda":
                torch.cuda.synchronize()
            log.info("denoising step captured for batches 1..%d in %.1f s", self.max_batch, time.perf_counter() - t0)
            return
        for n in range(1, self.max_batch + 1):
            inputs = self._example_step_inputs(n)
            for _ in range(3 if self.cudagraphs else 1):  # CUDA graph trees: warm, record, replay
                self._run_denoise(*inputs)
        self.warm_edges()
        if self.device == "cuda":
            torch.cuda.synchronize()
        log.info("UNet warmed for batches 1..%d in %.1f s", self.max_batch, time.perf_counter() - t0)

    def warm_edges(self) -> None:
        """Run what surrounds the steps at every size it meets while serving: the text encoder for
        1..max_batch prompts admitted together, the decoder for 1..max_batch images finishing
        together (its compiled graph for one and, dynamic, for several), and the pinned host buffer
        each decoded batch is copied into. A size met for the first time while serving would build
        its cuDNN plans and allocate its pinned memory with requests in flight."""
        import torch

        h = self.size // self.vae_scale
        for k in range(1, self.max_batch + 1):
            self._encode([""] * k)
            lat = torch.randn((k, self.latent_channels, h, h), device=self.device, dtype=self.dtype)
            backends.mark_batch_dynamic(self._decode_settings, lat)  # as _finish does
            img = self._decode(lat)
            if self.device == "cuda":
                torch.empty(img.shape, dtype=torch.uint8, pin_memory=True).copy_(img)  # back to the cache when freed

    def _loop(self) -> None:
        import torch

        try:
            with torch.inference_mode():
                try:
                    self.warm_batches()
                except Exception:  # noqa: BLE001 - the warm-up requests will surface the error
                    log.exception("warming the UNet's batch sizes failed")
                while not self._stop.is_set():
                    self._iterate()
        except BaseException as e:  # noqa: BLE001 - anything outside a step's own handling
            self._die(e)

    def _iterate(self) -> None:
        """One turn: deliver decoded images, drop cancelled jobs, admit new ones, one step."""
        if self._pending:
            self._deliver_ready(wait=not self._active)
        self._drop_cancelled()
        new = self._take_new()
        if new:
            try:
                self._admit(new)
            except Exception as e:  # noqa: BLE001 - the new jobs fail; the running batch goes on
                log.exception("admitting %d jobs failed", len(new))
                self._fail(new, e)
            else:
                self._active.extend(new)
        if not self._active:
            return
        now = time.perf_counter()
        if self._last_step_at is not None:
            self.active_seconds += now - self._last_step_at
        self._last_step_at = now
        done: list[DiffusionJob] = []
        try:
            self._step(self._active)
            done = [j for j in self._active if j.i >= len(j.timesteps)]
            if done:
                self._active = [j for j in self._active if j.i < len(j.timesteps)]
                self._finish(done)
            if not self._active:  # the batch ran out: what follows is idle time
                self.active_seconds += time.perf_counter() - now
                self._last_step_at = None
        except Exception as e:  # noqa: BLE001 - fail the batch (and what it was decoding), keep serving
            failed = self._active + done + [j for _, _, jobs in self._pending for j in jobs]
            log.exception("diffusion step or decode failed for %d samples", len(failed))
            self._fail(failed, e)
            self._active, self._pending = [], []

    def _take_new(self) -> list[DiffusionJob]:
        """The waiting jobs that may join the batch now (waiting up to 0.1 s for one when idle),
        marked running: up to the free slots, and with HWAI_LATENCY_TARGET_S only as many as the
        batch bound lets in. Jobs cancelled while they waited are dropped."""
        if not self._active and not self._waiting:
            self._collect_events()
            try:
                self._waiting.append(self._q.get(timeout=0.1))
            except queue.Empty:
                return []
        while True:
            try:
                self._waiting.append(self._q.get_nowait())
            except queue.Empty:
                break
        gone = [j for j in self._waiting if j.future.cancelled()]
        if gone:
            self.cancelled += len(gone)
            self._waiting = [j for j in self._waiting if not j.future.cancelled()]
        now = time.perf_counter()
        n = joinable(
            [InFlight(now - j.t_submit, len(j.timesteps) - j.i) for j in self._active],
            [InFlight(now - j.t_submit, j.steps) for j in self._waiting],
            self.step_times, self.settings.latency_target_s, BOUND_TAIL_S, self.max_batch,
        )
        new, self._waiting = self._waiting[:n], self._waiting[n:]
        started = [j for j in new if j.future.set_running_or_notify_cancel()]
        self.cancelled += len(new) - len(started)
        return started

    def _drop_cancelled(self) -> None:
        gone = [j for j in self._active if j.cancel_requested]
        if not gone:
            return
        # Statistics first: whoever sees the slot free sees the job counted.
        self.cancelled += len(gone)
        self._active = [j for j in self._active if not j.cancel_requested]
        for j in gone:
            j.latents = j.cond = j.uncond = j.t_dev = j.t_prev_dev = j.g_dev = None
            j.future.set_exception(JobCancelled(f"cancelled after {j.i} of {j.steps} steps"))
        log.info("%d cancelled jobs left the batch", len(gone))

    def _fail(self, jobs: list[DiffusionJob], e: BaseException) -> None:
        for j in jobs:
            if not j.future.done():
                self.failed += 1
                j.future.set_exception(e)

    def _die(self, e: BaseException) -> None:
        """The loop cannot go on: fail every job the engine holds and refuse new ones."""
        with self._lock:
            self._failure = f"diffusion engine died: {type(e).__name__}: {e}"
            log.critical("%s", self._failure, exc_info=e)
            jobs = self._active + self._waiting + [j for _, _, js in self._pending for j in js]
            while True:
                try:
                    jobs.append(self._q.get_nowait())
                except queue.Empty:
                    break
            self._active, self._pending, self._waiting = [], [], []
        err = EngineFailed(self._failure)
        for j in jobs:
            if not j.future.done():
                if j.future.running() or j.future.set_running_or_notify_cancel():
                    self.failed += 1
                    j.future.set_exception(err)

    def _timesteps_for(self, n: int) -> list[int]:
        if n not in self._timesteps:
            self.scheduler.set_timesteps(n)
            self._timesteps[n] = [int(t) for t in self.scheduler.timesteps]
        return self._timesteps[n]

    def _to_device(self, t: Any) -> Any:
        # Pinned memory and a non-blocking copy: a pageable host-to-device copy would wait for
        # every step already queued on the stream.
        if self.device == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _encode(self, texts: list[str]) -> Any:
        tok = self.tokenizer(texts, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt")
        return self.text_encoder(self._to_device(tok.input_ids))[0].to(self.dtype)

    def _admit(self, jobs: list[DiffusionJob]) -> None:
        import torch

        if self._empty is None:
            self._empty = self._encode([""])
        cond = self._encode([j.prompt for j in jobs])
        negs = [j for j in jobs if j.negative]
        neg_emb = self._encode([j.negative for j in negs]) if negs else None  # type: ignore[misc]
        h = self.size // self.vae_scale
        now = time.perf_counter()
        for k, j in enumerate(jobs):
            j.t_admit = now
            j.cond = cond[k : k + 1]
            j.uncond = neg_emb[negs.index(j) : negs.index(j) + 1] if j.negative else self._empty
            j.timesteps = self._timesteps_for(j.steps)
            j.step_ratio = self.num_train // j.steps
            if j.steps not in self._t_dev:
                self._t_dev[j.steps] = self._to_device(torch.tensor(j.timesteps, dtype=torch.long))
            j.t_dev = self._t_dev[j.steps]
            j.t_prev_dev = j.t_dev - j.step_ratio
            j.g_dev = torch.full((), j.guidance, device=self.device, dtype=torch.float32)
            g = torch.Generator(self.device).manual_seed(j.seed if j.seed is not None else int.from_bytes(os.urandom(4), "little"))
            j.latents = torch.randn((1, self.latent_channels, h, h), generator=g, device=self.device, dtype=torch.float32).to(self.dtype)
            j.latents = j.latents * float(self.scheduler.init_noise_sigma)

    def _step(self, active: list[DiffusionJob]) -> None:
        import torch

        n = len(active)
        self.max_batch_seen = max(self.max_batch_seen, n)
        for j in active:
            j.max_batch_seen = max(j.max_batch_seen, n)
        # Per-sample scalars come from tensors made on the device at admission: no host-to-device
        # copy (which would synchronise the stream) on the step path, so the CPU queues step k+1
        # while the GPU runs step k.
        graph = self._graph_for(n) if self._graphs is not None else None
        if graph is not None:
            # The batch goes into the first n rows of the bucket's buffers; rows past n keep an
            # earlier step's (finite) values and their results are dropped.
            x, t, t_prev, g, emb = graph.inputs
            b = x.shape[0]
            torch.cat([j.latents for j in active], out=x[:n])
            torch.stack([j.t_dev[j.i] for j in active], out=t[:n])
            torch.stack([j.t_prev_dev[j.i] for j in active], out=t_prev[:n])
            torch.stack([j.g_dev for j in active], out=g.view(b)[:n])
            torch.cat([j.uncond for j in active], out=emb[:n])
            torch.cat([j.cond for j in active], out=emb[b : b + n])
        else:
            x = torch.cat([j.latents for j in active])
            t = torch.stack([j.t_dev[j.i] for j in active])
            t_prev = torch.stack([j.t_prev_dev[j.i] for j in active])
            g = torch.stack([j.g_dev for j in active]).view(n, 1, 1, 1)
            emb = torch.cat([j.uncond for j in active] + [j.cond for j in active])
        ev = None
        if self.device == "cuda":
            ev = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
            ev[0].record()
        else:
            t0 = time.perf_counter()
        x_new = graph.run()[:n] if graph is not None else self._run_denoise(x, t, t_prev, g, emb)
        if ev is not None:
            ev[1].record()
            self._events.append((*ev, n))
            # Stay at most two steps ahead of the GPU: a request that arrives now joins a step
            # that runs soon, not one behind a long queue of steps decided without it. The steps
            # before those two are done: their times count now (the batch bound reads them).
            if len(self._events) >= 3:
                self._events[-3][1].synchronize()
                self._count_steps(self._events[:-2])
                del self._events[:-2]
        else:
            self._count_steps([(t0, time.perf_counter(), n)])
        self.steps_run += 1
        self.samples_stepped += n
        for k, j in enumerate(active):
            j.latents = x_new[k : k + 1]
            j.i += 1

    def _example_step_inputs(self, n: int) -> tuple[Any, ...]:
        """A step's inputs for ``n`` samples (x, t, t_prev, guidance, embeddings), to warm or
        capture the step with: random latents mid-schedule, the empty prompt's embedding."""
        import torch

        if self._empty is None:
            self._empty = self._encode([""])
        h = self.size // self.vae_scale
        t = torch.full((n,), 501, device=self.device, dtype=torch.long)
        return (
            torch.randn((n, self.latent_channels, h, h), device=self.device, dtype=self.dtype),
            t,
            t - 40,
            torch.full((n, 1, 1, 1), 7.5, device=self.device, dtype=torch.float32),
            self._empty.expand(2 * n, -1, -1).contiguous(),
        )

    def _bucket(self, n: int) -> int:
        """The batch size whose step runs ``n`` samples: ``n`` itself, or the smallest of
        HWAI_STEP_BUCKETS that holds it (fewer graphs, and under torch.compile fewer static-shape
        compilations, at the cost of padding)."""
        return next((b for b in self.settings.step_bucket_sizes if b >= n), n)

    def _graph_for(self, n: int) -> "StepGraph | None":
        """The step for ``n`` samples (in its bucket) with fixed buffers, captured as a CUDA graph
        on a GPU. If a capture fails, the engine steps without graphs from then on (None): slower,
        but serving, where a failed capture at every step would fail every request."""
        n = self._bucket(n)
        graph = self._graphs.get(n)
        if graph is None:
            import torch

            inputs = self._example_step_inputs(n)
            if self.device == "cuda" and self._graph_pool is None:
                self._graph_pool = torch.cuda.graph_pool_handle()
            try:
                graph = self._graphs[n] = StepGraph(self._run_denoise, inputs, capture=self.device == "cuda", pool=self._graph_pool)
            except Exception:  # noqa: BLE001 - fall back to stepping without graphs, loudly
                log.exception("capturing the denoising step for batch %d failed: stepping without CUDA graphs (HWAI_STEP_GRAPHS)", n)
                self._graphs = None  # type: ignore[assignment]
                self.graph_failure = f"capturing the step for batch {n} failed"
                return None
        return graph

    def _denoise_eager(self, x: Any, t: Any, t_prev: Any, g: Any, emb: Any) -> Any:
        """One denoising step for a batch whose samples sit at different timesteps: the UNet on
        the CFG-doubled batch, guidance per sample, and DDIM (eta 0) per sample. Under the triton
        backend this whole function is compiled (and with CUDA graphs, replayed as one graph)."""
        import torch

        n = x.shape[0]
        out = self.unet(torch.cat([x, x]), torch.cat([t, t]), encoder_hidden_states=emb, return_dict=False)[0]
        u, c = out.float().chunk(2)
        pred = u + g * (c - u)
        xf = x.float()
        a_t = self.acp[t].view(n, 1, 1, 1)
        a_prev = torch.where(t_prev >= 0, self.acp[t_prev.clamp(min=0)], self.final_acp_t).view(n, 1, 1, 1)
        if self.prediction_type == "v_prediction":
            x0 = a_t.sqrt() * xf - (1 - a_t).sqrt() * pred
            eps = a_t.sqrt() * pred + (1 - a_t).sqrt() * xf
        else:
            eps = pred
            x0 = (xf - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        return (a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps).to(x.dtype)

    def _run_denoise(self, x: Any, t: Any, t_prev: Any, g: Any, emb: Any) -> Any:
        if self.settings.backend == Backend.TRITON and x.shape[0] == 1:
            # Batch 1 would be a graph of its own (dynamo specialises sizes 0 and 1): run it as a
            # batch of 2 (the sample twice) so that one dynamic graph serves every batch size.
            import torch

            u, c = emb.chunk(2)
            return self._run_denoise(torch.cat([x, x]), torch.cat([t, t]), torch.cat([t_prev, t_prev]), torch.cat([g, g]), torch.cat([u, u, c, c]))[:1]
        backends.mark_batch_dynamic(self.settings, x, t, t_prev, g, emb)
        if self.cudagraphs:
            import torch

            torch.compiler.cudagraph_mark_step_begin()
            return self._denoise(x, t, t_prev, g, emb).clone()  # the graph's output buffer is reused
        return self._denoise(x, t, t_prev, g, emb)

    def _collect_events(self) -> None:
        if self._events:
            self._events[-1][1].synchronize()
            self._count_steps(self._events)
            self._events.clear()

    def _count_steps(self, steps: list[tuple[Any, Any, int]]) -> None:
        """Finished steps as (start, end, batch size): CUDA events (their GPU time) or, on a CPU,
        perf_counter readings."""
        for a, b, n in steps:
            seconds = a.elapsed_time(b) / 1000.0 if hasattr(a, "elapsed_time") else b - a
            self.unet_seconds += seconds
            self.step_times.observe(n, seconds)

    def _finish(self, done: list[DiffusionJob]) -> None:
        """Decode the finished samples; the images reach the host asynchronously (pinned buffer,
        an event), so the next denoising step is queued without waiting for the copy."""
        import torch

        now = time.perf_counter()
        for j in done:  # each held a slot from admission to its last step
            self.admission.observe(now - j.t_admit)
        lat = torch.cat([j.latents for j in done]) / self.scaling_factor
        backends.mark_batch_dynamic(self._decode_settings, lat)
        img = self._decode(lat)
        for j in done:
            j.latents = j.cond = j.uncond = j.t_dev = j.t_prev_dev = j.g_dev = None
        if self.device == "cuda":
            host = torch.empty(img.shape, dtype=torch.uint8, pin_memory=True)
            host.copy_(img, non_blocking=True)
            ev = torch.cuda.Event()
            ev.record()
            self._pending.append((ev, host, done))
        else:
            self._deliver(img.contiguous().numpy(), done)

    def _decode_eager(self, lat: Any) -> Any:
        import torch

        img = self.vae.decode(lat, return_dict=False)[0]
        return (img.float() / 2 + 0.5).nan_to_num(0.0).clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)

    def _deliver_ready(self, wait: bool = False) -> None:
        keep = []
        for ev, host, jobs in self._pending:
            if wait:
                ev.synchronize()
            if ev.query():
                self._deliver(host.numpy(), jobs)
            else:
                keep.append((ev, host, jobs))
        self._pending = keep

    def _deliver(self, arr: Any, jobs: list[DiffusionJob]) -> None:
        now = time.perf_counter()
        for k, j in enumerate(jobs):
            if j.cancel_requested or j.future.done():  # the caller left while it was decoded
                self.cancelled += 1
                if not j.future.done():
                    j.future.set_exception(JobCancelled("cancelled after its last step"))
                continue
            self.served += 1
            j.future.set_result(
                (arr[k].copy(), {"queue_ms": round((j.t_admit - j.t_submit) * 1000, 2), "total_ms": round((now - j.t_submit) * 1000, 2), "max_batch": j.max_batch_seen})
            )

    def info(self) -> dict[str, Any]:
        return {
            "steps": self.steps_run,
            "samplesStepped": self.samples_stepped,
            "maxBatch": self.max_batch_seen,
            "unetSeconds": round(self.unet_seconds, 3),
            "activeSeconds": round(self.active_seconds, 3),
            "stepGraphs": self._graphs is not None,
            "stepMsBySize": {n: round(1000 * v, 2) for n, v in sorted(self.step_times.by_size.items())},
            "queued": self.queued(),
            "running": len(self._active),
            "served": self.served,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "refused": self.admission.refused,
        }


class StepGraph:
    """One batch size's denoising step over fixed input buffers. On a GPU it is captured once as
    a CUDA graph and each step is a replay: no Python, no dynamo guards and no kernel launches
    per step, which at small batches cost more host time than the GPU spends on the step. The
    caller writes the step's inputs into ``inputs`` (in place) and calls ``run``; the result is a
    fresh tensor (the graph's own output buffer is overwritten by the next replay). Without a GPU
    there is nothing to capture and ``run`` calls the step on the same buffers."""

    def __init__(self, step: Any, inputs: tuple[Any, ...], capture: bool, pool: Any = None) -> None:
        self.step, self.inputs = step, inputs
        self.graph: Any = None
        self.output: Any = None
        if capture:
            import torch

            # Warm on a side stream first (compiles, autotunes, allocates), as capture requires.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    step(*inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, pool=pool):
                self.output = step(*inputs)

    def run(self) -> Any:
        if self.graph is None:
            return self.step(*self.inputs)
        self.graph.replay()
        return self.output.clone()
