package cli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/internal/hubfixture"
	"github.com/bmca/bmca/model/clip"
)

// TestResolveTokenizer: which tokenizer a model gets, from where, and what
// an error tells the user to pass when none can be had.
func TestResolveTokenizer(t *testing.T) {
	ctx := context.Background()
	srv := hubtest.New()
	defer srv.Close()
	m := hubfixture.PublishBiomedCLIP(t, srv)
	hubfixture.Env(t, srv)
	raw, err := configs.Model("tiny")
	if err != nil {
		t.Fatal(err)
	}
	tiny, err := clip.ParseConfigJSON(raw)
	if err != nil {
		t.Fatal(err)
	}
	id := func(tok string) int32 { return int32(slices.Index(m.Vocab, tok)) }
	// "a chest ct" as BERT's tokenizer gives it from the published vocabulary.
	published := append([]int32{id("[CLS]"), id("a"), id("chest"), id("ct"), id("[SEP]")}, make([]int32, 11)...)

	// A tokenizer saved next to a checkpoint: the published vocabulary
	// with its words in reverse order, so its ids differ.
	saved := t.TempDir()
	reversed := slices.Clone(m.Vocab)
	slices.Reverse(reversed[5:])
	if err := os.MkdirAll(filepath.Join(saved, TokenizerSavedDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(saved, TokenizerSavedDir, "vocab.txt"), []byte(strings.Join(reversed, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rid := func(tok string) int32 { return int32(slices.Index(reversed, tok)) }
	savedIDs := append([]int32{rid("[CLS]"), rid("a"), rid("chest"), rid("ct"), rid("[SEP]")}, make([]int32, 11)...)

	embedFlags := TokenizerFlags{Name: "--tokenizer ", Vocab: "--vocab "}
	small := m.Config
	smallBERT, _ := small.TextCfg.HFModel()
	smallBERT.VocabSize = 50
	small.TextCfg.HFModelConfig = &smallBERT
	for _, tc := range []struct {
		name      string
		req       TokenizerRequest
		offline   bool
		wantIDs   []int32
		wantFrom  string
		wantHub   bool     // requests reach the hub
		wantError []string // all in the error
	}{
		{name: "auto takes hf_tokenizer_name from the hub", req: TokenizerRequest{Model: m.Config},
			wantIDs: published, wantFrom: "text_cfg.hf_tokenizer_name " + hubfixture.TokenizerRepo, wantHub: true},
		{name: "auto prefers a tokenizer saved with the checkpoint", req: TokenizerRequest{Choice: config.Tokenizer{Name: "auto"}, Model: m.Config, CheckpointDir: saved},
			wantIDs: savedIDs, wantFrom: "saved with the checkpoint"},
		{name: "auto ignores the CLIP vocabulary for a BERT tower", req: TokenizerRequest{Choice: config.Tokenizer{Name: "auto", Vocab: "bpe_simple_vocab_16e6.txt.gz"}, Model: m.Config, CheckpointDir: saved},
			wantIDs: savedIDs},
		{name: "bert-wordpiece from a hub repository", req: TokenizerRequest{Choice: config.Tokenizer{Name: "bert-wordpiece", Vocab: "hf-hub:" + hubfixture.TokenizerRepo + "@main"}, Model: m.Config, CheckpointDir: saved},
			wantIDs: published, wantFrom: "hf-hub:" + hubfixture.TokenizerRepo, wantHub: true},
		{name: "bert-wordpiece from a folder", req: TokenizerRequest{Choice: config.Tokenizer{Name: "bert-wordpiece", Vocab: filepath.Join(saved, TokenizerSavedDir)}, Model: m.Config},
			wantIDs: savedIDs},
		{name: "offline without a cached tokenizer says what to pass", req: TokenizerRequest{Model: m.Config, Flags: ConfigTokenizerFlags}, offline: true,
			wantError: []string{"hf_tokenizer_name " + hubfixture.TokenizerRepo, "--set tokenizer.name=bert-wordpiece --set tokenizer.vocab=DIR", "hf-hub:ORG/NAME", `"tokenizer"`}},
		{name: "a CLIP tower without its vocabulary says what to pass", req: TokenizerRequest{Model: tiny, Flags: embedFlags},
			wantError: []string{"clip-bpe", "--vocab PATH/bpe_simple_vocab_16e6.txt.gz"}},
		{name: "clip-bpe cannot feed a BERT tower", req: TokenizerRequest{Choice: config.Tokenizer{Name: "clip-bpe", Vocab: "x.gz"}, Origin: "--config run.yaml", Model: m.Config},
			wantError: []string{"clip-bpe", "--config run.yaml", hubfixture.TextModelRepo, "auto"}},
		{name: "byte-level cannot feed a BERT tower", req: TokenizerRequest{Choice: config.Tokenizer{Name: "byte-level"}, Model: m.Config},
			wantError: []string{"byte-level", hubfixture.TextModelRepo}},
		{name: "bert-wordpiece cannot feed the CLIP tower", req: TokenizerRequest{Choice: config.Tokenizer{Name: "bert-wordpiece", Vocab: saved}, Model: tiny},
			wantError: []string{"bert-wordpiece", "largest id"}},
		{name: "ids beyond the model's embeddings", req: TokenizerRequest{Model: small, CheckpointDir: saved},
			wantError: []string{"ids up to 99", "embeds 50"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.offline {
				t.Setenv("HF_HOME", t.TempDir())
				t.Setenv("HF_HUB_OFFLINE", "1")
			}
			before := len(srv.Requests())
			tok, err := ResolveTokenizer(ctx, tc.req)
			if len(tc.wantError) > 0 {
				if err == nil {
					t.Fatalf("got %s, want an error", tok)
				}
				for _, want := range tc.wantError {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q lacks %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tok.Encode("A Chest CT"); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("%s: ids %v, want %v", tok, got, tc.wantIDs)
			}
			if !strings.Contains(tok.From, tc.wantFrom) || tok.Name != "bert-wordpiece" {
				t.Errorf("%s, want bert-wordpiece from %q", tok, tc.wantFrom)
			}
			if asked := len(srv.Requests()) > before; asked != tc.wantHub {
				t.Errorf("requests to the hub: %v, want %v", asked, tc.wantHub)
			}
		})
	}
}
