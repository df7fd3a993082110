package clip

import (
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/timmvit"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// EncodeImage is OpenCLIP's encode_image: pixels [B,3,H,W] → [B,E], not
// normalised, through OpenCLIP's VisionTransformer or a timm tower.
func EncodeImage(scope *model.Scope, c Config, pixels *Node) *Node {
	visual := scope.ResetVisited().In("visual")
	if c.VisionCfg.IsTimm() {
		return timmvit.Encode(visual, mustTimm(c), c.Runtime, pixels)
	}
	return vit.Encode(visual, c.VisionCfg.Config, c.EmbedDim, c.QuickGELU, c.Runtime, pixels)
}

// EncodeText is OpenCLIP's encode_text: tokens [B,ctx] int32 → [B,E], not
// normalised, through the classic text transformer (at the root scope) or
// a Hugging Face tower (at "text", as CustomTextCLIP keeps it).
func EncodeText(scope *model.Scope, c Config, tokens *Node) *Node {
	if c.TextCfg.IsHF() {
		return hftext.Encode(scope.ResetVisited().In("text"), mustHF(c), c.Runtime, tokens)
	}
	return textenc.Encode(scope.ResetVisited(), c.TextCfg.Config, c.EmbedDim, c.QuickGELU, c.Runtime, tokens)
}

// LogitScale is the raw (log-space) temperature parameter, a scalar.
func LogitScale(scope *model.Scope, g *Graph) *Node {
	return transformer.Param(scope, g, LogitScaleName)
}

// Normalize divides each row by its L2 norm, as torch's F.normalize
// (whose eps 1e-12 only matters for all-zero rows).
func Normalize(x *Node) *Node {
	norm := Sqrt(ReduceAndKeep(Square(x), ReduceSum, -1))
	return Div(x, Max(norm, Scalar(x.Graph(), x.DType(), 1e-12)))
}

// Logits is OpenCLIP's get_logits: exp(logit_scale) · norm(img) · norm(txt)ᵀ,
// returned as logits_per_image [N_img, N_txt]; logits_per_text is its transpose.
func Logits(scope *model.Scope, imageFeatures, textFeatures *Node) *Node {
	scale := Exp(LogitScale(scope, imageFeatures.Graph()))
	sim := Dot(Normalize(imageFeatures), Normalize(textFeatures)).General([]int{1}, nil, []int{1}, nil)
	return Mul(sim, scale)
}
