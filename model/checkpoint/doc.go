// Package checkpoint loads an OpenCLIP CLIP model's weights from any format
// they are published in, checks them against the model config as PyTorch's
// load_state_dict(strict=True) does, and exports them back as OpenCLIP or
// Hugging Face checkpoints.
//
// Open is the one way every command (train --pretrained and --resume,
// eval, embed, export, merge) opens a checkpoint, so they all see the same
// model: its weights (read lazily), its model config and preprocessing
// (ModelConfig.Preprocess, from preprocess_cfg), and for a bmca training
// checkpoint its training state and run config (Checkpoint.Training,
// Optimizer). A bmca run directory resolves to its latest checkpoint
// (ResolveRun). Open takes local paths: the commands call it through
// cli.OpenCheckpoint, which first turns a hub reference (hf-hub:ORG/NAME)
// into its downloaded directory.
//
// Formats are detected from the bytes, never from the file name:
//
//   - safetensors with OpenCLIP names: open_clip_model.safetensors (OpenCLIP's
//     Hub layout, and bmca's own training checkpoints);
//   - torch.save files (zip, and the pre-1.6 stream): a bare state dict
//     (open_clip_pytorch_model.bin) or a training checkpoint
//     {"state_dict": {"module.visual.…": …}, "epoch": …, "optimizer": …};
//     as in OpenCLIP's load_checkpoint, a "state_dict" entry is unwrapped and
//     "module." (DDP) and "_orig_mod." (torch.compile) prefixes are stripped;
//   - transformers CLIPModel checkpoints (vision_model.* / text_model.* names,
//     split q/k/v, transposed projections) as model.safetensors,
//     pytorch_model.bin, or shards listed by a *.index.json; see package hf.
//
// A directory is searched for those files in OpenCLIP's order. The model
// config comes from Options.ModelConfig, else open_clip_config.json or
// config.json (OpenCLIP or transformers) next to the weights; a state dict
// does not hold the number of heads or the activation, so there is no
// guessing.
//
// Tensors stay in the file until needed and are read one at a time, so
// building the model's variables (NewStore) or exporting never holds two
// copies of the weights. Missing, unexpected and mis-shaped tensors are one
// *MismatchError listing all of them; Options.Partial accepts missing and
// unexpected ones (the missing keep a seeded initialisation), as
// strict=False does. Buffers that are not parameters (OpenAI's
// input_resolution/context_length/vocab_size, attn_mask, transformers'
// position_ids) are ignored, and a 1-element logit_scale is reshaped to the
// scalar the model has, as OpenCLIP does.
//
//	ck, err := checkpoint.Open("BMC_CLIP_CF.pt", checkpoint.Options{ModelConfig: &cfg})
//	ck, err := checkpoint.Open("runs/demo", checkpoint.Options{})  // its latest checkpoint; ck.Training.RunConfig
//	defer ck.Close()
//	store, err := ck.NewStore()                                   // for clip.NewEncoder
//	err = ck.Export("out", checkpoint.ExportOptions{Format: checkpoint.ExportOpenCLIP})
package checkpoint
