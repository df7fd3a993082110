package tasks_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/text/tokenizer"
)

// TestRunRemoteShards reads a task's WebDataset shards over HTTP, named in
// the suite file by a brace range of URLs (which must stay URLs, not become
// paths under the suite's data root), and scores them as the same shards
// read from disk.
func TestRunRemoteShards(t *testing.T) {
	dir := t.TempDir()
	targets := []int{0, 0, 1, 1, 2, 2}
	preds := []int{0, 1, 1, 1, 2, 0}
	var shard [2][]member
	for i := range targets {
		key := fmt.Sprintf("s%03d", i)
		shard[i/3] = append(shard[i/3],
			member{key + ".png", pngOfAngle(t, 120*preds[i])},
			member{key + ".cls", []byte(fmt.Sprintf("%d\n", targets[i]))})
	}
	writeTar(t, filepath.Join(dir, "cls-0.tar"), shard[0])
	writeTar(t, filepath.Join(dir, "cls-1.tar"), shard[1])
	var requests atomic.Int32
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()

	suiteFor := func(shards string) *tasks.Suite {
		body := fmt.Sprintf(`name: remote
data_root: elsewhere
tasks:
  - name: angles
    kind: zeroshot_classification
    shards: [%q]
    classes: ["0 degrees", "120 degrees", "240 degrees"]
    templates: ["{c}"]
`, shards)
		path := filepath.Join(dir, "suite.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := tasks.LoadSuite(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	env := tasks.Env{Encoder: angleEncoder{}, Tokenize: tasks.FromTokenizer(tokenizer.NewByteLevel(24)), Image: decodePNG, BatchSize: 4}

	remoteSuite := suiteFor(srv.URL + "/cls-{0..1}.tar")
	if got, want := remoteSuite.Tasks[0].Shards[0], srv.URL+"/cls-{0..1}.tar"; got != want {
		t.Fatalf("the suite turned the URL into %q", got)
	}
	remote, err := tasks.Run(context.Background(), remoteSuite, env)
	if err != nil {
		t.Fatal(err)
	}
	local, err := tasks.Run(context.Background(), suiteFor(filepath.Join(dir, "cls-{0..1}.tar")), env)
	if err != nil {
		t.Fatal(err)
	}
	if requests.Load() < 2 {
		t.Errorf("%d requests reached the server, want one per shard", requests.Load())
	}
	if remote[0].Skipped || remote[0].Examples != 6 {
		t.Fatalf("remote task: %+v", remote[0])
	}
	if got, want := remote[0].Metrics[tasks.MetricAcc1], 4.0/6; got != want {
		t.Errorf("remote acc1 %v, want %v", got, want)
	}
	for k, v := range local[0].Metrics {
		if remote[0].Metrics[k] != v {
			t.Errorf("%s: remote %v, local %v", k, remote[0].Metrics[k], v)
		}
	}
}
