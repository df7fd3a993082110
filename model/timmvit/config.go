package timmvit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bmca/bmca/model/vit"
)

// OpenCLIP's defaults for the fields a vision_cfg leaves out
// (CLIPVisionCfg in open_clip 2.32.0's model.py).
const (
	DefaultPool      = "avg"
	DefaultProj      = "linear"
	DefaultImageSize = 224
)

// LayerNormEpsilon is timm's LayerNorm default (timm.layers.LayerNorm),
// used by every norm of its ViTs; OpenCLIP's own towers use torch's 1e-5.
const LayerNormEpsilon = 1e-6

// Options are the timm_* fields of OpenCLIP's vision_cfg. They are embedded
// in the model's vision_cfg, so the JSON names are OpenCLIP's. A nil
// pointer field was left out of the config and takes OpenCLIP's default;
// JSON null is Python's None, which the config reader turns into a
// pointer to "".
type Options struct {
	// TimmModelName is timm_model_name; set, a timm model replaces OpenCLIP's
	// VisionTransformer. Only plain timm ViTs are supported (Arch).
	TimmModelName string `json:"timm_model_name,omitempty" yaml:"timm_model_name,omitempty"`
	// TimmModelPretrained is timm_model_pretrained: whether OpenCLIP, building
	// the model without a checkpoint, starts from timm's ImageNet weights.
	// bmca loads or initialises weights itself and only round-trips it.
	TimmModelPretrained *bool `json:"timm_model_pretrained,omitempty" yaml:"timm_model_pretrained,omitempty"`
	// TimmPool is timm_pool: "avg" (default), "token", "max", "avgmax", or ""
	// (keep the model's own pooling, the class token for these ViTs, when
	// a projection head is used).
	TimmPool *string `json:"timm_pool,omitempty" yaml:"timm_pool,omitempty"`
	// TimmProj is timm_proj: "linear" (default), "mlp", "none" (no projection:
	// the trunk's features are the embedding), or ""/null (the trunk's own
	// classifier, a biased Linear to embed_dim, is the projection).
	TimmProj *string `json:"timm_proj,omitempty" yaml:"timm_proj,omitempty"`
	// TimmProjBias is timm_proj_bias: the linear head, or the mlp head's second
	// layer, has a bias.
	TimmProjBias bool `json:"timm_proj_bias,omitempty" yaml:"timm_proj_bias,omitempty"`
	// TimmDrop is timm_drop, the head's dropout rate. Dropout is not applied by
	// bmca (inference is unaffected; training runs without it).
	TimmDrop float64 `json:"timm_drop,omitempty" yaml:"timm_drop,omitempty"`
	// TimmDropPath is timm_drop_path, the trunk's stochastic depth rate; like
	// TimmDrop it is round-tripped, not applied.
	TimmDropPath *float64 `json:"timm_drop_path,omitempty" yaml:"timm_drop_path,omitempty"`
}

// IsTimm reports whether the image tower is a timm model.
func (c Options) IsTimm() bool { return c.TimmModelName != "" }

// Arch is the shape of a timm VisionTransformer with the structure of
// vit_base_patch16_224: a biased patch-embedding convolution, a class
// token, a learned position embedding that covers the class token, no
// norm before the blocks, pre-norm blocks with a packed qkv Linear (with
// bias), exact GELU, a final LayerNorm, class-token pooling by default,
// and LayerNorm eps 1e-6 everywhere.
type Arch struct {
	// ImageSize is the input resolution the position embedding is built for.
	ImageSize int
	// PatchSize is the side of the square patches.
	PatchSize int
	// Width is embed_dim in timm's terms, the residual stream size.
	Width int
	// Depth is the number of blocks.
	Depth int
	// Heads is num_heads.
	Heads int
	// MLPRatio sets each block's MLP hidden size to int(Width·MLPRatio).
	MLPRatio float64
}

// Grid is the number of patches along each side.
func (a Arch) Grid() int { return a.ImageSize / a.PatchSize }

// Tokens is the sequence length: the class token and one token per patch.
func (a Arch) Tokens() int { return a.Grid()*a.Grid() + 1 }

// MLPWidth is the hidden size of each block's MLP.
func (a Arch) MLPWidth() int { return int(float64(a.Width) * a.MLPRatio) }

// knownArchs are the plain ViTs of timm 1.0.31 (models/vision_transformer.py,
// the vit_{tiny,small,base,large,huge}_patch*_{224,384} registrations): their
// model_args, and the input size of their default pretrained tag, which
// timm builds the position embedding for.
func knownArchs() map[string]Arch {
	a := func(img, patch, width, depth, heads int) Arch {
		return Arch{ImageSize: img, PatchSize: patch, Width: width, Depth: depth, Heads: heads, MLPRatio: 4}
	}
	return map[string]Arch{
		"vit_tiny_patch16_224":  a(224, 16, 192, 12, 3),
		"vit_tiny_patch16_384":  a(384, 16, 192, 12, 3),
		"vit_small_patch32_224": a(224, 32, 384, 12, 6),
		"vit_small_patch32_384": a(384, 32, 384, 12, 6),
		"vit_small_patch16_224": a(224, 16, 384, 12, 6),
		"vit_small_patch16_384": a(384, 16, 384, 12, 6),
		"vit_small_patch8_224":  a(224, 8, 384, 12, 6),
		"vit_base_patch32_224":  a(224, 32, 768, 12, 12),
		"vit_base_patch32_384":  a(384, 32, 768, 12, 12),
		"vit_base_patch16_224":  a(224, 16, 768, 12, 12),
		"vit_base_patch16_384":  a(384, 16, 768, 12, 12),
		"vit_base_patch8_224":   a(224, 8, 768, 12, 12),
		"vit_large_patch32_224": a(224, 32, 1024, 24, 16),
		"vit_large_patch32_384": a(384, 32, 1024, 24, 16),
		"vit_large_patch16_224": a(224, 16, 1024, 24, 16),
		"vit_large_patch16_384": a(384, 16, 1024, 24, 16),
		"vit_large_patch14_224": a(224, 14, 1024, 24, 16),
		"vit_huge_patch14_224":  a(224, 14, 1280, 32, 16),
	}
}

// KnownArch returns the shape of a timm ViT bmca knows by name.
func KnownArch(name string) (Arch, bool) {
	a, ok := knownArchs()[name]
	return a, ok
}

// KnownNames lists the timm model names KnownArch knows, sorted.
func KnownNames() []string {
	var names []string
	for n := range knownArchs() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Arch finds the trunk's shape. A known name gives it (and vision_cfg's
// image_size must agree, as OpenCLIP preprocesses to image_size while timm
// builds the model for its own size; any other shape field given must
// agree too). For another timm VisionTransformer of the same structure
// (one registered for tests, say), the shape comes from vision_cfg's
// image_size, patch_size, width, layers, head_width and mlp_ratio, which
// OpenCLIP ignores for timm towers and which must then all be given
// (mlp_ratio defaults to 4).
func (c Options) Arch(shape vit.Config) (Arch, error) {
	img := shape.ImageSize
	if img == 0 {
		img = DefaultImageSize
	}
	if a, ok := KnownArch(c.TimmModelName); ok {
		heads := 0
		if shape.HeadWidth > 0 {
			heads = a.Width / shape.HeadWidth
		}
		for _, f := range []struct {
			name      string
			got, want float64
		}{
			{"image_size", float64(img), float64(a.ImageSize)},
			{"patch_size", float64(shape.PatchSize), float64(a.PatchSize)},
			{"width", float64(shape.Width), float64(a.Width)},
			{"layers", float64(shape.Layers), float64(a.Depth)},
			{"heads (width/head_width)", float64(heads), float64(a.Heads)},
			{"mlp_ratio", shape.MLPRatio, a.MLPRatio},
		} {
			if f.got != 0 && f.got != f.want {
				return Arch{}, fmt.Errorf("timm_model_name %s has %s %g, but vision_cfg gives %g (OpenCLIP ignores it for timm towers; remove it or make it agree)",
					c.TimmModelName, f.name, f.want, f.got)
			}
		}
		return a, nil
	}
	var missing []string
	for _, f := range []struct {
		name string
		v    int
	}{{"image_size", shape.ImageSize}, {"patch_size", shape.PatchSize}, {"width", shape.Width}, {"layers", shape.Layers}, {"head_width", shape.HeadWidth}} {
		if f.v <= 0 {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Arch{}, fmt.Errorf("timm_model_name %q is not a timm ViT bmca knows (%s); for another timm VisionTransformer with vit_base_patch16_224's structure, "+
			"give its shape in vision_cfg (%s missing), which OpenCLIP ignores for timm towers", c.TimmModelName, strings.Join(KnownNames(), ", "), strings.Join(missing, ", "))
	}
	a := Arch{ImageSize: shape.ImageSize, PatchSize: shape.PatchSize, Width: shape.Width, Depth: shape.Layers, MLPRatio: shape.MLPRatio}
	if a.MLPRatio == 0 {
		a.MLPRatio = 4
	}
	if a.Width%shape.HeadWidth != 0 {
		return Arch{}, fmt.Errorf("width %d is not a multiple of head_width %d", a.Width, shape.HeadWidth)
	}
	a.Heads = a.Width / shape.HeadWidth
	if a.ImageSize%a.PatchSize != 0 {
		return Arch{}, fmt.Errorf("image_size %d is not a multiple of patch_size %d", a.ImageSize, a.PatchSize)
	}
	if a.MLPWidth() <= 0 {
		return Arch{}, fmt.Errorf("mlp_ratio %g gives an empty MLP", a.MLPRatio)
	}
	return a, nil
}

// Pooling types (timm's global_pool) the tower supports.
const (
	PoolToken  = "token"
	PoolAvg    = "avg"
	PoolMax    = "max"
	PoolAvgMax = "avgmax"
)

// Heads after the trunk (how OpenCLIP's TimmModel projects to embed_dim).
const (
	// HeadLinear is timm_proj "linear": visual.head.proj, Linear(width,
	// embed_dim), biased when timm_proj_bias.
	HeadLinear = "linear"
	// HeadMLP is timm_proj "mlp": timm's Mlp at visual.head.mlp, fc1
	// (width → 2·embed_dim, biased), GELU, fc2 (→ embed_dim, biased when
	// timm_proj_bias).
	HeadMLP = "mlp"
	// HeadTrunk is timm_proj ""/null: the trunk's classifier,
	// visual.trunk.head, Linear(width, embed_dim) with bias.
	HeadTrunk = "trunk"
	// HeadNone is timm_proj "none": the pooled trunk features are the
	// embedding, so width must equal embed_dim.
	HeadNone = "none"
)

// Tower is a resolved timm image tower: everything the graph needs.
type Tower struct {
	Arch
	// Pool is one of PoolToken, PoolAvg, PoolMax, PoolAvgMax.
	Pool string
	// FCNorm places the final LayerNorm after pooling (timm's fc_norm, at
	// visual.trunk.fc_norm) instead of on every token before it
	// (visual.trunk.norm). timm chooses it when the model is created with
	// an averaging pool, which OpenCLIP does only without a head of its own.
	FCNorm bool
	// Head is one of HeadLinear, HeadMLP, HeadTrunk, HeadNone.
	Head string
	// ProjBias adds the bias of the linear head or of the mlp's fc2.
	ProjBias bool
	// EmbedDim is the size of the joint embedding.
	EmbedDim int
}

// Tower resolves the configuration the way open_clip 2.32.0's TimmModel
// builds its trunk and head. With timm_proj "linear" or "mlp" the trunk is
// created with its own pooling (the class token) and
// reset_classifier(0, global_pool=timm_pool) changes the pooling only when
// timm_pool is not empty, so the final norm stays on every token. Without
// (""/null or "none") the trunk is created with global_pool=timm_pool,
// which puts the norm after an averaging pool, and its classifier becomes
// the projection ("") or is dropped ("none"). Errors name the field.
func (c Options) Tower(shape vit.Config, embedDim int) (Tower, error) {
	a, err := c.Arch(shape)
	if err != nil {
		return Tower{}, err
	}
	if embedDim <= 0 {
		return Tower{}, fmt.Errorf("embed_dim must be positive, got %d", embedDim)
	}
	t := Tower{Arch: a, EmbedDim: embedDim, ProjBias: c.TimmProjBias}
	pool, proj := DefaultPool, DefaultProj
	if c.TimmPool != nil {
		pool = *c.TimmPool
	}
	if c.TimmProj != nil {
		proj = *c.TimmProj
	}
	switch pool {
	case "", PoolToken, PoolAvg, PoolMax, PoolAvgMax:
	case "abs_attn", "rot_attn", "map", "prr":
		return Tower{}, fmt.Errorf("timm_pool %q (attention pooling) is not supported; use %q, %q, %q, %q or \"\"", pool, PoolToken, PoolAvg, PoolMax, PoolAvgMax)
	default:
		return Tower{}, fmt.Errorf("timm_pool %q is not one of %q, %q, %q, %q, \"\"", pool, PoolAvg, PoolToken, PoolMax, PoolAvgMax)
	}
	switch proj {
	case HeadLinear, HeadMLP:
		t.Head = proj
		t.Pool = pool
		if pool == "" {
			t.Pool = PoolToken // the ViT's own global_pool
		}
	case "", HeadNone:
		if pool == "" {
			return Tower{}, fmt.Errorf("timm_pool \"\" with timm_proj %q leaves the tokens unpooled (OpenCLIP returns a [B, tokens, dim] sequence, not an embedding); set timm_pool", proj)
		}
		t.Pool = pool
		t.FCNorm = slices.Contains([]string{PoolAvg, PoolMax, PoolAvgMax}, pool)
		t.Head = HeadTrunk
		if proj == HeadNone {
			t.Head = HeadNone
			if a.Width != embedDim {
				return Tower{}, fmt.Errorf("timm_proj \"none\" makes the trunk's width %d the embedding, but embed_dim is %d", a.Width, embedDim)
			}
		}
	default:
		return Tower{}, fmt.Errorf("timm_proj %q is not one of %q, %q, %q or \"\"/null (OpenCLIP asserts on it)", proj, HeadLinear, HeadMLP, HeadNone)
	}
	return t, nil
}
