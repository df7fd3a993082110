package clip

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Tolerances of shared/reference/README.md ("Suggested tolerances").
const (
	tolFeatures   = 1e-4 // features, logits, intermediates (float32)
	tolNormalized = 1e-5 // unit-norm features, zero-shot classifier, probabilities
	tolZeroShot   = 5e-4 // zero-shot logits (×100 scale)
	tolLoss       = 1e-5
)

// parityReport collects the largest absolute difference per layer kind.
type parityReport struct {
	t     *testing.T
	model string
	worst map[string]float64
}

// check compares got with OpenCLIP's want, fails the test above tol and
// records the difference under kind.
func (r *parityReport) check(kind, name string, got []float32, want []float32, tol float64) {
	r.t.Helper()
	if len(got) != len(want) {
		r.t.Errorf("%s %s: %d values, OpenCLIP has %d", r.model, name, len(got), len(want))
		return
	}
	d, i := graphtest.MaxAbsDiff(got, want)
	if d > tol {
		r.t.Errorf("%s %s: max abs diff %.3g > %.3g at flat index %d (got %v, OpenCLIP %v)", r.model, name, d, tol, i, got[i], want[i])
	}
	r.worst[kind] = max(r.worst[kind], d)
}

func (r *parityReport) log() {
	kinds := make([]string, 0, len(r.worst))
	overall := 0.0
	for k, d := range r.worst {
		kinds = append(kinds, k)
		overall = max(overall, d)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: max abs diff %.3g over %d layer kinds\n", r.model, overall, len(kinds))
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %-28s %.3g\n", k, r.worst[k])
	}
	r.t.Log(b.String())
}

var blockIndex = regexp.MustCompile(`resblocks\.\d+\.`)

// layerKind groups intermediate names for the report: the tower, then what
// the tensor is (layernorm, attention, block output, ...).
func layerKind(name string) string {
	tower, rest, _ := strings.Cut(name, ".")
	rest = blockIndex.ReplaceAllString(rest, "resblocks.N.")
	kind := map[string]string{
		"conv1.out": "patch_embed", "ln_pre.in": "embeddings", "transformer.in": "embeddings",
		"ln_pre.out": "layernorm", "ln_post.out": "layernorm", "ln_final.out": "layernorm",
		"transformer.resblocks.N.ln_1.out": "layernorm", "transformer.resblocks.N.ln_2.out": "layernorm",
		"transformer.resblocks.N.attn.out":       "attention",
		"transformer.resblocks.N.mlp.c_fc.out":   "mlp_linear",
		"transformer.resblocks.N.mlp.c_proj.out": "mlp_linear",
		"transformer.resblocks.N.mlp.gelu.out":   "activation",
		"transformer.resblocks.N.out":            "block",
		"pooled":                                 "pool",
		"out":                                    "projection",
	}[rest]
	if kind == "" {
		kind = "other(" + rest + ")"
	}
	return tower + "/" + kind
}

// intermediates computes every tensor OpenCLIP's hooks recorded, named as
// in intermediates.safetensors, from the exported pieces of vit, textenc
// and transformer, and the towers as EncodeImage/EncodeText run them.
func intermediates(scope *model.Scope, c Config, pixels, tokens *Node) map[string]*Node {
	out := map[string]*Node{}
	g := pixels.Graph()
	act := func(x *Node) *Node {
		if c.QuickGELU {
			return transformer.QuickGELU(x)
		}
		return transformer.GELU(x)
	}
	block0 := func(prefix string, s *model.Scope, x *Node, tc transformer.Config, causal bool) {
		b0 := s.At("resblocks").At("0")
		ln1 := transformer.LayerNorm(b0.At("ln_1"), x)
		attn := transformer.Attention(b0.At("attn"), ln1, tc, causal)
		ln2 := transformer.LayerNorm(b0.At("ln_2"), Add(x, attn))
		fc := transformer.Linear(b0.At("mlp").At("c_fc"), ln2, tc.MLPWidth(), transformer.Float32)
		gelu := act(fc)
		proj := transformer.Linear(b0.At("mlp").At("c_proj"), gelu, tc.Width, transformer.Float32)
		for name, n := range map[string]*Node{"ln_1": ln1, "attn": attn, "ln_2": ln2, "mlp.c_fc": fc, "mlp.gelu": gelu, "mlp.c_proj": proj} {
			out[prefix+"resblocks.0."+name+".out"] = n
		}
		for i := range tc.Layers {
			x = transformer.ResidualBlock(s.At("resblocks").At("%d", i), x, tc, causal)
			out[fmt.Sprintf("%sresblocks.%d.out", prefix, i)] = x
		}
	}

	// Vision tower.
	v := c.VisionCfg.WithDefaults()
	vs := scope.At("visual")
	k, w, grid := pixels.Shape().Dim(0), v.Width, v.Grid()
	conv := vit.PatchEmbed(vs, v, transformer.Float32, pixels) // [K, G², W]; OpenCLIP's conv1.out is [K, W, G, G]
	out["visual.conv1.out"] = Reshape(TransposeAllDims(conv, 0, 2, 1), k, w, grid, grid)
	cls := BroadcastToDims(Reshape(transformer.Param(vs, g, "class_embedding", w), 1, 1, w), k, 1, w)
	lnPreIn := Add(Concatenate([]*Node{cls, conv}, 1), InsertAxes(transformer.Param(vs, g, "positional_embedding", grid*grid+1, w), 0))
	out["visual.ln_pre.in"] = lnPreIn
	x := transformer.LayerNorm(vs.At("ln_pre"), lnPreIn)
	out["visual.ln_pre.out"] = x
	block0("visual.transformer.", vs.At("transformer"), x, v.Transformer(c.QuickGELU), false)
	out["visual.ln_post.out"] = transformer.LayerNorm(vs.At("ln_post"), out[fmt.Sprintf("visual.transformer.resblocks.%d.out", v.Layers-1)])
	out["visual.out"] = EncodeImage(scope, c, pixels)

	// Text tower.
	t := c.TextCfg.WithDefaults()
	seq := t.ContextLength
	table := transformer.Param(scope.At("token_embedding"), g, "weight", t.VocabSize, t.Width)
	x = Add(Gather(table, ExpandAxes(tokens, -1)), InsertAxes(transformer.Param(scope, g, "positional_embedding", seq, t.Width), 0))
	out["text.transformer.in"] = x
	block0("text.transformer.", scope.At("transformer"), x, t.Transformer(c.QuickGELU), true)
	lnFinal := transformer.LayerNorm(scope.At("ln_final"), out[fmt.Sprintf("text.transformer.resblocks.%d.out", t.Layers-1)])
	out["text.ln_final.out"] = lnFinal
	out["text.pooled"] = Einsum("bl,blw->bw", OneHot(textenc.PoolIndex(tokens), seq, dtypes.Float32), lnFinal)
	out["text.out"] = EncodeText(scope, c, tokens)
	return out
}

func readShared(t *testing.T, dir, file string) weights.StateDict {
	t.Helper()
	sd, _, err := weights.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func tensorOf(t *testing.T, w weights.Tensor) *tensors.Tensor {
	t.Helper()
	if w.DType == weights.I64 {
		v, err := w.Int64s()
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int32, len(v))
		for i, x := range v {
			ids[i] = int32(x)
		}
		return tensors.FromFlatDataAndDimensions(ids, w.Shape...)
	}
	v, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return tensors.FromFlatDataAndDimensions(v, w.Shape...)
}

// TestReferenceParity runs all four OpenCLIP reference models and compares
// every tensor of intermediates.safetensors and cases.safetensors, and for
// tiny the zero-shot classifier and the ClipLoss value, with OpenCLIP's.
// `go test -run ReferenceParity -v` prints the largest difference per
// model and layer kind.
func TestReferenceParity(t *testing.T) {
	for _, name := range []string{"tiny", "tiny-quickgelu", "tiny-perturbed", "b16-shape"} {
		t.Run(name, func(t *testing.T) {
			cfg, ref := loadReference(t, name)
			sd, cases, inter, dir := ref.Weights, ref.Cases, ref.Intermediates, ref.Dir
			store, err := NewStore(cfg, sd)
			if err != nil {
				t.Fatal(err)
			}
			r := &parityReport{t: t, model: name, worst: map[string]float64{}}
			defer r.log()

			// Intermediates, on pixels[0:K] and all tokens; K is 4 for the
			// tiny models and 3 for b16-shape.
			k := inter["visual.out"].Shape[0]
			pix := cases["pixels"]
			per := len(pix.Data) / pix.Shape[0]
			pixK := weights.Tensor{DType: pix.DType, Shape: append([]int{k}, pix.Shape[1:]...), Data: pix.Data[:k*per]}
			var names []string
			outs := graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
				m := intermediates(scope, cfg, pixels, tokens)
				names = inter.Names()
				nodes := make([]*Node, len(names))
				for i, n := range names {
					if nodes[i] = m[n]; nodes[i] == nil {
						nodes[i] = ScalarZero(pixels.Graph(), dtypes.Float32) // reported below
					}
				}
				return nodes
			}, tensorOf(t, pixK), tensorOf(t, cases["tokens"]))
			for i, n := range names {
				if got := outs[i].Shape().Dimensions; !slices.Equal(got, inter[n].Shape) {
					t.Errorf("%s: shape %v, OpenCLIP %v (is the intermediate computed?)", n, got, inter[n].Shape)
					continue
				}
				r.check(layerKind(n), n, graphtest.Float32s(t, outs[i]), floats(t, inter, n), tolFeatures)
			}

			// Final outputs, as model(pixels, tokens) and encode_* return them.
			outs = graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens, edge *Node) []*Node {
				img, txt := EncodeImage(scope, cfg, pixels), EncodeText(scope, cfg, tokens)
				logits := Logits(scope, img, txt)
				logScale := LogitScale(scope, pixels.Graph())
				return []*Node{img, txt, EncodeText(scope, cfg, edge), Normalize(img), Normalize(txt), logits,
					Transpose(logits, 0, 1), Exp(logScale), logScale,
					ConvertDType(textenc.PoolIndex(tokens), dtypes.Float32), ConvertDType(textenc.PoolIndex(edge), dtypes.Float32)}
			}, tensorOf(t, cases["pixels"]), tensorOf(t, cases["tokens"]), tensorOf(t, cases["tokens_edge"]))
			for i, c := range []struct{ name, kind string }{
				{"image_features", "cases/features"}, {"text_features", "cases/features"}, {"text_features_edge", "cases/features"},
				{"image_features_normalized", "cases/normalized"}, {"text_features_normalized", "cases/normalized"},
				{"logits_per_image", "cases/logits"}, {"logits_per_text", "cases/logits"},
				{"logit_scale", "cases/logit_scale"}, {"logit_scale_log", "cases/logit_scale"},
				{"text_pool_index", "cases/pool_index"}, {"text_pool_index_edge", "cases/pool_index"},
			} {
				tol := tolFeatures
				switch c.kind {
				case "cases/normalized":
					tol = tolNormalized
				case "cases/pool_index":
					tol = 0
				}
				var want []float32
				if c.kind == "cases/pool_index" {
					ids, _ := cases[c.name].Int64s()
					for _, id := range ids {
						want = append(want, float32(id))
					}
				} else {
					want = floats(t, cases, c.name)
				}
				r.check(c.kind, c.name, graphtest.Float32s(t, outs[i]), want, tol)
			}
			if name == "tiny" {
				imgN := graphtest.Float32s(t, outs[3])
				txtN := graphtest.Float32s(t, outs[4])
				checkZeroShot(t, r, store, cfg, dir, imgN)
				checkLoss(t, r, dir, imgN, txtN, floats(t, cases, "logit_scale_log")[0], cfg.EmbedDim)
			}
		})
	}
}

// checkZeroShot rebuilds open_clip.build_zero_shot_classifier from the
// model's own text features and compares classifier, logits and
// probabilities (reference §D).
func checkZeroShot(t *testing.T, r *parityReport, store *model.Store, cfg Config, dir string, imgN []float32) {
	zs := readShared(t, dir, "zeroshot.safetensors")
	var meta struct {
		Classes   []string `json:"classnames"`
		Templates []string `json:"templates"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "zeroshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	nc, nt, dim := len(meta.Classes), len(meta.Templates), cfg.EmbedDim
	if nc == 0 || nt == 0 {
		t.Fatalf("zeroshot.json: %d classes, %d templates", nc, nt)
	}
	outs := graphtest.Run(t, store, func(scope *model.Scope, tokens *Node) *Node {
		return EncodeText(scope, cfg, tokens)
	}, tensorOf(t, zs["template_tokens"]))
	feats := graphtest.Float32s(t, outs[0])
	r.check("zeroshot/text_features", "template_text_features", feats, floats(t, zs, "template_text_features"), tolFeatures)
	// Normalise each prompt, average per class (class-major rows),
	// renormalise, stack as columns [dim, classes].
	unit := func(v []float64) {
		n := 0.0
		for _, x := range v {
			n += x * x
		}
		n = max(math.Sqrt(n), 1e-12)
		for i := range v {
			v[i] /= n
		}
	}
	classifier := make([]float32, dim*nc)
	for c := range nc {
		mean := make([]float64, dim)
		for p := range nt {
			row := make([]float64, dim)
			for i := range dim {
				row[i] = float64(feats[(c*nt+p)*dim+i])
			}
			unit(row)
			for i := range dim {
				mean[i] += row[i] / float64(nt)
			}
		}
		unit(mean)
		for i := range dim {
			classifier[i*nc+c] = float32(mean[i])
		}
	}
	r.check("zeroshot/classifier", "classifier", classifier, floats(t, zs, "classifier"), tolNormalized)
	n := len(floats(t, zs, "image_features_normalized")) / dim
	imgN = imgN[:n*dim]
	r.check("zeroshot/features", "image_features_normalized", imgN, floats(t, zs, "image_features_normalized"), tolNormalized)
	logits := make([]float32, n*nc)
	probs := make([]float32, n*nc)
	for i := range n {
		row := make([]float64, nc)
		mx := math.Inf(-1)
		for c := range nc {
			s := 0.0
			for d := range dim {
				s += float64(imgN[i*dim+d]) * float64(classifier[d*nc+c])
			}
			row[c] = 100 * s
			logits[i*nc+c] = float32(row[c])
			mx = max(mx, row[c])
		}
		z := 0.0
		for c := range nc {
			z += math.Exp(row[c] - mx)
		}
		for c := range nc {
			probs[i*nc+c] = float32(math.Exp(row[c]-mx) / z)
		}
	}
	r.check("zeroshot/logits", "logits", logits, floats(t, zs, "logits"), tolZeroShot)
	r.check("zeroshot/probs", "probs", probs, floats(t, zs, "probs"), tolNormalized)
}

// checkLoss evaluates ContrastiveLoss on the first 4 image/text pairs of the
// model's own normalised features (reference: loss.json, computed by
// OpenCLIP's ClipLoss on its features).
func checkLoss(t *testing.T, r *parityReport, dir string, imgN, txtN []float32, logScale float32, dim int) {
	var ref struct {
		Loss float64 `json:"loss"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "loss.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	got := clipLoss(t, imgN[:4*dim], txtN[:4*dim], 4, dim, logScale)
	r.check("loss", "ClipLoss", []float32{float32(got)}, []float32{float32(ref.Loss)}, tolLoss)
}
