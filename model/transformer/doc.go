// Package transformer holds the pieces both CLIP towers share, written to
// match OpenCLIP's transformer.py tensor for tensor: LayerNorm (eps 1e-5),
// multi-head self-attention with the packed in_proj_weight/in_proj_bias and
// out_proj of torch.nn.MultiheadAttention, the c_fc → GELU/QuickGELU → c_proj
// MLP, the pre-norm ResidualAttentionBlock and the stack of resblocks.
// GoMLX's own arithmetic is used where it fits OpenCLIP's variables and
// precision (nn.LayerNorm); Linear and GELU say why they are not GoMLX's.
//
// Every function takes a *model.Scope positioned where OpenCLIP's module sits,
// so GoMLX variable paths equal OpenCLIP state-dict names with "." replaced by
// "/": the scope /visual/transformer/resblocks/3/attn holds the variable
// in_proj_weight, i.e. visual.transformer.resblocks.3.attn.in_proj_weight.
//
// How a stack computes, as opposed to its weights, is its Runtime: the
// Precision of the matrix products (float32, or bf16-mixed as OpenCLIP's
// amp_bf16) and whether the backward pass recomputes each block (gradient
// checkpointing). Attention takes the backend's fused kernel where the
// backend accepts the operands (cuDNN flash attention for bf16 on CUDA).
//
// Variables must already exist in the store (the clip package creates them
// from a state dict): Param panics on a missing or mis-shaped variable rather
// than silently creating one with some default initialisation.
//
//	x = transformer.Apply(scope.In("transformer"), x, transformer.Config{Width: 64, Heads: 2, Layers: 2, MLPRatio: 4}, false)
package transformer
