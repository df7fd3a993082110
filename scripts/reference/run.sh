#!/usr/bin/env bash
# run.sh — run openclip_train_step.py in its own virtual environment, built
# once from the pinned requirements.txt next to it (VENV, default
# scripts/reference/.venv, ignored by git).
#
#   scripts/reference/run.sh micro --out internal/cli/testdata/openclip-train-step/micro
#   scripts/reference/run.sh run --model ../shared/reference/openclip/tiny \
#       --batches ../shared/reference/openclip/train-step/tiny-v2/batches.safetensors \
#       --rule openclip2 --accum 2 --out tiny-v2-accum2
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/openclip_train_step.py" "$@"
