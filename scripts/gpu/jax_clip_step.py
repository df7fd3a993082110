"""The XLA control: OpenCLIP's CLIP training step written directly in JAX.

Same architecture as bmca and OpenCLIP (pre-norm ViT with class token, causal
text transformer pooled at the EOT token, exact GELU, learnable logit scale,
symmetric contrastive loss, AdamW), one jitted step with the parameters and
AdamW state donated. Run on the GPU node's JAX it shows what XLA itself makes
of this step on the same PJRT plugin bmca uses, which separates "bmca's graph
asks for too much" from "XLA is slower than cuBLAS/cuDNN here". Prints one
JSON line. Plain JAX only (no Flax or Optax, which the node may lack).

  python3 jax_clip_step.py --model ViT-B-16 --batch 256 --precision bf16 --steps 10
  python3 jax_clip_step.py --model configs/models/tiny.json --batch 8 --precision f32 --steps 2

--model: a name under configs/models or a path to an OpenCLIP model JSON.
--precision: bf16 (matrix-product operands in bfloat16, float32 accumulation
and everything else float32; attention through jax.nn.dot_product_attention,
cuDNN flash attention on a GPU), tf32 (float32, TF32 products: XLA's default
precision on a GPU), f32 (float32, products at precision HIGHEST).
"""
import argparse
import json
import math
import os
import time

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))


def load_config(model):
    path = model if model.endswith(".json") else os.path.join(HERE, "..", "..", "configs", "models", model + ".json")
    with open(path) as f:
        c = json.load(f)
    v, t = c["vision_cfg"], c["text_cfg"]
    v.setdefault("head_width", 64)
    v.setdefault("mlp_ratio", 4.0)
    t.setdefault("mlp_ratio", 4.0)
    return c["embed_dim"], v, t


def init_params(key, embed, v, t):
    keys = iter(jax.random.split(key, 4096))
    normal = lambda shape, std: std * jax.random.normal(next(keys), shape, jnp.float32)

    def blocks(width, layers, mlp):
        attn_std, proj_std, fc_std = width ** -0.5, (width ** -0.5) * ((2 * layers) ** -0.5), (2 * width) ** -0.5
        out = []
        for _ in range(layers):
            out.append({
                "ln_1": (jnp.ones(width), jnp.zeros(width)), "ln_2": (jnp.ones(width), jnp.zeros(width)),
                "in_proj": (normal((3 * width, width), attn_std), jnp.zeros(3 * width)),
                "out_proj": (normal((width, width), proj_std), jnp.zeros(width)),
                "c_fc": (normal((mlp, width), fc_std), jnp.zeros(mlp)),
                "c_proj": (normal((width, mlp), proj_std), jnp.zeros(width)),
            })
        return out

    vw, p = v["width"], v["patch_size"]
    grid = v["image_size"] // p
    tw = t["width"]
    return {
        "visual": {
            "conv1": normal((vw, 3 * p * p), (3 * p * p) ** -0.5),
            "class_embedding": normal((vw,), vw ** -0.5),
            "positional_embedding": normal((grid * grid + 1, vw), vw ** -0.5),
            "ln_pre": (jnp.ones(vw), jnp.zeros(vw)), "ln_post": (jnp.ones(vw), jnp.zeros(vw)),
            "blocks": blocks(vw, v["layers"], int(vw * v["mlp_ratio"])),
            "proj": normal((vw, embed), vw ** -0.5),
        },
        "text": {
            "token_embedding": normal((t["vocab_size"], tw), 0.02),
            "positional_embedding": normal((t["context_length"], tw), 0.01),
            "blocks": blocks(tw, t["layers"], int(tw * t["mlp_ratio"])),
            "ln_final": (jnp.ones(tw), jnp.zeros(tw)),
            "text_projection": normal((tw, embed), tw ** -0.5),
        },
        "logit_scale": jnp.array(math.log(1 / 0.07), jnp.float32),
    }


def make_step(embed, v, t, precision, batch):
    half = precision == "bf16"
    dot_precision = jax.lax.Precision.HIGHEST if precision == "f32" else jax.lax.Precision.DEFAULT
    on_gpu = jax.devices()[0].platform == "gpu"

    def mm(x, w):  # x [..., in] @ w[out, in]^T, autocast-style operands
        if half:
            x, w = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
        y = jnp.einsum("...i,oi->...o", x, w, precision=dot_precision, preferred_element_type=jnp.float32 if not half else None)
        return y.astype(jnp.float32)

    def ln(x, wb):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * wb[0] + wb[1]

    def attention(x, blk, heads, causal):
        b, l, w = x.shape
        qkv = mm(x, blk["in_proj"][0]) + blk["in_proj"][1]
        q, k, vv = jnp.split(qkv.reshape(b, l, 3, heads, w // heads), 3, axis=2)
        q, k, vv = (a[:, :, 0] for a in (q, k, vv))  # [B, L, H, D]
        if half:
            q, k, vv = q.astype(jnp.bfloat16), k.astype(jnp.bfloat16), vv.astype(jnp.bfloat16)
        impl = "cudnn" if half and on_gpu else None
        with jax.default_matmul_precision("highest" if precision == "f32" else "default"):
            o = jax.nn.dot_product_attention(q, k, vv, is_causal=causal, implementation=impl)
        return mm(o.reshape(b, l, w).astype(jnp.float32), blk["out_proj"][0]) + blk["out_proj"][1]

    def tower(x, blocks, heads, causal):
        for blk in blocks:
            x = x + attention(ln(x, blk["ln_1"]), blk, heads, causal)
            h = jax.nn.gelu(mm(ln(x, blk["ln_2"]), blk["c_fc"][0]) + blk["c_fc"][1], approximate=False)
            x = x + mm(h, blk["c_proj"][0]) + blk["c_proj"][1]
        return x

    def encode_image(pv, pixels):
        p, s = v["patch_size"], v["image_size"]
        g = s // p
        x = pixels.reshape(batch, 3, g, p, g, p).transpose(0, 2, 4, 1, 3, 5).reshape(batch, g * g, 3 * p * p)
        x = mm(x, pv["conv1"])
        cls = jnp.broadcast_to(pv["class_embedding"], (batch, 1, v["width"]))
        x = jnp.concatenate([cls, x], axis=1) + pv["positional_embedding"]
        x = tower(ln(x, pv["ln_pre"]), pv["blocks"], v["width"] // v["head_width"], False)
        return mm(ln(x[:, 0], pv["ln_post"]), pv["proj"].T)

    def encode_text(pt, tokens):
        x = pt["token_embedding"][tokens] + pt["positional_embedding"]
        x = ln(tower(x, pt["blocks"], t["heads"], True), pt["ln_final"])
        pooled = x[jnp.arange(batch), tokens.argmax(-1)]
        return mm(pooled, pt["text_projection"].T)

    def loss_fn(params, pixels, tokens):
        img = encode_image(params["visual"], pixels)
        txt = encode_text(params["text"], tokens)
        img = img / jnp.linalg.norm(img, axis=-1, keepdims=True)
        txt = txt / jnp.linalg.norm(txt, axis=-1, keepdims=True)
        logits = jnp.exp(params["logit_scale"]) * jnp.einsum("ie,te->it", img, txt, precision=dot_precision)
        labels = jnp.arange(batch)
        ce = lambda lg: -jnp.take_along_axis(jax.nn.log_softmax(lg, -1), labels[:, None], -1).mean()
        return (ce(logits) + ce(logits.T)) / 2

    def decays(path, leaf):  # OpenCLIP: no decay for gains, biases, logit_scale
        return leaf.ndim >= 2

    b1, b2, eps, wd, lr = 0.9, 0.98, 1e-6, 0.2, 1e-5

    def step(params, m, s, count, pixels, tokens):
        loss, grads = jax.value_and_grad(loss_fn)(params, pixels, tokens)
        count = count + 1
        c1, c2 = 1 - b1 ** count, 1 - b2 ** count
        m = jax.tree.map(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        s = jax.tree.map(lambda a, g: b2 * a + (1 - b2) * g * g, s, grads)
        mask = jax.tree_util.tree_map_with_path(decays, params)
        params = jax.tree.map(lambda p, a, q, d: p * (1 - lr * wd * d) - lr * (a / c1) / (jnp.sqrt(q / c2) + eps),
                              params, m, s, mask)
        params["logit_scale"] = jnp.clip(params["logit_scale"], 0, math.log(100))
        return params, m, s, count, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--precision", choices=["bf16", "tf32", "f32"], required=True)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    embed, v, t = load_config(a.model)
    key = jax.random.PRNGKey(0)
    params = init_params(key, embed, v, t)
    m = jax.tree.map(jnp.zeros_like, params)
    s = jax.tree.map(jnp.zeros_like, params)
    count = jnp.array(0, jnp.float32)
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    pixels = jax.random.normal(k1, (a.batch, 3, v["image_size"], v["image_size"]), jnp.float32)
    tokens = jax.random.randint(k2, (a.batch, t["context_length"]), 1, t["vocab_size"] - 2)
    tokens = tokens.at[:, t["context_length"] // 2].set(t["vocab_size"] - 1)
    step = make_step(embed, v, t, a.precision, a.batch)

    start = time.perf_counter()
    params, m, s, count, loss = step(params, m, s, count, pixels, tokens)
    loss.block_until_ready()
    first = time.perf_counter() - start
    params, m, s, count, loss = step(params, m, s, count, pixels, tokens)
    loss.block_until_ready()
    start = time.perf_counter()
    for _ in range(a.steps):
        params, m, s, count, loss = step(params, m, s, count, pixels, tokens)
    loss.block_until_ready()
    per = (time.perf_counter() - start) / a.steps
    name = os.path.splitext(os.path.basename(a.model))[0]
    rec = {"side": "jax", "model": name, "batch": a.batch, "precision": a.precision, "jax": jax.__version__,
           "device": str(jax.devices()[0]), "first_step_s": round(first, 3), "step_ms": round(1000 * per, 2),
           "samples_per_s": round(a.batch / per, 1), "loss": round(float(loss), 4)}
    stats = jax.devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        rec["peak_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 2)
    print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
