#!/usr/bin/env bash
# Compile the seed's models for the neuron backend with optimum-neuron's own exporter
# (optimum-cli export neuron). Run it on an inf2 or trn1 machine (the compiler targets the chip it
# runs on; --instance_type says which), inside the Neuron image so that the SDK and optimum-neuron
# are the ones the server runs with:
#
#   docker run --rm --device /dev/neuron0 -v "$PWD/compiled:/compiled" -e HF_TOKEN \
#     --entrypoint bash hwai-models:neuron /app/scripts/neuron-compile.sh /compiled [MODEL...]
#
# (or `bash scripts/neuron-compile.sh OUT [MODEL...]` in any Python 3.11 env with the Neuron SDK
# 2.26 and locks/neuron.lock installed). Each model lands in OUT/<name>; serve it with
# HWAI_BACKEND=neuron HWAI_MODEL_DIR=OUT/<name>, or push the folder to a hub repository and set
# HWAI_MODEL_ID. The server reads every static shape (batch, sequence length, image size) from the
# artifact; a raw checkpoint is refused. Sizes below are overridable through the environment.
set -euo pipefail

out=${1:?usage: neuron-compile.sh OUT_DIR [sd21|llama-3.2-1b|mistral-7b|distilbert|vit|yolos ...]}
shift
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(sd21 llama-3.2-1b mistral-7b distilbert vit yolos)

instance=${NEURON_INSTANCE_TYPE:-inf2}     # inf2 | trn1 (| trn2)
cores=${NEURON_CORES:-2}                   # tensor parallel degree of the LLMs (inf2.xlarge: 2 cores)
read -r -a extra <<< "${NEURON_EXPORT_FLAGS:-}"  # e.g. --disable_neuron_cache (no hub compile cache)
mkdir -p "$out"

export_neuron() { # name, then optimum-cli arguments
  local name=$1; shift
  echo "== $name -> $out/$name"
  optimum-cli export neuron --instance_type "$instance" ${extra[@]+"${extra[@]}"} "$@" "$out/$name"
}

for m in "${models[@]}"; do
  case $m in
    sd21)        # UNet compiled for 2 x batch (classifier-free guidance), loaded on both cores
      export_neuron sd21 --model "${SD_MODEL:-stabilityai/stable-diffusion-2-1}" --task text-to-image \
        --batch_size "${SD_BATCH:-1}" --height "${SD_SIZE:-512}" --width "${SD_SIZE:-512}" --num_images_per_prompt 1 \
        --auto_cast matmul --auto_cast_type bf16 ;;
    llama-3.2-1b)
      export_neuron llama-3.2-1b --model "${LLAMA_MODEL:-meta-llama/Llama-3.2-1B-Instruct}" --task text-generation \
        --batch_size "${LLM_BATCH:-4}" --sequence_length "${LLM_SEQUENCE:-4096}" --num_cores "$cores" --torch_dtype bfloat16 ;;
    mistral-7b)
      export_neuron mistral-7b --model "${MISTRAL_MODEL:-mistralai/Mistral-7B-Instruct-v0.3}" --task text-generation \
        --batch_size "${LLM_BATCH:-4}" --sequence_length "${LLM_SEQUENCE:-4096}" --num_cores "$cores" --torch_dtype bfloat16 ;;
    distilbert)  # sentiment: inputs are truncated to this sequence length by the server
      export_neuron distilbert --model "${DISTILBERT_MODEL:-distilbert/distilbert-base-uncased-finetuned-sst-2-english}" --task text-classification \
        --batch_size "${ENCODER_BATCH:-8}" --sequence_length "${ENCODER_SEQUENCE:-128}" ;;
    vit)         # image size from the checkpoint's config (224x224)
      export_neuron vit --model "${VIT_MODEL:-google/vit-base-patch16-224}" --task image-classification --batch_size "${ENCODER_BATCH:-8}" ;;
    yolos)       # image size from the checkpoint's config (800x1333): the server resizes every image to it
      export_neuron yolos --model "${YOLOS_MODEL:-hustvl/yolos-small}" --task object-detection --batch_size "${YOLOS_BATCH:-1}" ;;
    *) echo "unknown model $m (sd21 llama-3.2-1b mistral-7b distilbert vit yolos)" >&2; exit 2 ;;
  esac
done
