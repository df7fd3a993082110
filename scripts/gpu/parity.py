"""Compares bmca's features with OpenCLIP's fp32 reference and prints one JSON line.

  python3 parity.py REFERENCE_CASES.safetensors BMCA_OUT.safetensors LABEL [TOLERANCE]

REFERENCE_CASES holds image_features, text_features and logits_per_image from
OpenCLIP (float32); BMCA_OUT is what cmd/embed wrote for the same pixels and
tokens. "pass" is whether the largest absolute difference of the features is
within TOLERANCE (default 1e-4, what f32 must reach on every backend).
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    ref, got = load_file(sys.argv[1]), load_file(sys.argv[2])
    tol = float(sys.argv[4]) if len(sys.argv) == 5 else 1e-4
    rec = {"side": "parity", "label": sys.argv[3], "tolerance": tol}
    worst = 0.0
    for key in ("image_features", "text_features", "logits_per_image"):
        a, b = got[key].astype(np.float64), ref[key].astype(np.float64)
        if a.shape != b.shape:
            sys.exit(f"parity: {key} has shape {a.shape}, the reference {b.shape}")
        rec[key + "_max_abs"] = float(np.abs(a - b).max())
        if key != "logits_per_image":
            worst = max(worst, rec[key + "_max_abs"])
    rec["pass"] = worst <= tol
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
