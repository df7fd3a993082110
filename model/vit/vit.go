// Package vit is OpenCLIP's VisionTransformer (the image tower of CLIP):
// a bias-free patch-embedding convolution, a class token, a learned
// positional embedding, ln_pre, pre-norm residual blocks, ln_post applied to
// every token, class-token pooling and the proj matrix.
//
// Its variables live under the scope it is given (CLIP uses /visual), named
// exactly as OpenCLIP's state dict: visual.conv1.weight [W,3,P,P],
// visual.class_embedding [W], visual.positional_embedding [1+G²,W],
// visual.ln_pre.*, visual.transformer.resblocks.N.*, visual.ln_post.*,
// visual.proj [W,E].
//
//	features := vit.Encode(scope.In("visual"), cfg, embedDim, quickGELU, transformer.Runtime{}, pixels) // pixels [B,3,H,W] → [B,E]
package vit

import (
	"fmt"
	"math"

	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Config mirrors OpenCLIP's vision_cfg (CLIPVisionCfg) for ViT towers.
type Config struct {
	// ImageSize is the square input resolution in pixels.
	ImageSize int `json:"image_size,omitempty" yaml:"image_size,omitempty"`
	// PatchSize is the side of the square patches; ImageSize must be a multiple.
	PatchSize int `json:"patch_size,omitempty" yaml:"patch_size,omitempty"`
	// Width is the transformer width (the conv1 output channels).
	Width int `json:"width,omitempty" yaml:"width,omitempty"`
	// Layers is the number of residual attention blocks.
	Layers int `json:"layers,omitempty" yaml:"layers,omitempty"`
	// HeadWidth is the size of one attention head; heads = Width / HeadWidth (OpenCLIP default 64).
	HeadWidth int `json:"head_width,omitempty" yaml:"head_width,omitempty"`
	// MLPRatio scales the MLP hidden size (OpenCLIP default 4.0).
	MLPRatio float64 `json:"mlp_ratio,omitempty" yaml:"mlp_ratio,omitempty"`
}

// WithDefaults fills OpenCLIP's defaults for omitted optional fields.
func (c Config) WithDefaults() Config {
	if c.HeadWidth == 0 {
		c.HeadWidth = 64
	}
	if c.MLPRatio == 0 {
		c.MLPRatio = 4
	}
	return c
}

// Validate reports a configuration that cannot build a ViT.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.ImageSize <= 0:
		return fmt.Errorf("image_size must be positive, got %d", c.ImageSize)
	case c.PatchSize <= 0:
		return fmt.Errorf("patch_size must be positive, got %d", c.PatchSize)
	case c.ImageSize%c.PatchSize != 0:
		return fmt.Errorf("image_size %d is not a multiple of patch_size %d", c.ImageSize, c.PatchSize)
	case c.HeadWidth <= 0 || c.Width%c.HeadWidth != 0:
		return fmt.Errorf("width %d is not a multiple of head_width %d", c.Width, c.HeadWidth)
	}
	return c.Transformer(false).Validate()
}

// Grid is the number of patches along each side.
func (c Config) Grid() int { return c.ImageSize / c.PatchSize }

// Transformer is the shape of the tower's residual stack.
func (c Config) Transformer(quickGELU bool) transformer.Config {
	c = c.WithDefaults()
	return transformer.Config{Width: c.Width, Heads: c.Width / c.HeadWidth, Layers: c.Layers, MLPRatio: c.MLPRatio, QuickGELU: quickGELU}
}

// Params lists the tower's state-dict entries under prefix (normally
// "visual") with OpenCLIP's initialisation: class and positional embeddings
// and proj ~ N(0, W^-1/2); in_proj xavier-uniform and the Linear layers'
// PyTorch default (kaiming-uniform, a=√5), both as normals of equal variance.
func Params(prefix string, c Config, embedDim int) []transformer.ParamSpec {
	c = c.WithDefaults()
	w := c.Width
	scale := math.Pow(float64(w), -0.5)
	mlp := c.Transformer(false).MLPWidth()
	fanIn := func(n int) float64 { return 1 / math.Sqrt(3*float64(n)) }
	std := transformer.Std{
		Attn:    math.Sqrt(1 / (2 * float64(w))),
		OutProj: fanIn(w),
		FC:      fanIn(w),
		Proj:    fanIn(mlp),
	}
	tokens := c.Grid()*c.Grid() + 1
	out := []transformer.ParamSpec{
		{Name: prefix + ".class_embedding", Shape: []int{w}, Init: transformer.InitNormal, Std: scale},
		{Name: prefix + ".positional_embedding", Shape: []int{tokens, w}, Init: transformer.InitNormal, Std: scale},
		{Name: prefix + ".proj", Shape: []int{w, embedDim}, Init: transformer.InitNormal, Std: scale},
		{Name: prefix + ".conv1.weight", Shape: []int{w, 3, c.PatchSize, c.PatchSize}, Init: transformer.InitNormal, Std: fanIn(3 * c.PatchSize * c.PatchSize)},
	}
	out = append(out, transformer.LayerNormParams(prefix+".ln_pre", w)...)
	out = append(out, transformer.Params(prefix+".transformer", c.Transformer(false), std)...)
	out = append(out, transformer.LayerNormParams(prefix+".ln_post", w)...)
	return out
}

// Encode maps pixels [B,3,H,W] (already normalised) to features [B,embedDim].
func Encode(scope *model.Scope, c Config, embedDim int, quickGELU bool, rt transformer.Runtime, pixels *Node) *Node {
	c = c.WithDefaults()
	g := pixels.Graph()
	x := PatchEmbed(scope, c, rt.Precision, pixels)
	batch, w := x.Shape().Dim(0), c.Width
	cls := transformer.Param(scope, g, "class_embedding", w)
	cls = BroadcastToDims(Reshape(cls, 1, 1, w), batch, 1, w)
	x = Concatenate([]*Node{cls, x}, 1)
	x = transformer.AddTrailing(x, transformer.Param(scope, g, "positional_embedding", c.Grid()*c.Grid()+1, w))
	x = transformer.LayerNorm(scope.In("ln_pre"), x)
	tc := c.Transformer(quickGELU)
	tc.Runtime = rt
	x = transformer.Apply(scope.In("transformer"), x, tc, false)
	x = transformer.LayerNorm(scope.In("ln_post"), x)
	pooled := Reshape(SliceAxis(x, 1, AxisElem(0)), batch, w)
	return transformer.MatMulRight(pooled, transformer.Param(scope, g, "proj", w, embedDim), rt.Precision)
}

// PatchEmbed is conv1 (kernel = stride = patch, no bias) written as a matmul
// over non-overlapping patches, which is the same arithmetic and keeps the
// gradient on the well-optimised DotGeneral path. Output [B, G², W] with
// patches in row-major grid order, as OpenCLIP's flatten(2).transpose(1,2).
func PatchEmbed(scope *model.Scope, c Config, precision transformer.Precision, pixels *Node) *Node {
	dims := pixels.Shape().Dimensions
	if len(dims) != 4 || dims[1] != 3 || dims[2] != c.ImageSize || dims[3] != c.ImageSize {
		exceptions.Panicf("vit: pixels must be [B,3,%d,%d], got %v", c.ImageSize, c.ImageSize, dims)
	}
	p := c.PatchSize
	kernel := transformer.Param(scope.In("conv1"), pixels.Graph(), "weight", c.Width, 3, p, p)
	kernel = Reshape(kernel, c.Width, 3*p*p)
	return transformer.Project(Patches(pixels, p), kernel, precision)
}

// Patches cuts pixels [B,3,H,W] into non-overlapping p×p patches, [B, G², 3·p·p]:
// patches in row-major grid order, each flattened channel-major as a
// convolution kernel [W,3,p,p] is, so a patch-embedding convolution is a
// product with the kernel reshaped to [W, 3·p·p].
func Patches(pixels *Node, p int) *Node {
	dims := pixels.Shape().Dimensions
	b, gy, gx := dims[0], dims[2]/p, dims[3]/p
	x := Reshape(pixels, b, 3, gy, p, gx, p)
	x = TransposeAllDims(x, 0, 2, 4, 1, 3, 5) // B, gy, gx, C, py, px
	return Reshape(x, b, gy*gx, 3*p*p)
}
