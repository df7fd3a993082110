#!/usr/bin/env bash
# Regenerates eval/tasks/testdata/multilabel_sklearn.json: multi-label
# average precision and ROC AUC computed by pinned scikit-learn, the
# independent reference eval/tasks' multi-label metrics are tested against.
# Runs in a virtual environment of its own (VENV overrides where).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r "$here/requirements.txt"
mkdir -p "$root/eval/tasks/testdata"
"$venv/bin/python" "$here/make_reference.py" > "$root/eval/tasks/testdata/multilabel_sklearn.json"
