package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/internal/hubfixture"
	"github.com/bmca/bmca/model/checkpoint"
)

// TestExportHubBiomedCLIP: export --checkpoint hf-hub:… of a tiny
// BiomedCLIP published as BiomedCLIP is (a torch.save .bin, the text
// model's config.json in its own repository) writes an OpenCLIP directory
// that opens with the hub gone: the same tensors, the same model (the text
// model's config.json now inside, as hf_text_config), the model's own
// preprocessing, and model_cfg still naming the text model and tokenizer
// for OpenCLIP.
func TestExportHubBiomedCLIP(t *testing.T) {
	srv := hubtest.New()
	m := hubfixture.PublishBiomedCLIP(t, srv)
	hubfixture.Env(t, srv)
	out := filepath.Join(t.TempDir(), "biomedclip")
	if log, err := export(t, "--checkpoint", hubfixture.Ref, "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	srv.Close()
	t.Setenv("HF_HOME", t.TempDir()) // nothing cached either

	ck, err := checkpoint.Open(out, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if want := (checkpoint.Format{Container: checkpoint.Safetensors, Layout: checkpoint.OpenCLIP}); ck.Format != want {
		t.Errorf("exported %s, want %s", ck.Format, want)
	}
	sd, err := ck.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sd, m.Weights) {
		t.Errorf("exported tensors %v differ from the published %v", sd.Names(), m.Weights.Names())
	}
	if !reflect.DeepEqual(ck.Config(), m.Config) {
		t.Errorf("exported model %+v, published %+v", ck.Config(), m.Config)
	}
	if ck.Model.Preprocess != hubfixture.Preprocess {
		t.Errorf("exported preprocessing %+v, want the published %+v", ck.Model.Preprocess, hubfixture.Preprocess)
	}
	raw, err := os.ReadFile(filepath.Join(out, checkpoint.OpenCLIPConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ModelCfg struct {
			TextCfg map[string]any `json:"text_cfg"`
		} `json:"model_cfg"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.ModelCfg.TextCfg["hf_model_name"] != hubfixture.TextModelRepo || cfg.ModelCfg.TextCfg["hf_tokenizer_name"] != hubfixture.TokenizerRepo {
		t.Errorf("exported text_cfg %v, want the published names", cfg.ModelCfg.TextCfg)
	}
}
