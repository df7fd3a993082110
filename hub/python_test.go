package hub_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/hub/hubtest"
)

// pythonDownload runs huggingface_hub's hf_hub_download against srv and
// returns the path it prints.
func pythonDownload(t *testing.T, python, endpoint, cache string, offline bool, repo, file string) string {
	t.Helper()
	script := "import sys\nfrom huggingface_hub import hf_hub_download\nprint(hf_hub_download(sys.argv[1], sys.argv[2]))\n"
	cmd := exec.Command(python, "-c", script, repo, file)
	cmd.Env = append(os.Environ(), "HF_ENDPOINT="+endpoint, "HF_HUB_CACHE="+cache, "HF_HUB_DISABLE_TELEMETRY=1", "HF_TOKEN=")
	if offline {
		cmd.Env = append(cmd.Env, "HF_HUB_OFFLINE=1")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python hf_hub_download %s %s: %v\n%s", repo, file, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestPythonInterop: Python's huggingface_hub and this package share one
// cache both ways. It needs a Python with huggingface_hub: set
// BMCA_HUB_PYTHON to its interpreter.
func TestPythonInterop(t *testing.T) {
	python := os.Getenv("BMCA_HUB_PYTHON")
	if python == "" {
		t.Skip("set BMCA_HUB_PYTHON to a python with huggingface_hub installed to check cache sharing with it")
	}
	srv := hubtest.New()
	defer srv.Close()
	files := map[string][]byte{"open_clip_config.json": []byte(`{"model_cfg": {}}`), "open_clip_model.safetensors": payload(3<<20, 11)}
	srv.Push("org/from-python", files)
	srv.Push("org/from-go", files)
	cache := t.TempDir()
	c := &hub.Client{Endpoint: srv.URL(), CacheDir: cache, Retry: fast}

	// Python downloads; Go finds the files offline, and online without a GET.
	for name := range files {
		pyPath := pythonDownload(t, python, srv.URL(), cache, false, "org/from-python", name)
		for _, offline := range []bool{true, false} {
			c.Offline = offline
			before := len(srv.Requests())
			f, err := c.Download(context.Background(), hub.Ref{Repo: "org/from-python"}, name)
			if err != nil {
				t.Fatalf("offline=%v %s: %v", offline, name, err)
			}
			if f.Path != pyPath {
				t.Errorf("offline=%v %s: Go found %s, Python wrote %s", offline, name, f.Path, pyPath)
			}
			for _, r := range srv.Requests()[before:] {
				if r.Method == "GET" {
					t.Errorf("offline=%v %s: downloaded again: %+v", offline, name, r)
				}
			}
		}
	}
	// Go downloads; Python finds the files with HF_HUB_OFFLINE=1.
	c.Offline = false
	for name, data := range files {
		f, err := c.Download(context.Background(), hub.Ref{Repo: "org/from-go"}, name)
		if err != nil {
			t.Fatal(err)
		}
		pyPath := pythonDownload(t, python, srv.URL(), cache, true, "org/from-go", name)
		got, err := os.ReadFile(pyPath)
		if err != nil || pyPath != f.Path || !bytes.Equal(got, data) {
			t.Errorf("%s: Python offline found %s (%v), Go wrote %s", name, pyPath, err, f.Path)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "models--org--from-go", "refs", "main")); err != nil {
		t.Error(err)
	}
}
