#!/usr/bin/env bash
# gpu-check.sh — bmca next to OpenCLIP on one GPU node, one run, one table.
#
# Prepare on a machine with Go (cgo) and Python, from the repository root:
#   scripts/gpu/stage.sh --reference DIR   # DIR: an OpenCLIP reference model
#                                          # (config.json, weights.safetensors, cases.safetensors)
# which fills gpu-stage/ (ignored by git, under 60 MiB). Copy the checkout with
# gpu-stage/ to the GPU node and run there, from the repository root:
#   scripts/gpu-check.sh                   # about 5 minutes on an H200
#
# It never downloads: bmca's XLA binaries come from gpu-stage/bin, the CUDA
# PJRT plugin from the node's JAX install, OpenCLIP's source from gpu-stage/py
# (torch, torchvision, numpy, safetensors, regex and tqdm from the node).
# Steps, each under its own timeout, a failure noted and the run continued:
#   1. plugin and GPU, then a tiny bmca step (fails in seconds on an incompatible plugin)
#   2. f32 parity: cmd/embed on the reference cases vs OpenCLIP's fp32 features,
#      within 1e-4 (and tf32's distance, for information)
#   3. ViT-B-16 in bf16, tf32 and f32, ViT-L-14 in bf16 and tf32, batch 256:
#      bmca's bench and OpenCLIP's own training step side by side
#   4. the summary table (step time, TFLOP/s and share of the chip's peak,
#      device memory, compile time) and results.jsonl
#
# Options:
#   --quick      ViT-B-16 only (bf16 and tf32)
#   --dump       also dump XLA's optimised ViT-B-16 bf16 step and summarise its
#                kernels and matrix products (scripts/gpu/hlo_summary.py)
#   --nsys       also profile 3 ViT-B-16 bf16 steps under Nsight Systems, if
#                installed, and list the top kernels by GPU time
#   --jax        also time the same step written in JAX (scripts/gpu/jax_clip_step.py)
#                on the node's JAX, the XLA control
#   --cpu        no GPU: the tiny model on the CPU backends of both sides, to
#                check the script itself end to end
#   --dry-run    print the commands instead of running them
# Environment: STAGE (default gpu-stage), RESULTS (default gpu-results/<time>),
# PYTHON (default python3; JAX_PYTHON for --jax, default PYTHON), BATCH (default 256), PEAK_TFLOPS (default 790,
# an H200's dense bf16), PLUGIN_DIR (where xla_cuda_plugin.so is; found from JAX).
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0 dump=0 nsys=0 jax=0 cpu=0 dry=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;; --dump) dump=1 ;; --nsys) nsys=1 ;; --jax) jax=1 ;;
    --cpu) cpu=1 ;; --dry-run) dry=1 ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "gpu-check.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done
STAGE=${STAGE:-gpu-stage}
RESULTS=${RESULTS:-gpu-results/$(date -u +%Y%m%dT%H%M%SZ)}
PYTHON=${PYTHON:-python3}
JAX_PYTHON=${JAX_PYTHON:-$PYTHON}
BATCH=${BATCH:-256}
PEAK_TFLOPS=${PEAK_TFLOPS:-790}
here=$(pwd)
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
log="$RESULTS/results.jsonl"
: > "$log"
failures=()

say() { echo "# $*"; }
# run LOG CMD...: print the command; unless --dry-run, run it with its output in LOG.
run() {
  local log=$1; shift
  echo "+ $*"
  [[ $dry == 1 ]] || "$@" > "$log" 2>&1
}

# Binaries: the staged XLA build, unpacked into a temporary folder.
for b in bench embed; do
  if [[ -f "$STAGE/bin/$b.gz" ]]; then
    gunzip -c "$STAGE/bin/$b.gz" > "$BIN/$b" && chmod +x "$BIN/$b"
  elif [[ $dry == 0 ]]; then
    echo "gpu-check.sh: no $STAGE/bin/$b.gz: run scripts/gpu/stage.sh on a machine with Go first" >&2
    exit 1
  fi
done
export PYTHONPATH="$here/$STAGE/py${PYTHONPATH:+:$PYTHONPATH}"
export GOMLX_NO_AUTO_INSTALL=1

if [[ $cpu == 1 ]]; then
  unset GOMLX_BACKEND
  models=(tiny) batch=8 steps=2 device=cpu
  precisions=(bf16 tf32 f32)
  say "CPU dry run: tiny model, batch $batch, pure-Go backend and OpenCLIP on the CPU"
else
  PLUGIN_DIR=${PLUGIN_DIR:-$("$PYTHON" -c 'import importlib, os
for name in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    try:
        m = importlib.import_module(name); print(os.path.dirname(m.__file__)); break
    except ImportError:
        pass')}
  PLUGIN="$PLUGIN_DIR/xla_cuda_plugin.so"
  if [[ ! -f "$PLUGIN" && $dry == 0 ]]; then
    echo "gpu-check.sh: CUDA PJRT plugin not found (looked in '$PLUGIN_DIR'); set PLUGIN_DIR" >&2
    exit 1
  fi
  export GOMLX_BACKEND="xla:$PLUGIN,preallocate=false"
  SITE=$(dirname "$(dirname "$PLUGIN_DIR")")
  for cuda in "$SITE/nvidia/cu13" "$SITE/nvidia/cuda_nvcc"; do
    if [[ -x "$cuda/bin/ptxas" ]]; then
      export XLA_FLAGS="--xla_gpu_cuda_data_dir=$cuda ${XLA_FLAGS:-}"
      break
    fi
  done
  export GOPJRT_CUDA_CHECKS=0
  models=(ViT-B-16 ViT-L-14) batch=$BATCH steps=8 device=cuda
  [[ $quick == 1 ]] && models=(ViT-B-16)
  say "plugin: $PLUGIN"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
say "results: $RESULTS"

# gpu_used_mib prints the GPU's used memory in MiB (0 without nvidia-smi).
gpu_used_mib() {
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1 || echo 0
}

# bench NAME TIMEOUT ARGS...: cmd/bench --json, its peak device memory
# (nvidia-smi, sampled every 0.5 s, above what was in use before) and the
# compiled step's temporaries (XLA's compile log) added to the record.
bench() {
  local name=$1 limit=$2; shift 2
  local out="$RESULTS/$name.json" err="$RESULTS/$name.stderr"
  echo "+ timeout $limit bench --json --log-compile $*"
  [[ $dry == 1 ]] && return 0
  local base peak=0 v
  base=$(gpu_used_mib)
  timeout "$limit" "$BIN/bench" --json --log-compile "$@" > "$out" 2> "$err" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    v=$(gpu_used_mib)
    [[ -n "$v" && "$v" =~ ^[0-9]+$ && $v -gt $peak ]] && peak=$v
    sleep 0.5
  done
  if ! wait "$pid"; then
    failures+=("bmca $name")
    echo "  FAILED: bmca $name (see $err)"; tail -3 "$err" | sed 's/^/  | /'
    return 0
  fi
  local tags=(side=bmca case="$name")
  [[ $cpu == 0 ]] && tags+=(device_mem_mib=$((peak - base)))
  local temp
  temp=$("$PYTHON" scripts/gpu/summary.py xlamem "$err")
  [[ -n "$temp" ]] && tags+=(xla_temp_gib="$temp")
  "$PYTHON" scripts/gpu/summary.py tag "${tags[@]}" < "$out" | tee -a "$log"
}

# peer NAME TIMEOUT ARGS...: OpenCLIP's training step.
peer() {
  local name=$1 limit=$2; shift 2
  echo "+ timeout $limit openclip_step.py $*"
  [[ $dry == 1 ]] && return 0
  if ! timeout "$limit" "$PYTHON" scripts/gpu/openclip_step.py --device "$device" "$@" > "$RESULTS/$name.json" 2> "$RESULTS/$name.stderr"; then
    failures+=("OpenCLIP $name")
    echo "  FAILED: OpenCLIP $name (see $RESULTS/$name.stderr)"; tail -3 "$RESULTS/$name.stderr" | sed 's/^/  | /'
    return 0
  fi
  tee -a "$log" < "$RESULTS/$name.json"
}

say "1. smoke: one tiny step"
bench smoke 180 --model tiny --batch-size 8 --steps 1

say "2. f32 parity against OpenCLIP's fp32 reference"
ref="$STAGE/reference/tiny"
if [[ -f "$ref/cases.safetensors" ]]; then
  for p in f32 tf32; do
    tol=1e-4
    [[ $p == tf32 ]] && tol=1e-2 # tf32 is not meant to be exact: its distance is reported
    run "$RESULTS/embed-$p.log" timeout 120 "$BIN/embed" --precision "$p" --checkpoint "$ref/weights.safetensors" --model-config "$ref/config.json" \
      --pixels "$ref/cases.safetensors:pixels" --tokens "$ref/cases.safetensors:tokens" --output "$RESULTS/embed-$p.safetensors" \
      || { failures+=("embed $p"); tail -3 "$RESULTS/embed-$p.log"; continue; }
    if [[ $dry == 0 ]]; then
      "$PYTHON" scripts/gpu/parity.py "$ref/cases.safetensors" "$RESULTS/embed-$p.safetensors" "embed $p" "$tol" | tee -a "$log"
    fi
  done
else
  say "no $ref/cases.safetensors (stage.sh --reference DIR): parity skipped"
  failures+=("parity not run")
fi

say "3. training steps, batch $batch: bmca and OpenCLIP"
declare -A peer_precision=([bf16]=amp_bf16 [tf32]=tf32 [f32]=fp32)
for model in "${models[@]}"; do
  precisions=(bf16 tf32 f32)
  [[ $model == ViT-L-14 || $quick == 1 ]] && precisions=(bf16 tf32)
  [[ $cpu == 1 ]] && precisions=(bf16 tf32 f32)
  oc_model=$model
  [[ $cpu == 1 ]] && oc_model=configs/models/$model.json
  for p in "${precisions[@]}"; do
    limit=150
    [[ $model == ViT-L-14 ]] && limit=200
    bench "$model-$p" "$limit" --model "$model" --batch-size "$batch" --precision "$p" --steps "$steps"
    peer "openclip-$model-${peer_precision[$p]}" 150 --model "$oc_model" --batch "$batch" --precision "${peer_precision[$p]}" --steps "$steps"
  done
done

if [[ $dump == 1 && $cpu == 1 ]]; then
  say "--dump needs the XLA backend: skipped in a CPU run"
elif [[ $dump == 1 ]]; then
  say "XLA dump of the ViT-B-16 bf16 step"
  model=${models[0]}
  rm -rf "$RESULTS/xla-dump"
  run "$RESULTS/dump.log" env XLA_FLAGS="${XLA_FLAGS:-} --xla_dump_to=$RESULTS/xla-dump --xla_dump_hlo_as_text" \
    timeout 200 "$BIN/bench" --model "$model" --batch-size "$batch" --precision bf16 --steps 1 \
    || { failures+=("XLA dump"); tail -3 "$RESULTS/dump.log"; }
  if [[ $dry == 0 ]]; then
    "$PYTHON" scripts/gpu/hlo_summary.py "$RESULTS/xla-dump" | tee "$RESULTS/hlo-summary.txt" || failures+=("HLO summary")
    tail -1 "$RESULTS/hlo-summary.txt" >> "$log"
    # Keep the step's optimised program (gzipped), not the whole dump.
    step=$(ls -S "$RESULTS"/xla-dump/*after_optimizations.txt 2>/dev/null | head -1)
    [[ -n "$step" ]] && gzip -c "$step" > "$RESULTS/step-after-optimizations.hlo.txt.gz"
    rm -rf "$RESULTS/xla-dump"
  fi
fi

if [[ $nsys == 1 ]]; then
  if command -v nsys >/dev/null; then
    say "Nsight Systems: 3 ViT-B-16 bf16 steps"
    run "$RESULTS/nsys.log" timeout 300 nsys profile --force-overwrite true -o "$RESULTS/nsys-b16-bf16" \
      "$BIN/bench" --model "${models[0]}" --batch-size "$batch" --precision bf16 --steps 3 \
      || failures+=("nsys profile")
    run "$RESULTS/nsys-kernels.txt" timeout 120 nsys stats --report cuda_gpu_kern_sum --format table "$RESULTS/nsys-b16-bf16.nsys-rep" \
      || failures+=("nsys stats")
    [[ $dry == 1 ]] || head -30 "$RESULTS/nsys-kernels.txt"
  else
    say "nsys not installed: profile skipped (with Nsight Compute instead: ncu --launch-skip 2000 --launch-count 200 bench --model ViT-B-16 ...)"
  fi
fi

if [[ $jax == 1 ]]; then
  say "JAX control: the same step in JAX on the node's XLA"
  for p in bf16 tf32; do
    jmodel=${models[0]}
    [[ $cpu == 1 ]] && jmodel=configs/models/tiny.json
    echo "+ timeout 200 jax_clip_step.py --model $jmodel --batch $batch --precision $p --steps $steps"
    if [[ $dry == 0 ]]; then
      timeout 200 "$JAX_PYTHON" scripts/gpu/jax_clip_step.py --model "$jmodel" --batch "$batch" --precision "$p" --steps "$steps" \
        > "$RESULTS/jax-$p.json" 2> "$RESULTS/jax-$p.stderr" && tee -a "$log" < "$RESULTS/jax-$p.json" \
        || { failures+=("JAX $p"); tail -3 "$RESULTS/jax-$p.stderr"; }
    fi
  done
fi

say "summary"
if [[ $dry == 0 ]]; then
  "$PYTHON" scripts/gpu/summary.py table "$log" "$PEAK_TFLOPS" | tee "$RESULTS/summary.md"
fi
if [[ ${#failures[@]} -gt 0 ]]; then
  say "not complete: ${failures[*]}"
  exit 1
fi
