#!/bin/sh
# Makes the BiomedCLIP-shaped reference outputs with the real open_clip,
# timm and transformers code, in a virtual environment built from the
# pinned requirements.txt (created on first use at $BMCA_REF_VENV, default
# .venv next to this script).
#
#   ./generate.sh tiny                       # rewrite the committed tiny/ references
#   ./generate.sh full                       # BiomedCLIP's own shape into full/ (~0.8 GB, not committed)
#   ./generate.sh check-export DIR           # load a bmca export of tiny/ into open_clip
#                                            # (strict) and compare its features
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${BMCA_REF_VENV:-$here/.venv}
if [ ! -x "$venv/bin/python" ]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
exec "$venv/bin/python" "$here/generate.py" "$@"
