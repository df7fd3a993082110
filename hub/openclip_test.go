package hub_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/hub/hubtest"
)

const hfTextConfig = `{"model_cfg": {"embed_dim": 8, "text_cfg": {"hf_model_name": "bio/bert", "hf_tokenizer_name": "bio/bert-tok", "hf_proj_type": "mlp"}},
 "preprocess_cfg": {"mean": [0.5, 0.5, 0.5]}}`

// TestOpenCLIP: the config, the weights (safetensors preferred, else the
// .bin), and for an HF text tower the tokenizer files that exist and the
// text model's config.json, all from one commit; offline afterwards.
func TestOpenCLIP(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	commit := srv.Push("org/biomed", map[string][]byte{
		"open_clip_config.json":       []byte(hfTextConfig),
		"open_clip_pytorch_model.bin": payload(5000, 1),
	})
	tokCommit := srv.Push("bio/bert-tok", map[string][]byte{"vocab.txt": []byte("[PAD]\n[UNK]\n"), "tokenizer_config.json": []byte(`{"do_lower_case": true}`)})
	srv.Push("bio/bert", map[string][]byte{"config.json": []byte(`{"hidden_size": 8}`), "pytorch_model.bin": payload(100, 2)})
	srv.Push("org/plain", map[string][]byte{"open_clip_config.json": []byte(`{"model_cfg": {"embed_dim": 8}}`),
		"open_clip_model.safetensors": payload(100, 3), "open_clip_pytorch_model.bin": payload(100, 4)})
	c := newClient(t, srv)
	ctx := context.Background()

	ck, err := c.OpenCLIP(ctx, hub.Ref{Repo: "org/biomed", Revision: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if ck.Commit != commit || ck.Dir != filepath.Join(c.CacheDir, "models--org--biomed", "snapshots", commit) ||
		ck.Weights != filepath.Join(ck.Dir, hub.PyTorchFile) {
		t.Errorf("checkpoint %+v", ck)
	}
	if ck.Tokenizer != filepath.Join(c.CacheDir, "models--bio--bert-tok", "snapshots", tokCommit) {
		t.Errorf("tokenizer dir %s", ck.Tokenizer)
	}
	for _, f := range []string{"vocab.txt", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(ck.Tokenizer, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(ck.TextModel, "config.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(ck.TextModel, "pytorch_model.bin")); err == nil {
		t.Error("downloaded the text model's weights, which the OpenCLIP checkpoint already holds")
	}
	// Absent files were recorded, as huggingface_hub records them.
	if _, err := os.Stat(filepath.Join(c.CacheDir, "models--org--biomed", ".no_exist", commit, hub.SafetensorsFile)); err != nil {
		t.Error(err)
	}

	plain, err := c.OpenCLIP(ctx, hub.Ref{Repo: "org/plain"})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(plain.Weights) != hub.SafetensorsFile || plain.Tokenizer != "" || plain.TextModel != "" {
		t.Errorf("plain checkpoint %+v", plain)
	}

	srv.Close()
	c.Offline = true
	again, err := c.OpenCLIP(ctx, hub.Ref{Repo: "org/biomed", Revision: "main"})
	if err != nil {
		t.Fatalf("offline: %v", err)
	}
	if *again != *ck {
		t.Errorf("offline %+v, online %+v", again, ck)
	}
}

// TestOpenCLIPErrors: a repository that is not an OpenCLIP model says so.
func TestOpenCLIPErrors(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/hf-only", map[string][]byte{"config.json": []byte("{}"), "model.safetensors": payload(10, 1)})
	srv.Push("org/no-weights", map[string][]byte{"open_clip_config.json": []byte("{}")})
	srv.Push("org/bad-tok", map[string][]byte{"open_clip_config.json": []byte(`{"model_cfg": {"text_cfg": {"hf_tokenizer_name": "org/missing"}}}`),
		"open_clip_model.safetensors": payload(10, 2)})
	c := newClient(t, srv)
	for _, tc := range []struct {
		repo string
		kind error
		says string
	}{
		{"org/hf-only", hub.ErrEntryNotFound, "is org/hf-only an OpenCLIP model"},
		{"org/no-weights", hub.ErrEntryNotFound, "neither open_clip_model.safetensors nor open_clip_pytorch_model.bin"},
		{"org/bad-tok", hub.ErrRepoNotFound, "text_cfg.hf_tokenizer_name"},
	} {
		_, err := c.CheckpointPath(context.Background(), "hf-hub:"+tc.repo)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %v saying %q", tc.repo, err, tc.kind, tc.says)
		}
	}
	before := len(srv.Requests())
	if p, err := c.CheckpointPath(context.Background(), "runs/x"); p != "runs/x" || err != nil {
		t.Errorf("a path changed: %s %v", p, err)
	}
	if len(srv.Requests()) != before {
		t.Error("a local path caused a request")
	}
}
