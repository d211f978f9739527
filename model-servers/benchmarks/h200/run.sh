#!/usr/bin/env bash
# Reproduce the H200 figures (benchmarks/h200/README.md). Runs on the GPU machine, from the
# repository root, with the image's python3 (torch 2.11 + CUDA 13, transformers 5.17). Packages the
# image lacks (diffusers, fastapi, starlette, uvicorn, pydantic, ...) travel as wheels in .whl/
# (see README.md), installed into /tmp/site. Each line is one device call (<= 10 min).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
# Inductor's caches in an ignored folder of the checkout: the device keeps ignored outputs between
# calls while the machine stays warm, so a call right after another reuses its compilations
# (a server with a static graph per batch size compiles for ~55 s per size the first time).
export TORCHINDUCTOR_CACHE_DIR="$PWD/.inductor-cache"
cd model-servers
OUT=${OUT:-/tmp/hwai-out}
case "${1:-all}" in
  unet|all)   python3 benchmarks/h200_bench.py --phases build,unet,sd-cuda --unet-modes eager,inductor --out "$OUT" --budget 520 --sd-start-rpm 30 --growth 1.3 ;;&
  triton|all) python3 benchmarks/h200_bench.py --phases build,sd-triton-cg,llm-cuda --out "$OUT" --budget 560 --sd-triton-start-rpm 60 --growth 1.3 --step-seconds 12 --llm-start-rpm 30 ;;&
  cuda|all)   python3 benchmarks/h200_bench.py --phases build,sd-cuda --out "$OUT" --budget 320 --sd-start-rpm 12 --growth 1.35 --step-seconds 12 --refine 2
              python3 benchmarks/h200_bench.py --phases sd-cuda --out "$OUT-slo1.5" --budget 230 --slo 1.5 --sd-start-rpm 20 --growth 1.4 --step-seconds 12 --refine 2 ;;
  levers)     timeout 560 python3 benchmarks/h200_levers.py --work /tmp/hb --out "$OUT" --images 4 --budget 520 ;;
  # the server with every lever at its default, steps of >= 300 requests, the breaking point
  # repeated with two other arrival seeds; then re-measure one rate alone (here 200/min, seed 7)
  calibrate)  python3 benchmarks/h200_bench.py --phases build,sd-triton-levers --work /tmp/hb --out "$OUT" --budget 580 --sd-triton-start-rpm 200 --growth 1.25 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 ;;
  confirm)    python3 benchmarks/h200_bench.py --phases build,sd-triton-levers --work /tmp/hb --out "$OUT" --budget 580 --sd-triton-start-rpm 200 --max-rpm 200 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 --seed 7 ;;
  # the UNet step at 2 images (the breaking point's mean batch), as CUDA graph replays: FP8, cuDNN attention, autotune
  # (run 2026-11-29: the FP8 variant's compilation hung past the command's limit and took the rest
  # with it; levers3 runs each variant in its own process with a time limit)
  levers2)    timeout 570 python3 benchmarks/h200_levers.py --work /tmp/hb --out "$OUT" --images 2 --budget 550 --skip-vae --variants fused_qkv,fused_qkv_fp8,fused_qkv_cudnn_attention,fused_qkv_autotune ;;
  levers3)    timeout 575 python3 benchmarks/h200_levers.py --work /tmp/hb --out "$OUT" --images 2 --budget 560 --skip-vae --skip-eager --variant-timeout 150 --variants fused_qkv_cudnn_attention,fused_qkv_fp8,fused_qkv_autotune ;;
  # the whole denoising step captured as a CUDA graph per batch size (HWAI_STEP_GRAPHS, the default)
  graphs)     python3 benchmarks/h200_bench.py --phases build,sd-triton-graphs --work /tmp/hb --out "$OUT" --budget 585 --sd-triton-start-rpm 250 --growth 1.25 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 --ready-timeout 240 ;;
  # static shapes: one compilation and one graph per bucket (2, 4, 8), a batch padded to its bucket
  static)     python3 benchmarks/h200_bench.py --phases build,sd-triton-static --work /tmp/hb --out "$OUT" --budget 570 --sd-triton-start-rpm 280 --growth 1.2 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 --ready-timeout 330 ;;
  # the batch bound (HWAI_LATENCY_TARGET_S 0.85 s): not yet run on the GPU
  bounded)    python3 benchmarks/h200_bench.py --phases build,sd-triton-bounded --work /tmp/hb --out "$OUT" --budget 555 --sd-triton-start-rpm 250 --growth 1.2 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 --ready-timeout 240 ;;
  # the UNet step's time against the batch (static shapes, graph replay) with a kernel breakdown at 8
  # images; the same under Inductor's max-autotune; the drift of the linears in float8 (per-row scales
  # on bf16 weights, per-tensor on fp16), whose compilation did not finish in 215 s (run of 2026-11-29)
  scaling)    timeout 215 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/fp16" --sizes 8,4,12 --profile-size 8 --budget 200 || true
              timeout 190 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/autotune" --mode max-autotune-no-cudagraphs --sizes 8 || true
              timeout 60 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/fp8row" --dtype bfloat16 --fp8 row --sizes "" || true
              timeout 60 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/fp8tensor" --fp8 tensor --sizes "" || true ;;
  # next (not run yet): the server's dynamic-batch compilation against the static curve, plain and
  # channels-last (Inductor lays convolutions out channels-last only for static shapes)
  layouts)    timeout 280 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/dynamic" --dynamic --sizes 2,4,8,12 --budget 270 || true
              timeout 280 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/dynamic-cl" --dynamic --channels-last --sizes 2,4,8,12 --budget 270 || true ;;
  # a static graph for every batch size 2..8 (1 runs as 2), compiled in parallel into Inductor's
  # cache first (--prefill), so that the server starts in minutes; START_RPM=R to begin elsewhere, and
  # START_RPM=R MAX_RPM=R to measure rate R alone, three times (its repeats)
  static-all) python3 benchmarks/h200_bench.py --phases build,sd-triton-static --step-buckets 2,3,4,5,6,7,8 --prefill --work /tmp/hb --out "$OUT" --budget 570 --sd-triton-start-rpm "${START_RPM:-300}" --max-rpm "${MAX_RPM:-1000000}" --growth 1.15 --step-seconds 20 --refine 0 --repeat 2 --min-requests 300 --sd-max-batch 8 --ready-timeout 300 ;;
  # cuDNN's autotuner (each size timed with it off and on, same compiled code), and Inductor's
  # tuning options from diffusers' fast-diffusion guide, each on the static step at 8 images
  tuning)     timeout 230 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/default" --sizes 8,4,2 --cudnn-benchmark --budget 200 || true
              timeout 165 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/conv1x1-coord" --sizes 8 --cudnn-benchmark --inductor conv_1x1_as_mm=true,coordinate_descent_tuning=true || true
              timeout 150 python3 benchmarks/h200_scaling.py --work /tmp/hb --out "$OUT/freezing" --sizes 8 --cudnn-benchmark --inductor freezing=true || true ;;
  # FP8 op by op against fp16, the UNet at 8 images: every convolution (cuDNN's graph API,
  # nvidia-cudnn-frontend 1.16.0 carried in .whl/), linear (torch._scaled_mm) and attention (cuDNN's
  # sdpa_fp8), and the step that would give; FP8_SKIP=conv,linear to time only some kinds
  fp8-ops)    timeout 300 python3 benchmarks/h200_fp8_ops.py --work /tmp/hb --out "$OUT/fp8-ops" --images 8 --step-ms 31.35 ${FP8_SKIP:+--skip "$FP8_SKIP"} ;;
esac
