package clip

import (
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/timmvit"
)

// ForwardFLOPs counts the floating-point operations (2 per multiply-add) of
// one image–text pair through both towers, counting matrix products only
// (patch embedding, q/k/v and output projections, attention scores and
// weighted sums, MLPs, final projections). For ViT-B-16 this gives OpenCLIP's
// model_profile.csv figure of 41.09 GFLOPs; training costs about 3× this.
func ForwardFLOPs(c Config) (image, text float64) {
	return imageFLOPs(c), textFLOPs(c)
}

func imageFLOPs(c Config) float64 {
	if c.VisionCfg.IsTimm() {
		t := mustTimm(c)
		patches := float64(t.Grid() * t.Grid())
		head := 0
		switch t.Head {
		case timmvit.HeadLinear, timmvit.HeadTrunk:
			head = t.Width * t.EmbedDim
		case timmvit.HeadMLP:
			head = t.Width*2*t.EmbedDim + 2*t.EmbedDim*t.EmbedDim
		}
		return 2 * (patches*3*float64(t.PatchSize*t.PatchSize)*float64(t.Width) +
			float64(t.Depth)*layerMACs(float64(t.Tokens()), float64(t.Width), float64(t.MLPWidth())) + float64(head))
	}
	v := c.VisionCfg.WithDefaults()
	grid := float64(v.Grid())
	tokens := grid*grid + 1
	return 2 * (grid*grid*3*float64(v.PatchSize*v.PatchSize)*float64(v.Width) +
		float64(v.Layers)*layerMACs(tokens, float64(v.Width), float64(v.Transformer(false).MLPWidth())) +
		float64(v.Width*c.EmbedDim))
}

func textFLOPs(c Config) float64 {
	if c.TextCfg.IsHF() {
		t := mustHF(c)
		m := t.Model
		head := 0
		switch t.Proj {
		case hftext.ProjLinear:
			head = m.HiddenSize * t.EmbedDim
		case hftext.ProjMLP:
			head = (m.HiddenSize + t.EmbedDim) * t.MLPHidden()
		}
		if t.Pooler == hftext.ClsPooler {
			head += m.HiddenSize * m.HiddenSize
		}
		return 2 * (float64(m.NumHiddenLayers)*layerMACs(float64(t.ContextLength), float64(m.HiddenSize), float64(m.IntermediateSize)) + float64(head))
	}
	t := c.TextCfg.WithDefaults()
	return 2 * (float64(t.Layers)*layerMACs(float64(t.ContextLength), float64(t.Width), float64(t.Transformer(false).MLPWidth())) +
		float64(t.Width*c.EmbedDim))
}

// layerMACs is one residual block over seq tokens: q, k, v and output
// projections, QKᵀ and the weighted sum, and the two MLP matmuls.
func layerMACs(seq, width, hidden float64) float64 {
	return 4*seq*width*width + 2*seq*seq*width + 2*seq*width*hidden
}
