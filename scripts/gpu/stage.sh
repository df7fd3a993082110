#!/usr/bin/env bash
# stage.sh — prepare everything scripts/gpu-check.sh needs on a GPU node that
# has no Go toolchain and no internet, in one folder that git ignores.
#
#   scripts/gpu/stage.sh [--out DIR] [--reference DIR] [--with-train]
#
# Run on a machine with Go, cgo (gcc) and Python 3. It writes DIR (default
# gpu-stage/ in the repository root, listed in .gitignore):
#   bin/bench.gz bin/embed.gz     the XLA build (go build -tags xla), stripped
#   bin/train.gz                  with --with-train
#   py/open_clip py/ftfy py/wcwidth   OpenCLIP's source for the peer step,
#                                 from the pinned wheels in openclip-requirements.txt
#   reference/tiny/               config.json, weights.safetensors and
#                                 cases.safetensors of an OpenCLIP reference
#                                 model (--reference DIR), for the f32 parity check
#   MANIFEST                      commit, Go version, sizes
# and refuses to finish above 60 MiB (a GPU node takes 64 MiB with the checkout).
# Then, on the GPU node, from the repository root: scripts/gpu-check.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/gpu-stage"
reference=""
with_train=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --reference) reference="$2"; shift 2 ;;
    --with-train) with_train=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "stage.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
limit_mib=60

rm -rf "$out"
mkdir -p "$out/bin" "$out/py"
cd "$root"

echo "# building the XLA binaries (cgo)"
cmds=(./cmd/bench ./cmd/embed)
[[ $with_train == 1 ]] && cmds+=(./cmd/train)
CGO_ENABLED=1 go build -tags xla -ldflags "-s -w" -o "$out/bin/" "${cmds[@]}"
gzip -9 "$out"/bin/*

echo "# OpenCLIP source (pinned wheels, unpacked)"
cache="${STAGE_CACHE:-$root/.gpu-stage-cache}"
if [[ ! -x "$cache/venv/bin/pip" ]]; then
  python3 -m venv "$cache/venv"
fi
"$cache/venv/bin/pip" download --quiet --no-deps --require-hashes \
  -r "$root/scripts/gpu/openclip-requirements.txt" -d "$cache/wheels"
for whl in "$cache"/wheels/*.whl; do
  "$cache/venv/bin/python" -m zipfile -e "$whl" "$out/py/"
done
# Only the packages are needed; the wheels' metadata and open_clip_train stay behind.
rm -rf "$out"/py/*.dist-info "$out/py/open_clip_train"

if [[ -n "$reference" ]]; then
  echo "# reference model for the f32 parity check: $reference"
  mkdir -p "$out/reference/tiny"
  for f in config.json weights.safetensors cases.safetensors; do
    [[ -f "$reference/$f" ]] || { echo "stage.sh: $reference has no $f" >&2; exit 1; }
    cp "$reference/$f" "$out/reference/tiny/"
  done
else
  echo "# no --reference: gpu-check.sh will skip the f32 parity check"
fi

{
  echo "commit $(git -C "$root" rev-parse HEAD)$(git -C "$root" diff --quiet || echo ' (with uncommitted changes)')"
  echo "go $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
  echo "staged $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  (cd "$out" && find . -type f -name '*.gz' -exec sha256sum {} +)
} > "$out/MANIFEST"

size_kib=$(du -sk "$out" | cut -f1)
echo "# staged $out: $((size_kib / 1024)) MiB"
du -sh "$out"/* | sed 's/^/#   /'
if (( size_kib > limit_mib * 1024 )); then
  echo "stage.sh: $((size_kib / 1024)) MiB is over the $limit_mib MiB a GPU node takes" >&2
  exit 1
fi
