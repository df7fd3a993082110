package transformer

// Runtime is how a stack computes, as opposed to its shape and weights:
// choices of a run that no checkpoint records.
type Runtime struct {
	// Precision is the arithmetic of the matrix products (Float32 unless set).
	Precision Precision
	// GradCheckpointing keeps only each residual block's input for the
	// backward pass and recomputes the rest of the block there (OpenCLIP's
	// --grad-checkpointing): activation memory drops from all of a block's
	// intermediates per layer to one [B, L, W] tensor per layer, for about
	// a third more compute. Gradients are unchanged.
	GradCheckpointing bool
}
