"""Checks bmca's exports in the libraries that load them (see check-exports.sh).

  check_exports.py inputs  --openclip DIR --out inputs.safetensors
      random preprocessed pixels [N,3,S,S] and caption tokens [M,L] for the
      exported model (S and L from its open_clip_config.json); each caption
      is SOT, random byte ids, EOT (the largest id), padding, as bmca's
      byte-level tokenizer writes them.
  check_exports.py compare --openclip DIR --hf DIR --inputs F --ours F [--tol T]
      loads both exports, encodes the inputs, prints one JSON object with the
      library versions and the largest absolute feature differences from
      bmca's (embed's image_features/text_features), exits 1 when a load
      fails or a difference exceeds the tolerance.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file


def model_cfg(openclip_dir):
    with open(os.path.join(openclip_dir, "open_clip_config.json")) as f:
        return json.load(f)["model_cfg"]


def make_inputs(args):
    cfg = model_cfg(args.openclip)
    size, ctx, vocab = cfg["vision_cfg"]["image_size"], cfg["text_cfg"]["context_length"], cfg["text_cfg"]["vocab_size"]
    rng = np.random.default_rng(17)
    pixels = rng.standard_normal((5, 3, size, size), dtype=np.float32)
    sot, eot = vocab - 2, vocab - 1
    tokens = np.zeros((4, ctx), dtype=np.int64)
    for i, n in enumerate([0, 3, 11, ctx - 2]):
        tokens[i, 0] = sot
        tokens[i, 1:n + 1] = rng.integers(1, 257, n)
        tokens[i, n + 1] = eot
    save_file({"pixels": pixels, "tokens": tokens}, args.out)


def max_abs(a, b):
    return float((a.float() - b.float()).abs().max())


def with_hf(args, pixels, tokens):
    import transformers
    from transformers import CLIPModel

    model = CLIPModel.from_pretrained(args.hf).eval()
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pixels)
        txt = model.get_text_features(input_ids=tokens)
    # transformers 5 returns an output object, 4.x a tensor.
    img, txt = getattr(img, "pooler_output", img), getattr(txt, "pooler_output", txt)
    return transformers.__version__, img, txt


def with_openclip(args, pixels, tokens):
    import open_clip

    # Register the exported model config under a name, then load the
    # weights through open_clip's own strict checkpoint loading.
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "bmca-export.json"), "w") as f:
            json.dump(model_cfg(args.openclip), f)
        open_clip.add_model_config(d)
        model = open_clip.create_model("bmca-export", pretrained=os.path.join(args.openclip, "open_clip_model.safetensors"),
                                       device="cpu").eval()
    with torch.no_grad():
        img, txt = model.encode_image(pixels), model.encode_text(tokens)
    return open_clip.__version__, img, txt


def compare(args):
    inputs, ours = load_file(args.inputs), load_file(args.ours)
    pixels, tokens = inputs["pixels"], inputs["tokens"]
    report, ok = {"torch": torch.__version__, "tolerance": args.tol}, True
    for name, run in [("transformers", with_hf), ("open_clip", with_openclip)]:
        try:
            version, img, txt = run(args, pixels, tokens)
        except Exception as e:  # a refused export is the finding, reported as such
            report[name] = {"error": f"{type(e).__name__}: {e}"[:600]}
            ok = False
            continue
        entry = {"version": version, "image_max_abs_diff": max_abs(img, ours["image_features"]),
                 "text_max_abs_diff": max_abs(txt, ours["text_features"])}
        ok = ok and entry["image_max_abs_diff"] <= args.tol and entry["text_max_abs_diff"] <= args.tol
        report[name] = entry
    report["ok"] = ok
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("inputs")
    i.add_argument("--openclip", required=True)
    i.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    for flag in ("--openclip", "--hf", "--inputs", "--ours"):
        c.add_argument(flag, required=True)
    c.add_argument("--tol", type=float, default=1e-4)
    args = p.parse_args()
    if args.cmd == "inputs":
        make_inputs(args)
        return 0
    return compare(args)


if __name__ == "__main__":
    sys.exit(main())
