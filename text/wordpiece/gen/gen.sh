#!/usr/bin/env bash
# Regenerates the BERT WordPiece tokenizer's character tables (../tables.go)
# and its expected ids (../testdata/expected.jsonl.gz) from the Hugging Face
# libraries pinned in requirements.txt, in a virtual environment of its own.
#
#   text/wordpiece/gen/gen.sh CAPTIONS_DIR [VENV_DIR]
#
# CAPTIONS_DIR holds the ROCO captions (test/radiology/captions.txt, ...;
# the shared data's data/captions). VENV_DIR is reused when given, else a
# temporary one is made and removed. Needs python3 (3.11 made the committed
# files) with venv, and PyPI. Takes a few minutes: every code point is
# tokenized.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
captions=${1:?usage: gen.sh CAPTIONS_DIR [VENV_DIR]}
venv=${2:-}
if [ -z "$venv" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	venv=$tmp/venv
fi
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --requirement "$here/requirements.txt"
"$venv/bin/python" "$here/tables.py"
gofmt -w "$here/../tables.go"
"$venv/bin/python" "$here/refs.py" "$captions"
