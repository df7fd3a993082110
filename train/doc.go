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
// A run is driven by Loop, which pulls batches from a resumable data source,
// reports every step to a callback (the command draws the progress bar),
// appends metrics as JSON lines, evaluates periodically and checkpoints every
// N steps, at the end, and when its context is cancelled (Ctrl-C).
//
//	result, err := train.Loop(ctx, backend, cfg, data, train.Hooks{OnStep: bar.Update})
package train
