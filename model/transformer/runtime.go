package transformer

// Runtime is how a stack computes, as opposed to its shape and weights:
// choices of a run that no checkpoint records. Its YAML keys are those of
// a run config's train section.
type Runtime struct {
	// Precision is the arithmetic of the matrix products (Float32 unless
	// set): f32, tf32 or bf16, or OpenCLIP's spellings fp32 and amp_bf16
	// (see ParsePrecision and the constants).
	Precision Precision `yaml:"precision"`
	// GradCheckpointing keeps only each residual block's input for the
	// backward pass and recomputes the rest of the block there (OpenCLIP's
	// --grad-checkpointing): activation memory drops from all of a block's
	// intermediates per layer to one [B, L, W] tensor per layer, for about
	// a third more compute. Gradients are unchanged.
	GradCheckpointing bool `yaml:"grad_checkpointing"`
}
