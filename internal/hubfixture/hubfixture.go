// Package hubfixture publishes, on a local hub (hub/hubtest), a tiny
// BiomedCLIP-shaped OpenCLIP model in BiomedCLIP's own hub layout, for
// tests of the commands' hf-hub: paths. The model is the committed
// reference that the real open_clip, timm and transformers code made
// (model/clip/testdata/biomedclip/tiny: a timm ViT image tower and a BERT
// text tower), published as three repositories, as BiomedCLIP and its text
// model are:
//
//	org/tiny-biomedclip       open_clip_config.json (model_cfg naming the text model and tokenizer,
//	                          preprocess_cfg; no hf_text_config, which only bmca writes) and
//	                          open_clip_pytorch_model.bin (torch.save, with the position_ids
//	                          buffer transformers < 4.31 saved; no safetensors file)
//	org/tiny-bert             config.json of the text model (with fields transformers writes
//	                          that do not change the model)
//	org/tiny-bert-tokenizer   vocab.txt and tokenizer_config.json of an uncased BERT tokenizer
//
//	srv := hubtest.New()
//	defer srv.Close()
//	m := hubfixture.PublishBiomedCLIP(t, srv)
//	hubfixture.Env(t, srv) // HF_ENDPOINT → srv, a fresh HF_HOME
//	ck, err := cli.OpenCheckpoint(ctx, m.Ref, checkpoint.Options{}, nil)
package hubfixture

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// Repository names of the published model.
const (
	Repo          = "org/tiny-biomedclip"
	TextModelRepo = "org/tiny-bert"
	TokenizerRepo = "org/tiny-bert-tokenizer"
	// Ref is the model as a command takes it.
	Ref = "hf-hub:" + Repo
)

// Preprocess is the published preprocess_cfg: not OpenAI's (which bmca
// applies to a model without one), so a test sees whether the model's own
// is used.
var Preprocess = clip.PreprocessConfig{Mean: [3]float64{0.5, 0.4, 0.3}, Std: [3]float64{0.2, 0.25, 0.3},
	Interpolation: "bicubic", ResizeMode: "shortest"}

// BiomedCLIP is the published model and what a test compares with.
type BiomedCLIP struct {
	// Config is the model as the published files describe it, with the
	// text model's config.json applied.
	Config clip.Config
	// Weights are the model's tensors under OpenCLIP's names (without the
	// position_ids buffer the .bin also holds).
	Weights weights.StateDict
	// Cases are the reference's inputs and OpenCLIP's outputs on them:
	// pixels (already preprocessed), tokens, image_features, text_features.
	Cases weights.StateDict
	// Vocab is vocab.txt, one token per id.
	Vocab []string
	// Files are the published files per repository.
	Files map[string]map[string][]byte
}

// tinyReference finds the committed reference from the test's package
// folder: the repository root is the nearest folder above with go.mod.
func tinyReference(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "model", "clip", "testdata", "biomedclip", "tiny")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("hubfixture: no go.mod above the test's folder")
		}
		dir = parent
	}
}

// PublishBiomedCLIP pushes the three repositories to srv and returns what
// was published.
func PublishBiomedCLIP(t testing.TB, srv *hubtest.Server) *BiomedCLIP {
	t.Helper()
	ref := tinyReference(t)
	read := func(name string) weights.StateDict {
		sd, _, err := weights.ReadFile(filepath.Join(ref, name))
		if err != nil {
			t.Fatal(err)
		}
		return sd
	}
	m := &BiomedCLIP{Weights: read("open_clip_model.safetensors"), Cases: read("cases.safetensors"), Vocab: vocabulary()}
	raw, err := os.ReadFile(filepath.Join(ref, "open_clip_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ModelCfg     map[string]json.RawMessage `json:"model_cfg"`
		HFTextConfig map[string]any             `json:"hf_text_config"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var text map[string]any
	if err := json.Unmarshal(cfg.ModelCfg["text_cfg"], &text); err != nil {
		t.Fatal(err)
	}
	text["hf_model_name"], text["hf_tokenizer_name"] = TextModelRepo, TokenizerRepo
	cfg.ModelCfg["text_cfg"] = mustJSON(t, text)
	hubConfig := mustJSON(t, map[string]any{"model_cfg": cfg.ModelCfg,
		"preprocess_cfg": map[string]any{"mean": Preprocess.Mean, "std": Preprocess.Std}})

	// transformers writes these too; none changes the model.
	bert := cfg.HFTextConfig
	bert["architectures"] = []string{"BertModel"}
	bert["attention_probs_dropout_prob"], bert["hidden_dropout_prob"] = 0.1, 0.1
	bert["initializer_range"], bert["transformers_version"] = 0.02, "4.25.1"

	// BiomedCLIP's .bin was saved with transformers < 4.31, which kept
	// BERT's position_ids buffer in the state dict; OpenCLIP drops it.
	withBuffer := weights.StateDict{"text.transformer.embeddings.position_ids": weights.FromInt64s([]int{1, 24}, positions(24))}
	for name, x := range m.Weights {
		withBuffer[name] = x
	}
	var bin bytes.Buffer
	if err := pytorchtest.Write(&bin, pytorchtest.StateDict(withBuffer, ""), pytorchtest.Options{}); err != nil {
		t.Fatal(err)
	}

	m.Files = map[string]map[string][]byte{
		Repo: {"open_clip_config.json": hubConfig, "open_clip_pytorch_model.bin": bin.Bytes(),
			"README.md": []byte("---\nlicense: mit\nlibrary_name: open_clip\n---\nA tiny BiomedCLIP-shaped test model.\n")},
		TextModelRepo: {"config.json": mustJSON(t, bert)},
		TokenizerRepo: {"vocab.txt": []byte(strings.Join(m.Vocab, "\n") + "\n"),
			"tokenizer_config.json": mustJSON(t, map[string]any{"do_lower_case": true, "model_max_length": 512,
				"tokenizer_class": "BertTokenizer", "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
				"unk_token": "[UNK]", "mask_token": "[MASK]"})},
	}
	for repo, files := range m.Files {
		srv.Push(repo, files)
	}
	if m.Config, err = clip.ParseConfigJSON(withTextConfig(t, hubConfig, m.Files[TextModelRepo]["config.json"])); err != nil {
		t.Fatal(err)
	}
	return m
}

// withTextConfig adds the text model's config.json to an
// open_clip_config.json as bmca's own checkpoints carry it.
func withTextConfig(t testing.TB, hubConfig, bert []byte) []byte {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(hubConfig, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg[hftext.ConfigKey] = bert
	return mustJSON(t, cfg)
}

// vocabulary is an uncased BERT vocabulary of 100 tokens (the reference's
// vocab_size) in BERT's order of specials as the reference's tokens use
// them ([PAD] 0, [CLS] 2, [SEP] 3): every lower-case word is spelled with
// its letters, the first one word-initial and the rest "##"-continued.
func vocabulary() []string {
	v := []string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
	for c := 'a'; c <= 'z'; c++ {
		v = append(v, string(c))
	}
	for c := 'a'; c <= 'z'; c++ {
		v = append(v, "##"+string(c))
	}
	for c := '0'; c <= '9'; c++ {
		v = append(v, string(c), "##"+string(c))
	}
	v = append(v, ".", ",", "-", "(", ")", "/", ":", ";", "'", "%")
	v = append(v, "photo", "scan", "image", "of", "the", "an", "ct", "mri", "slide", "stain", "cell", "chest", "tissue")
	return v
}

func positions(n int) []int64 {
	p := make([]int64, n)
	for i := range p {
		p[i] = int64(i)
	}
	return p
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Env points the Hugging Face environment at srv with an empty cache of
// the test's own (HF_HOME under t.TempDir()), no token and online.
func Env(t testing.TB, srv *hubtest.Server) {
	t.Helper()
	t.Setenv("HF_ENDPOINT", srv.URL())
	t.Setenv("HF_HOME", filepath.Join(t.TempDir(), "hf"))
	for _, k := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		t.Setenv(k, "")
	}
}
