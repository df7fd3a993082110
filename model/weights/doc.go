// Package weights reads and writes model weights as safetensors files: a
// name → tensor map (a StateDict) whose names are OpenCLIP's state-dict names,
// such as "visual.transformer.resblocks.3.attn.in_proj_weight" or
// "logit_scale".
//
// The format is the one of the Rust/Python safetensors library: an 8-byte
// little-endian header length, a JSON header mapping each name to its dtype,
// shape and byte range, an optional "__metadata__" string map, then the raw
// little-endian tensor bytes. Reading validates the whole header before any
// data is touched; writing is deterministic and atomic (temp file, fsync,
// rename, by package atomicfile), so a crash never leaves a half-written
// checkpoint behind.
//
//	sd, meta, err := weights.ReadFile("open_clip_model.safetensors")
//	scale, err := sd["logit_scale"].Float32s()
//	err = weights.WriteFile("out/open_clip_model.safetensors", sd, meta)
//
// For checkpoints too large to hold twice, Open lists the tensors from the
// header alone and reads them one at a time:
//
//	f, err := weights.Open(path)
//	defer f.Close()
//	for _, name := range f.Names() {
//		t, err := f.Tensor(name)
//		...
//	}
//
// The package does no printing and depends on nothing outside the standard
// library and package atomicfile.
package weights
