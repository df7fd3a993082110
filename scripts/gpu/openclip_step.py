"""OpenCLIP's own training step, timed: the peer bmca's bench is compared with.

One step is what open_clip_train's train_one_epoch does per batch without
accumulation: forward under the precision's autocast, ClipLoss, backward,
AdamW (OpenCLIP's defaults: betas 0.9/0.98, eps 1e-6, weight decay 0.2).
Prints one JSON line.

  python3 openclip_step.py --model ViT-B-16 --batch 256 --precision amp_bf16 --steps 10
  python3 openclip_step.py --model configs/models/tiny.json --batch 8 --precision fp32 --steps 2 --device cpu

--precision: amp_bf16 (bmca's bf16), tf32 (float32 weights and activations,
TF32 matrix products: what open_clip_train does for --precision fp32, as it
turns torch.backends.cuda.matmul.allow_tf32 on), fp32 (TF32 off: exact
float32, bmca's f32). --model takes a built-in name or an OpenCLIP model
config JSON (its file name, without .json, becomes the model name).
"""
import argparse
import json
import os
import time

import torch
import open_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--precision", choices=["amp_bf16", "tf32", "fp32"], required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()

    name = a.model
    if name.endswith(".json"):
        open_clip.add_model_config(a.model)
        name = os.path.splitext(os.path.basename(a.model))[0]
    tf32 = a.precision != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"

    torch.manual_seed(0)
    model = open_clip.create_model(name, precision="fp32", device=dev, output_dict=True)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "logit_scale" in n]
    opt = torch.optim.AdamW([{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": 0.2}],
                            lr=1e-5, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.loss.ClipLoss()

    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    ctx_len, vocab = model.context_length, model.vocab_size
    g = torch.Generator().manual_seed(1)
    images = torch.randn(a.batch, 3, size, size, generator=g).to(dev)
    texts = torch.randint(1, vocab - 2, (a.batch, ctx_len), generator=g)
    texts[:, ctx_len // 2] = vocab - 1  # the EOT token, which the text tower pools at
    texts = texts.to(dev)
    if a.precision == "amp_bf16":
        autocast = lambda: torch.autocast(dev.type, dtype=torch.bfloat16)
    else:
        autocast = lambda: torch.autocast(dev.type, enabled=False)

    def step():
        with autocast():
            out = model(images, texts)
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, 4.6052)
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t = time.perf_counter()
    step()
    sync()
    first = time.perf_counter() - t
    for _ in range(max(a.warmup - 1, 0)):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    sync()
    s = (time.perf_counter() - t) / a.steps
    rec = {"side": "openclip", "model": os.path.splitext(os.path.basename(a.model))[0] if a.model.endswith(".json") else a.model,
           "batch": a.batch, "precision": a.precision, "device": str(dev),
           "versions": f"open_clip {open_clip.__version__}, torch {torch.__version__}",
           "first_step_s": round(first, 3), "step_ms": round(1000 * s, 2),
           "samples_per_s": round(a.batch / s, 1), "loss": round(float(loss.detach()), 4)}
    if cuda:
        rec["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        rec["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
