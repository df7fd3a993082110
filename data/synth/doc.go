// Package synth writes the demo's synthetic "biomedical-looking" dataset: small
// images whose visible attributes (modality, object shape, object count and
// position of the object cluster) are exactly what their captions describe, as
// WebDataset tar shards plus held-out zero-shot and retrieval tasks.
//
// It needs no download and no GPU: everything is drawn from one seed, so the
// same Config always yields byte-identical shards. Write is idempotent and
// atomic; a second call with the same Config returns the existing dataset.
//
//	m, err := synth.Write(ctx, "runs/demo/data", synth.DefaultConfig())
//	// m.Train.Shards: train/train-000000.tar … (members KEY.png, KEY.txt, KEY.json)
//	// m.Tasks: modality, shape, count, position (zero-shot) and retrieval
//
// Output layout under dir:
//
//	MANIFEST.json                  config, config hash, tasks, SHA-256 of every file
//	train/train-000000.tar …       KEY.png, KEY.txt (caption), KEY.json (attributes)
//	train/sizes.json               shard basename → sample count (OpenCLIP convention)
//	eval/<task>-000000.tar …       held-out samples of one zero-shot task, classes
//	                               balanced: KEY.png, KEY.txt, KEY.json, KEY.cls
//	                               (class index, decimal text)
//	eval/retrieval-000000.tar …    held-out image–caption pairs: KEY.png, KEY.txt, KEY.json
//
// Held-out samples come from random streams disjoint from the training stream,
// so no held-out image is a training image. Render and Caption expose the
// generator of one sample for tests and other packages.
package synth
