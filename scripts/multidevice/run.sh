#!/usr/bin/env bash
# run.sh — the multi-device tests of train/ on XLA's CPU plugin, on any
# machine with Go and a C compiler: no GPU needed. XLA's CPU client splits
# the host into DEVICES devices (default 4), and the tests train the tiny
# model on meshes of 1, 2 and 4 of them against the plain one-device step,
# resume a 2-device checkpoint on 4 devices, and read the partitioned
# program XLA runs for its all-reduces.
#
#   scripts/multidevice/run.sh                 # all the multi-device tests
#   scripts/multidevice/run.sh -run TestLowered -v
#
# The plugin comes from PyPI into a virtual environment built once from the
# pinned, hash-checked requirements.txt next to this script (VENV, default
# scripts/multidevice/.venv, ignored by git). Nothing else is downloaded:
# GOMLX_NO_AUTO_INSTALL is set. On a 2-core machine the run takes about
# 15 minutes, nearly all of it XLA compiling the tiny model's step graphs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
venv="${VENV:-$here/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-deps --require-hashes -r "$here/requirements.txt"
fi
plugin="$("$venv/bin/python" -c 'import lammps_jax_pjrt_cpu as p; print(p.PLUGIN_PATH)')"
export GOMLX_NO_AUTO_INSTALL=1
export BMCA_TEST_XLA_BACKEND="xla:$plugin"
export XLA_FLAGS="--xla_force_host_platform_device_count=${DEVICES:-4} ${XLA_FLAGS:-}"
args=("$@")
if [[ ${#args[@]} -eq 0 ]]; then
  args=(-v -run 'TestOneDeviceMeshIsBitIdentical|TestDataParallelMatchesOneDevice|TestResumeOnAnotherDeviceCount|TestLoweredStepAllReducesGradients|TestUnevenBatchIsRefused')
fi
CGO_ENABLED=1 go test -tags xla -count=1 -timeout 60m "${args[@]}" ./train/
