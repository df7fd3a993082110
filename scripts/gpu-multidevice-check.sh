#!/usr/bin/env bash
# gpu-multidevice-check.sh — data parallelism over the GPUs of one node, in
# a few minutes. It is separate from gpu-check.sh (one GPU, speed) and runs
# on a node with any number of GPUs:
#   1. the multi-device tests of train/ on the CUDA plugin: the partitioned
#      step on a one-GPU mesh is bit-identical to the plain step; where the
#      node has 2 or 4 GPUs, 3 steps on them match 3 steps on one GPU, and a
#      checkpoint written on 2 GPUs resumes on 4 with the same weights (these
#      skip, saying so, on a one-GPU node);
#   2. ViT-B-16 train steps/s on 1 GPU and on all of them, the same global
#      batch (bench --devices), bf16.
#
# Build on a machine with Go (cgo for XLA), copy bin/ over, run from the
# repository root:
#   CGO_ENABLED=1 go build -tags xla -o bin/ ./cmd/bench
#   CGO_ENABLED=1 go test -c -tags xla -o bin/train-xla.test ./train
#   scripts/gpu-multidevice-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-bin}
for f in bench train-xla.test; do
  [[ -x "$BIN/$f" ]] || { echo "no $BIN/$f: build it as the header of this script says" >&2; exit 1; }
done
PLUGIN_DIR=${PLUGIN_DIR:-$(python3 -c 'import importlib, os
for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    try:
        m = importlib.import_module(name); print(os.path.dirname(m.__file__)); break
    except ImportError:
        pass')}
PLUGIN="$PLUGIN_DIR/xla_cuda_plugin.so"
[[ -f "$PLUGIN" ]] || { echo "CUDA PJRT plugin not found (looked in '$PLUGIN_DIR'); set PLUGIN_DIR" >&2; exit 1; }
export GOMLX_NO_AUTO_INSTALL=1 GOPJRT_CUDA_CHECKS=0
export GOMLX_BACKEND="xla:$PLUGIN,preallocate=false"
export BMCA_TEST_XLA_BACKEND="$GOMLX_BACKEND"
GPUS=$(nvidia-smi --query-gpu=name --format=csv,noheader | wc -l)
echo "plugin: $PLUGIN; $GPUS GPU(s)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

echo "# 1. multi-device tests (tiny model; 2- and 4-device cases skip on fewer GPUs)"
(cd train && timeout 400 "../$BIN/train-xla.test" -test.v -test.count=1 \
  -test.run 'TestOneDeviceMeshIsBitIdentical|TestDataParallelMatchesOneDevice|TestResumeOnAnotherDeviceCount|TestLoweredStepAllReducesGradients|TestUnevenBatchIsRefused' \
  | grep -E '^(=== RUN|--- |\s+devices_xla_test|PASS|FAIL|ok)')

echo "# 2. ViT-B-16 bf16, global batch 256·GPUs: one GPU, then all $GPUS"
B=$((256 * GPUS))
timeout 150 "$BIN/bench" --json --model ViT-B-16 --precision bf16 --batch-size 256 --steps 5 --devices 1
if ((GPUS > 1)); then
  timeout 200 "$BIN/bench" --json --model ViT-B-16 --precision bf16 --batch-size "$B" --steps 5 --devices "$GPUS"
fi
echo "# scaling = samples_per_s(all GPUs) / samples_per_s(one GPU); ideal $GPUS"
