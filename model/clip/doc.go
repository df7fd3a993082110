// Package clip assembles OpenCLIP's CLIP model from its two towers: the
// image tower (package vit, under the "visual" scope), the text tower
// (package textenc, at the root scope), the learnable logit_scale
// (initialised to ln(1/0.07), clamped to [0, ln 100] by the optimiser) and
// the symmetric contrastive loss (loss.go, OpenCLIP's ClipLoss).
//
// The configuration chooses other towers as OpenCLIP's does: a
// vision_cfg.timm_model_name puts a timm ViT (package timmvit) under
// "visual", and a text_cfg.hf_model_name a Hugging Face BERT (package
// hftext) under "text", OpenCLIP's CustomTextCLIP layout (towers.go).
//
// The model's parameters are a weights.StateDict with OpenCLIP's names; a
// Config (OpenCLIP's model-config JSON) lists them (Params), initialises
// them (Init) and moves them in and out of a GoMLX store (NewStore,
// StateDictFromStore). Encoder runs the towers for inference.
//
//	cfg, _ := clip.ParseConfigJSON(data)
//	store, _ := clip.NewStore(cfg, clip.Init(cfg, 42))
//	enc, _ := clip.NewEncoder(backend, store, cfg)
//	feats, _ := enc.EncodeImages(pixels, n) // [n, embed_dim], not normalised
package clip
