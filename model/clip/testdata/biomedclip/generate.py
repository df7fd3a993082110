"""Reference outputs of the real open_clip / timm / transformers code for
BiomedCLIP-shaped OpenCLIP models: a timm ViT image tower (TimmModel) and a
Hugging Face BERT text tower (HFTextEncoder), with random weights.

    python generate.py tiny  [--out DIR]   # the committed references (a few hundred KB)
    python generate.py full  [--out DIR]   # BiomedCLIP's shape, ~0.8 GB, not committed
    python generate.py check-export DIR [--reference DIR]
        # load a checkpoint bmca exported (open_clip_config.json +
        # open_clip_model.safetensors) into open_clip with strict=True and
        # compare its features on the reference's inputs (default: tiny/)

Run it through generate.sh, which builds the pinned environment.

Each output folder holds an OpenCLIP checkpoint (open_clip_config.json,
open_clip_model.safetensors) and:
  cases.safetensors          inputs (pixels, tokens) and final outputs
  intermediates.safetensors  per-layer outputs (forward hooks)
  variants.json / .safetensors (tiny only) other pooler / head settings:
      each variant's model config, the tensors it does not share with the
      main model, and its features on the same inputs.

Weights are random but not OpenCLIP's initialisation: every LayerNorm gain
is 1 + N(0, 0.2²) and every bias N(0, 0.2²), so a dropped affine or bias
shows; matrices are N(0, 1/fan_in).

OpenCLIP builds the HF tower with AutoConfig.from_pretrained(hf_model_name).
Here hf_model_name points at a local folder holding the text model's
config.json, so nothing is downloaded; the saved open_clip_config.json
names the model ("bmca-tiny-bert", or BiomedCLIP's
"microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract") and, for tiny,
carries its config.json under "hf_text_config" as bmca's own checkpoints
do. The full model's text config is transformers' BertConfig() defaults,
which is what BiomedBERT-base-uncased-abstract publishes.
"""
import argparse
import copy
import json
import logging
import os
import sys
import tempfile

import numpy as np
import torch
import open_clip
import timm
import transformers
from safetensors.torch import load_file, save_file
from timm.models import register_model
from timm.models.vision_transformer import _create_vision_transformer

TINY_VIT = "vit_bmca_tiny_patch8_32"
# timm warns that the test model has no pretrained-weights entry; it needs none.
logging.getLogger("timm.models._builder").setLevel(logging.ERROR)
TINY_BERT = "bmca-tiny-bert"
BIOMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"


@register_model
def vit_bmca_tiny_patch8_32(pretrained=False, **kwargs):
    """vit_base_patch16_224's structure (timm's VisionTransformer defaults),
    shrunk: 32 px, 8 px patches, width 32, 2 blocks of 2 heads."""
    args = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    return _create_vision_transformer(TINY_VIT, pretrained=pretrained, **dict(args, **kwargs))


def tiny_bert_config():
    return transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=24, type_vocab_size=2,
        layer_norm_eps=1e-12, pad_token_id=0, hidden_act="gelu")


def tiny_model_cfg(**vision_over):
    cfg = {
        "embed_dim": 24,
        "vision_cfg": {
            "timm_model_name": TINY_VIT, "timm_model_pretrained": False,
            "timm_pool": "", "timm_proj": "linear", "image_size": 32,
            # OpenCLIP ignores these for timm towers; bmca reads the shape
            # of a timm model it does not know from them.
            "patch_size": 8, "width": 32, "layers": 2, "head_width": 16,
        },
        "text_cfg": {
            "hf_model_name": TINY_BERT, "hf_tokenizer_name": TINY_BERT,
            "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 16,
        },
    }
    cfg["vision_cfg"].update(vision_over)
    return cfg


def full_model_cfg():
    # BiomedCLIP's open_clip_config.json model_cfg, as published on the Hub.
    return {
        "embed_dim": 512,
        "vision_cfg": {
            "timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False,
            "timm_pool": "", "timm_proj": "linear", "image_size": 224,
        },
        "text_cfg": {
            "hf_model_name": BIOMEDBERT, "hf_tokenizer_name": BIOMEDBERT,
            "hf_proj_type": "mlp", "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 256,
        },
    }


PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


class Builder:
    """Builds open_clip models from model_cfg dicts, pointing hf_model_name
    at a local folder holding the text model's config.json."""

    def __init__(self, bert_config):
        self.tmp = tempfile.TemporaryDirectory()
        self.bert_dir = os.path.join(self.tmp.name, "bert")
        bert_config.save_pretrained(self.bert_dir)
        self.cfg_dir = os.path.join(self.tmp.name, "cfg")
        os.makedirs(self.cfg_dir)
        self.n = 0

    def build(self, model_cfg):
        local = copy.deepcopy(model_cfg)
        if "hf_model_name" in local["text_cfg"]:
            local["text_cfg"]["hf_model_name"] = self.bert_dir
            local["text_cfg"]["hf_tokenizer_name"] = self.bert_dir
        self.n += 1
        name = f"bmca-ref-{self.n}"
        with open(os.path.join(self.cfg_dir, name + ".json"), "w") as f:
            json.dump(local, f)
        open_clip.add_model_config(self.cfg_dir)
        model = open_clip.create_model(name, pretrained_hf=False, precision="fp32", device="cpu")
        model.eval()
        return model


def randomize(model, gen):
    """Draws every parameter so that each one changes the output."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                continue
            leaf = name.rsplit(".", 1)[-1]
            if p.ndim == 1 and leaf == "weight":  # LayerNorm gains
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:  # biases
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif "embeddings" in name or name.endswith(("cls_token", "pos_embed")):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            else:  # matrices and the patch convolution: N(0, 1/fan_in)
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def bert_tokens(gen, batch, length, vocab):
    """Rows shaped like BERT WordPiece output: [CLS]=2 … [SEP]=3, padded with
    [PAD]=0; one row fills the context, one is only [CLS] [SEP], and one
    holds a 0 in the middle (OpenCLIP masks every pad id, wherever it is)."""
    rows = []
    lengths = [length // 2 + 1, length, 2] + [int(x) for x in torch.randint(3, length, (max(batch - 3, 0),), generator=gen)]
    for n in lengths[:batch]:
        body = torch.randint(5, vocab, (n - 2,), generator=gen).tolist()
        rows.append([2] + body + [3] + [0] * (length - n))
    if batch >= 4:
        rows[3][2] = 0
    return torch.tensor(rows, dtype=torch.int64)


def capture(model, pixels, tokens):
    """Runs both towers with forward hooks; returns per-layer outputs."""
    out = {}
    hooks = []

    def keep(name):
        def hook(_module, _inputs, output):
            if isinstance(output, tuple):
                output = output[0]
            out[name] = output.detach().clone()
        return hook

    def on(module, name):
        hooks.append(module.register_forward_hook(keep(name)))

    v, t = model.visual, model.text
    on(v.trunk.patch_embed, "visual.trunk.patch_embed")
    on(v.trunk.norm_pre, "visual.trunk.embed")  # after cls token and pos_embed (norm_pre is Identity)
    for i, blk in enumerate(v.trunk.blocks):
        on(blk, f"visual.trunk.blocks.{i}")
    on(v.trunk.norm, "visual.trunk.norm")
    on(v.trunk, "visual.trunk")  # pooled trunk features
    on(v, "visual")
    on(t.transformer.embeddings, "text.transformer.embeddings")
    for i, layer in enumerate(t.transformer.encoder.layer):
        on(layer, f"text.transformer.encoder.layer.{i}")
    on(t.pooler, "text.pooler")
    on(t, "text")
    with torch.no_grad():
        model.encode_image(pixels)
        model.encode_text(tokens)
    for h in hooks:
        h.remove()
    return out


def features(model, pixels, tokens):
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(tokens)
        img_n = torch.nn.functional.normalize(img, dim=-1)
        txt_n = torch.nn.functional.normalize(txt, dim=-1)
        logits = model.logit_scale.exp() * img_n @ txt_n.T
    return {
        "image_features": img, "text_features": txt,
        "image_features_normalized": img_n, "text_features_normalized": txt_n,
        "logits_per_image": logits, "logit_scale": model.logit_scale.detach().reshape(1),
    }


def contiguous(d):
    return {k: v.contiguous() for k, v in d.items()}


def write_checkpoint(out, model_cfg, model, hf_text_config=None):
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": PREPROCESS}
    if hf_text_config is not None:
        cfg["hf_text_config"] = hf_text_config
    with open(os.path.join(out, "open_clip_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    save_file(contiguous(model.state_dict()), os.path.join(out, "open_clip_model.safetensors"), metadata={"format": "pt"})


def bert_config_dict(cfg):
    keys = ["model_type", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "intermediate_size", "hidden_act", "max_position_embeddings", "type_vocab_size",
            "layer_norm_eps", "pad_token_id", "position_embedding_type"]
    d = cfg.to_dict()
    return {k: d[k] for k in keys if k in d}


# Pooler / head settings the tiny model is also run with: (name, changes to
# model_cfg, which tower's features to keep).
TINY_VARIANTS = [
    ("text-linear-mean", {"text_cfg": {"hf_proj_type": "linear", "hf_pooler_type": "mean_pooler"}}, "text"),
    ("text-mlp-clspooler", {"text_cfg": {"hf_pooler_type": "cls_pooler"}}, "text"),
    ("text-none-default", {"embed_dim": 32, "text_cfg": {"hf_proj_type": None, "hf_pooler_type": None}}, "text"),
    ("text-defaults", {"text_cfg": {"hf_proj_type": "<drop>", "hf_pooler_type": "<drop>"}}, "text"),
    ("vision-avg-linear-bias", {"vision_cfg": {"timm_pool": "avg", "timm_proj_bias": True}}, "image"),
    ("vision-token-mlp", {"vision_cfg": {"timm_pool": "token", "timm_proj": "mlp"}}, "image"),
    ("vision-avg-trunkhead", {"vision_cfg": {"timm_pool": "avg", "timm_proj": None}}, "image"),
    ("vision-max-trunkhead", {"vision_cfg": {"timm_pool": "max", "timm_proj": ""}}, "image"),
    ("vision-token-none", {"embed_dim": 32, "vision_cfg": {"timm_pool": "token", "timm_proj": "none"}}, "image"),
    ("vision-defaults", {"vision_cfg": {"timm_pool": "<drop>", "timm_proj": "<drop>"}}, "image"),
    # The main model's shape with its embeddings shrunk, so that the first
    # LayerNorms see variances near their eps (timm 1e-6, BERT 1e-12) and
    # another eps would show.
    ("vision-lowvar", {}, "image"),
    ("text-lowvar", {}, "text"),
]

# Factors the low-variance variants scale the main model's tensors by.
LOWVAR = {
    "vision-lowvar": {"visual.trunk.cls_token": 1e-3, "visual.trunk.pos_embed": 1e-3,
                      "visual.trunk.patch_embed.proj.weight": 1e-3, "visual.trunk.patch_embed.proj.bias": 1e-3},
    "text-lowvar": {"text.transformer.embeddings.word_embeddings.weight": 1e-6,
                    "text.transformer.embeddings.position_embeddings.weight": 1e-6,
                    "text.transformer.embeddings.token_type_embeddings.weight": 1e-6},
}


def apply_changes(cfg, changes):
    cfg = copy.deepcopy(cfg)
    for key, value in changes.items():
        if isinstance(value, dict):
            for k, v in value.items():
                if v == "<drop>":
                    cfg[key].pop(k, None)
                else:
                    cfg[key][k] = v
        else:
            cfg[key] = value
    return cfg


def generate(kind, out):
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(20260415)
    os.makedirs(out, exist_ok=True)
    if kind == "tiny":
        bert_cfg, model_cfg = tiny_bert_config(), tiny_model_cfg()
        n_img, n_txt = 3, 5
    else:
        bert_cfg, model_cfg = transformers.BertConfig(), full_model_cfg()
        n_img, n_txt = 2, 2
    builder = Builder(bert_cfg)
    model = builder.build(model_cfg)
    randomize(model, gen)
    size = model_cfg["vision_cfg"]["image_size"]
    pixels = torch.randn((n_img, 3, size, size), generator=gen)
    tokens = bert_tokens(gen, n_txt, model_cfg["text_cfg"]["context_length"], bert_cfg.vocab_size)

    write_checkpoint(out, model_cfg, model, bert_config_dict(bert_cfg) if kind == "tiny" else None)
    cases = {"pixels": pixels, "tokens": tokens}
    cases.update(features(model, pixels, tokens))
    save_file(contiguous(cases), os.path.join(out, "cases.safetensors"), metadata={"format": "pt"})
    save_file(contiguous(capture(model, pixels, tokens)), os.path.join(out, "intermediates.safetensors"), metadata={"format": "pt"})
    print(f"{kind}: {sum(p.numel() for p in model.parameters())} parameters, {len(model.state_dict())} tensors -> {out}")

    if kind != "tiny":
        return
    main_sd = model.state_dict()
    variants, extras = {}, {}
    for name, changes, tower in TINY_VARIANTS:
        vcfg = apply_changes(model_cfg, changes)
        vm = builder.build(vcfg)
        randomize(vm, gen)
        sd = vm.state_dict()
        shared = {k: main_sd[k] for k, v in sd.items() if k in main_sd and main_sd[k].shape == v.shape}
        for k, factor in LOWVAR.get(name, {}).items():
            del shared[k]
            sd[k] = main_sd[k] * factor
        vm.load_state_dict(shared, strict=False)
        vm.load_state_dict({k: sd[k] for k in LOWVAR.get(name, {})}, strict=False)
        for k, v in vm.state_dict().items():
            if k not in shared:
                extras[f"{name}/{k}"] = v
        f = features(vm, pixels, tokens)
        extras[f"{name}/{tower}_features"] = f[f"{tower}_features"]
        variants[name] = {"model_cfg": vcfg, "tower": tower}
    with open(os.path.join(out, "variants.json"), "w") as fh:
        json.dump(variants, fh, indent=2)
        fh.write("\n")
    save_file(contiguous(extras), os.path.join(out, "variants.safetensors"), metadata={"format": "pt"})
    print(f"tiny: {len(variants)} variants")


def check_export(export_dir, reference_dir):
    """Loads a bmca export into open_clip (strict) and compares features."""
    with open(os.path.join(export_dir, "open_clip_config.json")) as f:
        cfg = json.load(f)
    if "hf_text_config" not in cfg:
        sys.exit("the export has no hf_text_config: cannot build the text tower offline")
    bert_cfg = transformers.BertConfig(**cfg["hf_text_config"])
    builder = Builder(bert_cfg)
    model = builder.build(cfg["model_cfg"])
    missing_unexpected = open_clip.load_checkpoint(model, os.path.join(export_dir, "open_clip_model.safetensors"), strict=True)
    cases = load_file(os.path.join(reference_dir, "cases.safetensors"))
    got = features(model, cases["pixels"], cases["tokens"])
    worst = 0.0
    for k in ("image_features", "text_features", "logits_per_image"):
        d = (got[k] - cases[k]).abs().max().item()
        worst = max(worst, d)
        print(f"{k}: max abs diff {d:.3g}")
    print(f"loaded with strict=True ({missing_unexpected}); worst {worst:.3g}")
    if worst > 1e-4:
        sys.exit("export differs from the reference")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["tiny", "full", "check-export"])
    ap.add_argument("dir", nargs="?", help="check-export: the exported checkpoint folder")
    ap.add_argument("--out", help="output folder (default: tiny/ or full/ next to this script)")
    ap.add_argument("--reference", help="check-export: reference folder with cases.safetensors (default: tiny/)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"open_clip {open_clip.__version__}, timm {timm.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
    here = os.path.dirname(os.path.abspath(__file__))
    if args.what == "check-export":
        if not args.dir:
            ap.error("check-export needs the exported folder")
        check_export(args.dir, args.reference or os.path.join(here, "tiny"))
        return
    generate(args.what, args.out or os.path.join(here, args.what))


if __name__ == "__main__":
    main()
