package clip

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/timmvit"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// biomedRefDir holds the references testdata/biomedclip/generate.py made
// with open_clip 2.32.0, timm 1.0.31 and transformers 5.25.0: tiny is
// committed, full (BiomedCLIP's own shape, ~0.8 GB) is generated on demand.
const biomedRefDir = "testdata/biomedclip"

// biomedRef is one generated reference: an OpenCLIP checkpoint plus the
// inputs, outputs and per-layer outputs of the real code.
type biomedRef struct {
	name          string
	config        []byte
	weights       weights.StateDict
	cases, layers weights.StateDict
}

func loadBiomedRef(t *testing.T, name string) biomedRef {
	t.Helper()
	dir := filepath.Join(biomedRefDir, name)
	config, err := os.ReadFile(filepath.Join(dir, "open_clip_config.json"))
	if os.IsNotExist(err) && name != "tiny" {
		t.Skipf("reference %s is not generated (about 0.8 GB, not committed); make it with %s/generate.sh %s", dir, biomedRefDir, name)
	}
	if err != nil {
		t.Fatal(err)
	}
	read := func(file string) weights.StateDict {
		sd, _, err := weights.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return sd
	}
	return biomedRef{name: name, config: config, weights: read("open_clip_model.safetensors"),
		cases: read("cases.safetensors"), layers: read("intermediates.safetensors")}
}

// TestBiomedCLIPShapedParity runs BiomedCLIP-shaped models (timm ViT image
// tower, BERT text tower with CLS pooling and the mlp head) with the
// weights OpenCLIP saved, and compares every layer's output and the final
// features with OpenCLIP's. `go test -run BiomedCLIPShapedParity -v`
// prints the table.
func TestBiomedCLIPShapedParity(t *testing.T) {
	for _, name := range []string{"tiny", "full"} {
		t.Run(name, func(t *testing.T) {
			ref := loadBiomedRef(t, name)
			cfg, err := ParseConfigJSON(ref.config)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckStateDict(cfg, ref.weights); err != nil {
				t.Fatalf("our layout differs from OpenCLIP's: %v", err)
			}
			store, err := NewStore(cfg, ref.weights)
			if err != nil {
				t.Fatal(err)
			}
			r := &parityReport{t: t, model: name, worst: map[string]float64{}}
			defer r.log()
			pixels, tokens := tensorOf(t, ref.cases["pixels"]), tensorOf(t, ref.cases["tokens"])

			names := ref.layers.Names()
			outs := graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
				m := biomedIntermediates(scope, cfg, pixels, tokens)
				nodes := make([]*Node, len(names))
				for i, n := range names {
					if nodes[i] = m[n]; nodes[i] == nil {
						nodes[i] = ScalarZero(pixels.Graph(), pixels.DType()) // reported below
					}
				}
				return nodes
			}, pixels, tokens)
			for i, n := range names {
				if got := outs[i].Shape().Dimensions; !slices.Equal(got, ref.layers[n].Shape) {
					t.Errorf("%s: shape %v, OpenCLIP %v (is the intermediate computed?)", n, got, ref.layers[n].Shape)
					continue
				}
				r.check(n, n, graphtest.Float32s(t, outs[i]), floats(t, ref.layers, n), tolFeatures)
			}

			outs = graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
				img, txt := EncodeImage(scope, cfg, pixels), EncodeText(scope, cfg, tokens)
				return []*Node{img, txt, Normalize(img), Normalize(txt), Logits(scope, img, txt)}
			}, pixels, tokens)
			for i, c := range []struct {
				name string
				tol  float64
			}{{"image_features", tolFeatures}, {"text_features", tolFeatures},
				{"image_features_normalized", tolNormalized}, {"text_features_normalized", tolNormalized},
				{"logits_per_image", tolFeatures}} {
				r.check("cases/"+c.name, c.name, graphtest.Float32s(t, outs[i]), floats(t, ref.cases, c.name), c.tol)
			}
		})
	}
}

// biomedIntermediates computes, under the names of the reference's forward
// hooks, the output of every module generate.py records.
func biomedIntermediates(scope *model.Scope, c Config, pixels, tokens *Node) map[string]*Node {
	out := map[string]*Node{}
	p := c.Precision

	vt := mustTimm(c)
	// aux reaches modules a second time, outside the towers' own scopes.
	aux := scope.ResetVisited().In("visual").In("trunk")
	g := pixels.Graph()
	conv := aux.In("patch_embed").In("proj")
	kernel := Reshape(conv.GetVariable("weight").NodeValue(g), vt.Width, -1)
	out["visual.trunk.patch_embed"] = transformer.AddTrailing(transformer.Project(vit.Patches(pixels, vt.PatchSize), kernel, p), conv.GetVariable("bias").NodeValue(g))

	visual := scope.ResetVisited().In("visual")
	trunk := visual.In("trunk")
	x := timmvit.Embed(trunk, vt, p, pixels)
	out["visual.trunk.embed"] = x
	blocks := trunk.In("blocks")
	for i := range vt.Depth {
		x = timmvit.Block(blocks.In("%d", i), vt, p, x)
		out[fmt.Sprintf("visual.trunk.blocks.%d", i)] = x
	}
	if !vt.FCNorm {
		out["visual.trunk.norm"] = transformer.LayerNormEps(aux.In("norm"), x, timmvit.LayerNormEpsilon)
	}
	pooled := timmvit.Pool(trunk, vt, p, x)
	out["visual.trunk"] = pooled
	out["visual"] = timmvit.Head(visual.In("head"), vt, p, pooled)

	ht := mustHF(c)
	text := scope.ResetVisited().In("text")
	tr := text.In("transformer")
	mask := bert.PaddingMask(tokens, ht.Model.PadTokenID)
	h := bert.Embeddings(tr.In("embeddings"), ht.Model, tokens)
	out["text.transformer.embeddings"] = h
	layers := tr.In("encoder").In("layer")
	for i := range ht.Model.NumHiddenLayers {
		h = bert.Layer(layers.In("%d", i), ht.Model, p, h, bert.KeyBias(mask))
		out[fmt.Sprintf("text.transformer.encoder.layer.%d", i)] = h
	}
	pooledText := hftext.Pool(tr, ht, p, h, mask)
	out["text.pooler"] = pooledText
	out["text"] = hftext.Project(text.In("proj"), ht, p, pooledText)
	return out
}

// TestBiomedCLIPShapedVariants runs the tiny model with the other pooler
// and head settings OpenCLIP offers (variants.json: each variant's model
// config, the tensors it does not share with the main model, and its
// features), including two with embeddings so small that the first
// LayerNorms' eps (timm's 1e-6, BERT's 1e-12) decides the output.
func TestBiomedCLIPShapedVariants(t *testing.T) {
	ref := loadBiomedRef(t, "tiny")
	dir := filepath.Join(biomedRefDir, "tiny")
	data, err := os.ReadFile(filepath.Join(dir, "variants.json"))
	if err != nil {
		t.Fatal(err)
	}
	var variants map[string]struct {
		ModelCfg json.RawMessage `json:"model_cfg"`
		Tower    string          `json:"tower"`
	}
	if err := json.Unmarshal(data, &variants); err != nil {
		t.Fatal(err)
	}
	extras, _, err := weights.ReadFile(filepath.Join(dir, "variants.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var main struct {
		HFTextConfig json.RawMessage `json:"hf_text_config"`
	}
	if err := json.Unmarshal(ref.config, &main); err != nil {
		t.Fatal(err)
	}
	if len(variants) < 12 {
		t.Fatalf("variants.json has %d variants, want the 12 generate.py writes", len(variants))
	}
	r := &parityReport{t: t, model: "tiny variants", worst: map[string]float64{}}
	defer r.log()
	for _, name := range slices.Sorted(maps.Keys(variants)) {
		v := variants[name]
		t.Run(name, func(t *testing.T) {
			wrapped, err := json.Marshal(map[string]json.RawMessage{"model_cfg": v.ModelCfg, "hf_text_config": main.HFTextConfig})
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ParseConfigJSON(wrapped)
			if err != nil {
				t.Fatal(err)
			}
			sd := weights.StateDict{}
			for _, p := range Params(cfg) {
				if x, ok := extras[name+"/"+p.Name]; ok {
					sd[p.Name] = x
				} else if x, ok := ref.weights[p.Name]; ok {
					sd[p.Name] = x
				}
			}
			store, err := NewStore(cfg, sd) // fails when our layout misses or adds a tensor OpenCLIP has
			if err != nil {
				t.Fatal(err)
			}
			for extra := range extras {
				if n, ok := strings.CutPrefix(extra, name+"/"); ok && !strings.HasSuffix(n, "_features") {
					if _, used := sd[n]; !used {
						t.Errorf("OpenCLIP's variant has %s, our layout does not", n)
					}
				}
			}
			input, encode := ref.cases["pixels"], EncodeImage
			if v.Tower == "text" {
				input, encode = ref.cases["tokens"], EncodeText
			}
			outs := graphtest.Run(t, store, func(scope *model.Scope, x *Node) *Node {
				return encode(scope, cfg, x)
			}, tensorOf(t, input))
			feature := v.Tower + "_features"
			r.check(name, name+" "+feature, graphtest.Float32s(t, outs[0]), floats(t, extras, name+"/"+feature), tolFeatures)
		})
	}
}

// TestBiomedCLIPShapedTrainsAndRunsBF16 differentiates the contrastive loss
// of the tiny model with respect to every parameter (each must get a
// finite, non-zero gradient, so the towers can be trained and none is cut
// off the graph), and runs it bf16-mixed: the features must stay close to
// OpenCLIP's float32 ones yet differ from them by more than float32
// rounding, which shows the new towers honour the precision.
func TestBiomedCLIPShapedTrainsAndRunsBF16(t *testing.T) {
	ref := loadBiomedRef(t, "tiny")
	cfg, err := ParseConfigJSON(ref.config)
	if err != nil {
		t.Fatal(err)
	}
	store, err := NewStore(cfg, ref.weights)
	if err != nil {
		t.Fatal(err)
	}
	params := Params(cfg)
	pixels, tokens := tensorOf(t, ref.cases["pixels"]), tensorOf(t, ref.cases["tokens"])
	n := min(ref.cases["pixels"].Shape[0], ref.cases["tokens"].Shape[0])
	grads := graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
		img := EncodeImage(scope, cfg, SliceAxis(pixels, 0, AxisRange(0, n)))
		txt := EncodeText(scope, cfg, SliceAxis(tokens, 0, AxisRange(0, n)))
		loss := ContrastiveLoss(Logits(scope, img, txt))
		vars := make([]*Node, len(params))
		for i, p := range params {
			vars[i] = store.GetVariable(transformer.VariablePath(p.Name)).NodeValue(pixels.Graph())
		}
		return Gradient(loss, vars...)
	}, pixels, tokens)
	for i, p := range params {
		g := graphtest.Float32s(t, grads[i])
		nonzero := false
		for _, v := range g {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: gradient %g", p.Name, v)
			}
			nonzero = nonzero || v != 0
		}
		if !nonzero {
			t.Errorf("%s: gradient is zero everywhere", p.Name)
		}
	}

	cfg.Precision = transformer.BFloat16Mixed
	outs := graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
		return []*Node{Normalize(EncodeImage(scope, cfg, pixels)), Normalize(EncodeText(scope, cfg, tokens))}
	}, pixels, tokens)
	for i, name := range []string{"image_features_normalized", "text_features_normalized"} {
		got, want := graphtest.Float32s(t, outs[i]), floats(t, ref.cases, name)
		diff, cos := maxAbsDiff(got, want), minRowCosine(got, want, cfg.EmbedDim)
		t.Logf("bf16 %s: max abs diff %.3g, min cosine %.6f", name, diff, cos)
		if diff > 2e-2 || cos < 0.999 {
			t.Errorf("%s: bf16 too far from float32 (max abs diff %.3g, min cosine %.6f)", name, diff, cos)
		}
		if diff < 1e-4 {
			t.Errorf("%s: max abs diff %.3g is float32 rounding: the products did not run in bf16", name, diff)
		}
	}
}
