#!/usr/bin/env bash
# check-exports.sh — loads bmca's two export layouts in the libraries that
# consume them and compares their features with bmca's own.
#
#   scripts/check-exports.sh                  # creates .venv-exports from scripts/requirements-exports.txt
#   VENV=/path/to/venv scripts/check-exports.sh   # reuse a venv that already has the pinned packages
#
# It trains the demo model for a few steps (synthetic data, a minute on a
# laptop), exports it with `export` (OpenCLIP layout, and --format hf), runs
# `embed` on random pixels and caption tokens, then in Python loads
#   - the transformers export with CLIPModel.from_pretrained (the strict
#     config classes of transformers 5 check every field's type), and
#   - the OpenCLIP export with open_clip.create_model + its strict
#     load_checkpoint,
# and prints, as JSON, the largest absolute difference of each library's
# image and text features from bmca's. It exits 1 when a library refuses an
# export or a difference exceeds TOL (default 1e-4).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv-exports}
TOL=${TOL:-1e-4}
TORCH_INDEX=${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  torch=$(grep '^torch==' scripts/requirements-exports.txt)
  # The CPU-only wheel is a tenth of PyPI's (which bundles CUDA libraries);
  # where PyTorch's index cannot be reached, PyPI's does the same job.
  if ! "$VENV/bin/pip" install --quiet --retries 1 --timeout 20 --index-url "$TORCH_INDEX" "$torch"; then
    echo "check-exports: $TORCH_INDEX unreachable, installing $torch from PyPI (with CUDA libraries, several GB)" >&2
    "$VENV/bin/pip" install --quiet "$torch"
  fi
  "$VENV/bin/pip" install --quiet -r scripts/requirements-exports.txt
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/bin/" ./cmd/train ./cmd/export ./cmd/embed

"$WORK/bin/train" --config configs/demo.yaml --output "$WORK/run" \
  --set train.steps=3 --set train.batch_size=16 --set train.warmup=1 --set eval.suite= \
  --set data.synthetic.dir="$WORK/synth" --set data.synthetic.train_samples=64 \
  --set data.synthetic.eval_samples_per_task=4 >"$WORK/train.log" 2>&1 || { cat "$WORK/train.log"; exit 1; }
"$WORK/bin/export" --checkpoint "$WORK/run" --output "$WORK/openclip" >/dev/null
"$WORK/bin/export" --checkpoint "$WORK/run" --output "$WORK/hf" --format hf >/dev/null

"$VENV/bin/python" scripts/check_exports.py inputs --openclip "$WORK/openclip" --out "$WORK/inputs.safetensors"
"$WORK/bin/embed" --checkpoint "$WORK/run" --pixels "$WORK/inputs.safetensors:pixels" \
  --tokens "$WORK/inputs.safetensors:tokens" --output "$WORK/ours.safetensors" 2>/dev/null
"$VENV/bin/python" scripts/check_exports.py compare --openclip "$WORK/openclip" --hf "$WORK/hf" \
  --inputs "$WORK/inputs.safetensors" --ours "$WORK/ours.safetensors" --tol "$TOL"
