#!/usr/bin/env bash
# gpu-check.sh — one short check of bmca on a GPU node (under 5 minutes).
#
# Build on a machine with Go (the XLA backend needs cgo), copy bin/ over, run:
#   CGO_ENABLED=1 go build -tags xla -o bin/ ./cmd/bench ./cmd/train
#   scripts/gpu-check.sh            # on the GPU node, from the repository root
#
# It finds the CUDA PJRT plugin of the local JAX install (never downloads one),
# checks a tiny model compiles and runs, then measures train steps/s, samples/s,
# achieved TFLOP/s and peak host memory for the tiny model and ViT-B-16, in f32
# and in bf16-mixed (whose "attention" field must say "fused": cuDNN flash).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
if [[ ! -x "$BIN/bench" ]]; then
  if command -v go >/dev/null; then
    CGO_ENABLED=1 go build -tags xla -o "$BIN/" ./cmd/bench
  else
    echo "no $BIN/bench and no Go toolchain: build it elsewhere with CGO_ENABLED=1 go build -tags xla -o bin/ ./cmd/bench" >&2
    exit 1
  fi
fi

PLUGIN_DIR=${PLUGIN_DIR:-$(python3 -c 'import importlib, os
for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    try:
        m = importlib.import_module(name); print(os.path.dirname(m.__file__)); break
    except ImportError:
        pass')}
PLUGIN="$PLUGIN_DIR/xla_cuda_plugin.so"
[[ -f "$PLUGIN" ]] || { echo "CUDA PJRT plugin not found (looked in '$PLUGIN_DIR'); set PLUGIN_DIR" >&2; exit 1; }

export GOMLX_NO_AUTO_INSTALL=1
export GOMLX_BACKEND="xla:$PLUGIN,preallocate=false"
SITE=$(dirname "$(dirname "$PLUGIN_DIR")")
for cuda in "$SITE/nvidia/cu13" "$SITE/nvidia/cuda_nvcc"; do
  if [[ -x "$cuda/bin/ptxas" ]]; then
    export XLA_FLAGS="--xla_gpu_cuda_data_dir=$cuda ${XLA_FLAGS:-}"
    export GOPJRT_CUDA_CHECKS=0
    break
  fi
done
echo "plugin: $PLUGIN"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

run() { timeout "$1" "$BIN/bench" --json "${@:2}"; }
echo "# smoke: tiny model, 2 steps (fails fast on an incompatible plugin)"
run 120 --model tiny --batch 8 --steps 2
for precision in f32 bf16; do
  echo "# $precision: tiny and ViT-B-16, batch 256"
  run 60 --precision $precision --model tiny --batch 256 --steps 20
  run 90 --precision $precision --model ViT-B-16 --batch 256 --steps 5
done
echo "# MFU = gflops / 1000 / (dense peak TFLOP/s of the chip; about 790 for an H200 in bf16)"
