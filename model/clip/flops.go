package clip

// ForwardFLOPs counts the floating-point operations (2 per multiply-add) of
// one image–text pair through both towers, counting matrix products only
// (patch embedding, q/k/v and output projections, attention scores and
// weighted sums, MLPs, final projections). For ViT-B-16 this gives OpenCLIP's
// model_profile.csv figure of 41.09 GFLOPs; training costs about 3× this.
func ForwardFLOPs(c Config) (image, text float64) {
	v := c.VisionCfg.WithDefaults()
	t := c.TextCfg.WithDefaults()
	grid := float64(v.Grid())
	tokens := grid*grid + 1
	image = 2 * (grid*grid*3*float64(v.PatchSize*v.PatchSize)*float64(v.Width) +
		float64(v.Layers)*layerMACs(tokens, float64(v.Width), float64(v.Transformer(false).MLPWidth())) +
		float64(v.Width*c.EmbedDim))
	text = 2 * (float64(t.Layers)*layerMACs(float64(t.ContextLength), float64(t.Width), float64(t.Transformer(false).MLPWidth())) +
		float64(t.Width*c.EmbedDim))
	return image, text
}

// layerMACs is one residual block over seq tokens: q, k, v and output
// projections, QKᵀ and the weighted sum, and the two MLP matmuls.
func layerMACs(seq, width, hidden float64) float64 {
	return 4*seq*width*width + 2*seq*seq*width + 2*seq*width*hidden
}
