package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/internal/hubfixture"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/text/wordpiece"
	"github.com/bmca/bmca/train"
)

// biomedRunConfig is a run continuing the published tiny BiomedCLIP
// (hubfixture) on the demo fixture's synthetic data: its model section
// is the published model_cfg, with the text model's config.json under
// hf_model_config (bmca knows no built-in "org/tiny-bert"), and its
// tokenizer is the model's own.
func biomedRunConfig(synthDir, output string) string {
	return fmt.Sprintf(`model:
  embed_dim: 24
  vision_cfg: {timm_model_name: vit_bmca_tiny_patch8_32, timm_model_pretrained: false, timm_pool: "", timm_proj: linear,
    image_size: 32, patch_size: 8, width: 32, layers: 2, head_width: 16}
  text_cfg:
    hf_model_name: %s
    hf_tokenizer_name: %s
    hf_proj_type: mlp
    hf_pooler_type: cls_last_hidden_state_pooler
    context_length: 16
    hf_model_config: {model_type: bert, vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2,
      intermediate_size: 64, max_position_embeddings: 24, architectures: [BertModel]}
tokenizer: {name: auto}
data:
  synthetic: {enabled: true, dir: %q, seed: 7, train_samples: 96, eval_samples_per_task: 12}
  shuffle_buffer: 8
train: {steps: 1, batch_size: 8, lr: 1.0e-3, warmup: 1000, seed: 5, checkpoint_every: 1, log_every: 1, pretrained: %s}
eval: {batch_size: 16}
output: %q
`, hubfixture.TextModelRepo, hubfixture.TokenizerRepo, synthDir, hubfixture.Ref, output)
}

// TestBiomedCLIPAgainstARun is eval --compare hf-hub:…BiomedCLIP… runs/mine
// against a local hub serving a tiny BiomedCLIP in BiomedCLIP's layout
// (.bin only, no text model config in open_clip_config.json, tokenizer
// and text model in their own repositories), next to a bmca run with
// another tokenizer (byte-level) and other preprocessing (OpenAI's), with
// no --config: each model's tokenizer and preprocessing come from its
// checkpoint. A third row continues the hub model's training in bmca
// (train --pretrained hf-hub:…, tokenizer auto), which eval then reads
// back from its run config.
func TestBiomedCLIPAgainstARun(t *testing.T) {
	ctx := context.Background()
	d := sharedDemo(t)
	srv := hubtest.New()
	defer srv.Close()
	m := hubfixture.PublishBiomedCLIP(t, srv)
	hubfixture.Env(t, srv)
	dir := t.TempDir()

	// train --pretrained hf-hub:… with the model's own WordPiece tokenizer.
	cfgPath := filepath.Join(dir, "biomed.yaml")
	biomedRun := filepath.Join(dir, "biomed-run")
	if err := os.WriteFile(cfgPath, []byte(biomedRunConfig(filepath.Join(filepath.Dir(d.run), "synth"), biomedRun)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var trainLog bytes.Buffer
	if err := Train(ctx, cfg, TrainArgs{Out: &trainLog, Progress: io.Discard}); err != nil {
		t.Fatalf("%v\n%s", err, trainLog.String())
	}
	for _, want := range []string{"timm vit_bmca_tiny_patch8_32 (32px/p8, w32×2) + HF org/tiny-bert (BERT w32×2), embed 24"} {
		if !strings.Contains(trainLog.String(), want) {
			t.Errorf("training log lacks %q:\n%s", want, trainLog.String())
		}
	}
	trained, err := train.Load(biomedRun)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, trained.Weights, m.Weights); d > 1e-3 {
		t.Errorf("trained weights are %g from the hub's", d)
	}
	if d := maxDiff(t, trained.Weights, clip.Init(m.Config, cfg.Train.Seed)); d < 1e-2 {
		t.Errorf("trained weights are only %g from a fresh initialisation", d)
	}
	if trained.PreprocessConfig() != hubfixture.Preprocess {
		t.Errorf("the run's preprocessing %+v, want the hub model's %+v", trained.PreprocessConfig(), hubfixture.Preprocess)
	}

	// The leaderboard: the hub model, the demo run, the continued run.
	out := filepath.Join(dir, "eval")
	var report bytes.Buffer
	results, err := Eval(ctx, EvalArgs{Compare: []string{hubfixture.Ref, d.run, biomedRun}, Suite: d.suite, BatchSize: 16,
		Output: out, Out: &report, Progress: io.Discard})
	if err != nil {
		t.Fatalf("%v\n%s", err, report.String())
	}
	labels := []string{"tiny-biomedclip", "run", "biomed-run"}
	rows := map[string][]tasks.Result{}
	for _, r := range results {
		if r.Failed || r.Skipped || len(r.Metrics) == 0 {
			t.Errorf("%s/%s: %+v", r.Model, r.Task, r)
		}
		rows[r.Model] = append(rows[r.Model], r)
	}
	for _, l := range labels {
		if len(rows[l]) == 0 || len(rows[l]) != len(rows[labels[0]]) {
			t.Fatalf("%d results for %s, %d for %s", len(rows[l]), l, len(rows[labels[0]]), labels[0])
		}
	}
	if p := rows["tiny-biomedclip"][0].Pretrained; p != hubfixture.Ref {
		t.Errorf("the hub row's pretrained is %q, want the reference as given", p)
	}
	for _, want := range []string{
		"tokenizer bert-wordpiece (text_cfg.hf_tokenizer_name " + hubfixture.TokenizerRepo + ")",
		"tokenizer byte-level",
	} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	checkLeaderboard(t, filepath.Join(out, "leaderboard.csv"), labels, len(rows[labels[0]]))

	// The hub row is what the published model gives with its own
	// tokenizer and preprocessing, computed here without cli.
	want := evalDirectly(t, m, d.suite)
	for i, r := range rows["tiny-biomedclip"] {
		if r.Task != want[i].Task {
			t.Fatalf("task %s, want %s", r.Task, want[i].Task)
		}
		for k, v := range want[i].Metrics {
			if got, ok := r.Metrics[k]; !ok || got != v {
				t.Errorf("%s %s: eval %v, directly %v", r.Task, k, got, v)
			}
		}
	}

	// Offline, the model and its tokenizer come from the cache alone.
	t.Setenv("HF_HUB_OFFLINE", "1")
	before := len(srv.Requests())
	again, err := Eval(ctx, EvalArgs{Checkpoint: hubfixture.Ref, Suite: d.suite, BatchSize: 16, Tasks: []string{want[0].Task},
		Out: io.Discard, Progress: io.Discard})
	if err != nil {
		t.Fatalf("offline: %v", err)
	}
	if len(again) != 1 || !reflect.DeepEqual(again[0].Metrics, rows["tiny-biomedclip"][0].Metrics) {
		t.Errorf("offline: %+v, want %+v", again, rows["tiny-biomedclip"][0])
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("offline eval sent %d requests", n)
	}

	// --config replaces every checkpoint's run config: the demo's
	// byte-level tokenizer cannot feed the BERT tower, and the error says
	// how each model gets its own.
	demoConfig := &ConfigFlags{Path: filepath.Join(filepath.Dir(d.run), "run.yaml")}
	_, err = Eval(ctx, EvalArgs{Checkpoint: hubfixture.Ref, Suite: d.suite, Config: demoConfig, Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "byte-level") || !strings.Contains(err.Error(), "without --config") {
		t.Errorf("eval of the hub model with the demo run's config: %v", err)
	}
}

// evalDirectly runs the suite on the published model with its tokenizer
// (the published vocab.txt) and preprocessing (its preprocess_cfg), built
// by hand.
func evalDirectly(t *testing.T, m *hubfixture.BiomedCLIP, suitePath string) []tasks.Result {
	t.Helper()
	vocab := filepath.Join(t.TempDir(), "vocab.txt")
	if err := os.WriteFile(vocab, []byte(strings.Join(m.Vocab, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := wordpiece.New(vocab, m.Config.TextCfg.ContextLength)
	if err != nil {
		t.Fatal(err)
	}
	pre := preprocess.Config{ImageSize: m.Config.VisionCfg.ImageSize}
	for i := range 3 {
		pre.Mean[i], pre.Std[i] = float32(hubfixture.Preprocess.Mean[i]), float32(hubfixture.Preprocess.Std[i])
	}
	be, err := OpenBackend("", transformer.Float32)
	if err != nil {
		t.Fatal(err)
	}
	store, err := clip.NewStore(m.Config, m.Weights)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := clip.NewEncoder(be, store, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Finalize()
	suite, err := tasks.LoadSuite(suitePath)
	if err != nil {
		t.Fatal(err)
	}
	results, err := tasks.Run(context.Background(), suite, evalEnv(enc, tok, pre, 16, nil))
	if err != nil {
		t.Fatal(err)
	}
	return results
}

// checkLeaderboard reads leaderboard.csv: a value column per model, and
// for every task (one row per metric) a value of every model.
func checkLeaderboard(t *testing.T, path string, models []string, tasksWant int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	valued := map[string]map[string]bool{} // task → model → has a value
	for _, row := range rows[1:] {
		if row[0] != "task" {
			continue
		}
		if valued[row[1]] == nil {
			valued[row[1]] = map[string]bool{}
		}
		for _, m := range models {
			col := slices.Index(head, m)
			if col < 0 {
				t.Fatalf("leaderboard.csv has no column %s: %v", m, head)
			}
			valued[row[1]][m] = valued[row[1]][m] || row[col] != ""
		}
	}
	if len(valued) != tasksWant {
		t.Errorf("leaderboard.csv has rows for %d tasks, want %d", len(valued), tasksWant)
	}
	for task, has := range valued {
		for _, m := range models {
			if !has[m] {
				t.Errorf("leaderboard.csv: task %s has no value for %s", task, m)
			}
		}
	}
}
