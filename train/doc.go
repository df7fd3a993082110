// Package train is bmca's training engine: OpenCLIP's recipe (AdamW with
// decay by open_clip 4.x's or 2.x's exclusion rule, see DecayRule,
// global-norm gradient clipping, warmup then
// cosine / constant / constant-with-cooldown learning rate, logit_scale
// clamped to [0, ln 100] after every step) compiled into one GoMLX graph per
// step, with atomic, resumable checkpoints in OpenCLIP's layout. Its step
// is checked against open_clip_train's own train_one_epoch (the parity
// tests of internal/cli), accumulation included: like OpenCLIP's, it
// counts logit_scale's gradient once per micro-batch.
//
// With Recipe.Devices > 1 every step graph is partitioned over that many
// devices of the backend by XLA's SPMD partitioner (data parallelism: the
// batch split, weights and optimiser state replicated, the loss and update
// those of the whole batch); see dataParallel and docs/multi-gpu.md.
//
// A run is driven by Loop, which pulls batches from a resumable data source
// (prefetched, and copied to the device, while the previous step runs),
// reports every step to a callback (the command draws the progress bar),
// appends metrics as JSON lines, evaluates periodically and checkpoints
// every N steps, at the end, and when its context is cancelled (Ctrl-C).
// How the towers compute, in the steps and in the evaluations alike, is the
// model configuration's Runtime (precision, gradient checkpointing):
//
//	cfg.Runtime = transformer.Runtime{Precision: transformer.BFloat16Mixed}
//	opts := train.Options{Output: dir, Steps: 1000, Schedule: schedule, Recipe: recipe, LogEvery: 10, Init: clip.Init(cfg, seed)}
//	result, err := train.Loop(ctx, backend, cfg, opts, data, train.Hooks{OnStep: bar.Update})
//
// Loop's parts, one file each: run.go (the run read top to bottom: set-up,
// the steps, the periodic evaluation and checkpoint, the stop policy),
// clock.go (step timing and data wait), metrics.go (metrics.jsonl),
// evaluate.go (the evaluation encoder) and prefetch.go.
package train
