"""OpenCLIP's own training steps, recorded for bmca's parity tests.

Runs open_clip_train.train.train_one_epoch (OpenCLIP's training loop, not a
re-implementation) for a few optimizer steps on given batches, twice: in
float32, as OpenCLIP trains, and in float64, as the reference. It writes, in
the layout of the shared "openclip/train-step" references:

  expected.safetensors  the state dict after the last step, computed in float64
                        (stored as float32)
  bounds.json           per tensor, max |float32 run - float64 run| over three
                        float32 runs (from the initial weights, and from them
                        scaled by 1 +- 2^-23): how far float32 arithmetic
                        alone lands from the reference
  steps.json            the hyper-parameters and, per step, lr, loss and the
                        gradient norm before clipping (from the float32 run)

The AdamW parameter groups follow one of two rules:
  openclip2  open_clip 2.x/3.x main.py: no decay for p.ndim < 2 or a name
             containing "bn", "ln", "bias" or "logit_scale"
  openclip4  open_clip 4.x: no decay for p.ndim <= 1 or a name in the model's
             no_weight_decay() (the positional and class embeddings)

Subcommands:
  run    --model DIR (config.json + weights.safetensors) --batches FILE --out DIR
         [--rule openclip2|openclip4] [--clip 1.0|none] [--accum K]
         [--logit-scale X]  (start from logit_scale X instead of the file's)
  micro  --out DIR: writes a micro model (config.json, weights.safetensors),
         its batches, and the references bmca commits: no gradient clipping
         under both rules, and clipping from a logit_scale of 4.7, above
         the clamp's ln(100)

With --accum K each batch of the file is split into K consecutive micro-batches
of B/K pairs and OpenCLIP's --accum-freq K path runs on them.

Run it through run.sh, which builds a virtual environment from the pinned
requirements.txt next to it.
"""

import argparse
import json
import math
import os
import types

import numpy as np
import open_clip
import torch
from open_clip_train import train as oc_train
from open_clip_train.scheduler import cosine_lr
from safetensors.torch import load_file, save_file

HYPER = {
    "lr": 1e-3,
    "warmup": 2,
    "schedule": "cosine",
    "weight_decay": 0.2,
    "betas": [0.9, 0.98],
    "eps": 1e-6,
}


def no_decay_rule(model, rule):
    if rule == "openclip2":
        return lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    if rule == "openclip4":
        names = model.no_weight_decay()
        return lambda n, p: p.ndim <= 1 or n in names
    raise ValueError(f"unknown rule {rule}")


class _Loader:
    """What train_one_epoch reads from a dataloader: iteration, num_batches, num_samples."""

    def __init__(self, pixels, tokens, accum):
        steps, batch = tokens.shape[0], tokens.shape[1]
        if batch % accum:
            raise ValueError(f"batch {batch} does not split into {accum} micro-batches")
        micro = batch // accum
        self.batches = []
        for s in range(steps):
            for j in range(accum):
                self.batches.append((pixels[s, j * micro:(j + 1) * micro], tokens[s, j * micro:(j + 1) * micro]))
        self.num_batches = len(self.batches)
        self.num_samples = steps * batch

    def __iter__(self):
        return iter(self.batches)


def train(cfg, init, pixels, tokens, rule, clip, accum, dtype):
    """Runs OpenCLIP's train_one_epoch in dtype; returns the final state dict and the per-step log."""
    model = open_clip.CLIP(**cfg, output_dict=True)
    model.load_state_dict(init, strict=True)
    model = model.to(dtype)
    exclude = no_decay_rule(model, rule)
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if exclude(n, p) and p.requires_grad], "weight_decay": 0.0},
            {"params": [p for n, p in named if not exclude(n, p) and p.requires_grad], "weight_decay": HYPER["weight_decay"]},
        ],
        lr=HYPER["lr"], betas=tuple(HYPER["betas"]), eps=HYPER["eps"],
    )
    steps = tokens.shape[0]
    schedule = cosine_lr(optimizer, HYPER["lr"], HYPER["warmup"], steps)
    log = [{"step": s + 1} for s in range(steps)]

    def scheduler(step):
        log[step]["lr"] = schedule(step)

    loss_fn = open_clip.ClipLoss()
    current = {"step": 0}

    def loss(**kw):
        out = loss_fn(**kw)
        # With accumulation every micro-batch computes the loss of the whole
        # accumulated batch; OpenCLIP logs the last one.
        log[current["step"]]["loss"] = out["contrastive_loss"].item()
        return out

    def grad_norm(parameters):
        grads = [p.grad for p in parameters if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item()

    real_clip = torch.nn.utils.clip_grad_norm_

    def recording_clip(parameters, *a, **kw):
        parameters = list(parameters)
        norm = real_clip(parameters, *a, **kw)
        log[current["step"]]["grad_norm"] = norm.item()
        return norm

    def pre_step(opt, args_, kwargs_):
        if clip is None:
            log[current["step"]]["grad_norm"] = grad_norm(model.parameters())

    def post_step(opt, args_, kwargs_):
        current["step"] += 1

    optimizer.register_step_pre_hook(pre_step)
    optimizer.register_step_post_hook(post_step)

    pixels_t = torch.from_numpy(pixels).to(dtype)
    tokens_t = torch.from_numpy(tokens.astype(np.int64))
    loader = _Loader(pixels_t, tokens_t, accum)
    data = {"train": types.SimpleNamespace(set_epoch=lambda e: None, dataloader=loader)}
    args = types.SimpleNamespace(
        device="cpu", precision="fp32", distill=False, accum_freq=accum, skip_scheduler=False,
        horovod=False, grad_clip_norm=clip, log_every_n_steps=1, world_size=1, rank=0, local_rank=0,
        batch_size=tokens.shape[1] // accum, wandb=False,
    )
    torch.nn.utils.clip_grad_norm_ = recording_clip
    try:
        oc_train.train_one_epoch(model, data, loss, 0, optimizer, None, scheduler, None, args)
    finally:
        torch.nn.utils.clip_grad_norm_ = real_clip
    if current["step"] != steps:
        raise RuntimeError(f"{current['step']} optimizer steps, want {steps}")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, log


def run(model_dir, batches_path, out, rule, clip, accum, logit_scale=None):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    init = load_file(os.path.join(model_dir, "weights.safetensors"))
    if logit_scale is not None:
        # A start above ln(100), as a loaded checkpoint may have: OpenCLIP
        # trains the first step with it and clamps only after the update.
        init["logit_scale"] = torch.tensor(logit_scale, dtype=init["logit_scale"].dtype)
    batches = load_file(batches_path)
    pixels, tokens = batches["pixels"].numpy(), batches["tokens"].numpy()
    sd64, _ = train(cfg, init, pixels, tokens, rule, clip, accum, torch.float64)
    sd32, log32 = train(cfg, init, pixels, tokens, rule, clip, accum, torch.float32)
    # One float32 run is one sample of float32 rounding. Where Adam divides
    # a near-zero gradient by its own square root it amplifies that rounding,
    # and another float32 implementation (or the same one from weights one
    # rounding step away) can land several times further off. Two more runs
    # from the initial weights scaled by 1 +- 2^-23 sample that spread.
    runs32 = [sd32] + [
        train(cfg, {k: v * f for k, v in init.items()}, pixels, tokens, rule, clip, accum, torch.float32)[0]
        for f in (1 + 2.0**-23, 1 - 2.0**-23)
    ]
    os.makedirs(out, exist_ok=True)
    save_file({k: v.to(torch.float32).contiguous() for k, v in sd64.items()}, os.path.join(out, "expected.safetensors"))
    bounds = {k: max((r[k].double() - sd64[k]).abs().max().item() for r in runs32) for k in sorted(sd64)}
    with open(os.path.join(out, "bounds.json"), "w") as f:
        json.dump(bounds, f, indent=0)
    moved = max((sd64[k] - init[k].double()).abs().max().item() for k in sd64)
    steps = {
        "open_clip": open_clip.__version__,
        "torch": torch.__version__,
        "steps": int(tokens.shape[0]),
        "batch": int(tokens.shape[1]),
        "accum_freq": accum,
        **HYPER,
        "grad_clip_norm": clip,
        "init_logit_scale": logit_scale,
        "wd_rule": rule,
        "logit_scale_clamp": [0, math.log(100)],
        "log": log32,
        "bounds": "per tensor, max |float32 - float64| over float32 runs from the initial weights and from them scaled by 1 +- 2^-23",
        "max_abs_f32_vs_f64": max(bounds.values()),
        "max_abs_moved_from_init": moved,
    }
    with open(os.path.join(out, "steps.json"), "w") as f:
        json.dump(steps, f, indent=1)
        f.write("\n")


# The micro model: every kind of parameter OpenCLIP's CLIP has (both
# positional embeddings, class embedding, projections, one block per tower),
# small enough to commit its weights and references.
MICRO = {
    "embed_dim": 16,
    "quick_gelu": False,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 16, "head_width": 8, "patch_size": 8},
    "text_cfg": {"context_length": 12, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
}


def micro(out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(MICRO, f, indent=2)
        f.write("\n")
    torch.manual_seed(7)
    model = open_clip.CLIP(**MICRO)
    # OpenCLIP's init leaves gains at 1 and biases at 0; perturb the 1-d
    # parameters so a port that ignores one of them cannot pass.
    gen = torch.Generator().manual_seed(8)
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim <= 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, "weights.safetensors"))

    steps, batch, ctx, vocab = 3, 6, MICRO["text_cfg"]["context_length"], MICRO["text_cfg"]["vocab_size"]
    gen = torch.Generator().manual_seed(9)
    pixels = torch.randn(steps, batch, 3, 16, 16, generator=gen)
    tokens = torch.zeros(steps, batch, ctx, dtype=torch.int32)
    for s in range(steps):
        for b in range(batch):
            n = int(torch.randint(1, ctx - 1, (1,), generator=gen))
            body = torch.randint(1, vocab - 2, (n,), generator=gen, dtype=torch.int32)
            tokens[s, b, : n + 2] = torch.cat([torch.tensor([vocab - 2], dtype=torch.int32), body, torch.tensor([vocab - 1], dtype=torch.int32)])
    save_file({"pixels": pixels, "tokens": tokens}, os.path.join(out, "batches.safetensors"))
    for rule in ("openclip2", "openclip4"):
        run(out, os.path.join(out, "batches.safetensors"), os.path.join(out, rule + "-noclip"), rule, None, 1)
    run(out, os.path.join(out, "batches.safetensors"), os.path.join(out, "openclip2-clip-scale4.7"), "openclip2", 1.0, 1, logit_scale=4.7)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", required=True)
    r.add_argument("--batches", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--rule", default="openclip4", choices=["openclip2", "openclip4"])
    r.add_argument("--clip", default="1.0", help="max gradient norm, or none")
    r.add_argument("--accum", type=int, default=1)
    r.add_argument("--logit-scale", type=float, default=None)
    m = sub.add_parser("micro")
    m.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)  # deterministic reductions
    if a.cmd == "run":
        clip = None if a.clip == "none" else float(a.clip)
        run(a.model, a.batches, a.out, a.rule, clip, a.accum, a.logit_scale)
    else:
        micro(a.out)


if __name__ == "__main__":
    main()
