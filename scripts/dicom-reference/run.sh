#!/usr/bin/env bash
# Regenerates eval/prepare/dicom/testdata/reference/ from the committed DICOM
# test files with pinned pydicom, in a virtual environment of its own.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
mkdir -p "$root/eval/prepare/dicom/testdata/reference"
"$venv/bin/python" "$here/make_reference.py" "$root/eval/prepare/dicom/testdata"
