package hub_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/hub"
)

// TestFromEnv: the cache, endpoint, token and offline settings follow
// huggingface_hub's variables and precedence.
func TestFromEnv(t *testing.T) {
	tokenDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(tokenDir, "token"), []byte("hf_fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		env      map[string]string
		cache    string
		endpoint string
		token    string
		offline  bool
	}{
		{"defaults", map[string]string{"HOME": "/home/u"}, "/home/u/.cache/huggingface/hub", hub.DefaultEndpoint, "", false},
		{"XDG_CACHE_HOME", map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}, "/xdg/huggingface/hub", hub.DefaultEndpoint, "", false},
		{"HF_HOME over XDG", map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "HF_HOME": "~/hf"}, "/home/u/hf/hub", hub.DefaultEndpoint, "", false},
		{"legacy HUGGINGFACE_HUB_CACHE", map[string]string{"HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy", hub.DefaultEndpoint, "", false},
		{"HF_HUB_CACHE first, vars expanded", map[string]string{"HF_HOME": "/hf", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "$SCRATCH/hub", "SCRATCH": "/scratch"}, "/scratch/hub", hub.DefaultEndpoint, "", false},
		{"mirror, token, offline", map[string]string{"HF_HOME": "/hf", "HF_ENDPOINT": "https://mirror.example/", "HF_TOKEN": " hf_abc\n", "HF_HUB_OFFLINE": "yes"}, "/hf/hub", "https://mirror.example", "hf_abc", true},
		{"legacy token and offline names", map[string]string{"HF_HOME": "/hf", "HUGGING_FACE_HUB_TOKEN": "hf_old", "TRANSFORMERS_OFFLINE": "1"}, "/hf/hub", hub.DefaultEndpoint, "hf_old", true},
		{"offline 0 is online", map[string]string{"HF_HOME": "/hf", "HF_HUB_OFFLINE": "0"}, "/hf/hub", hub.DefaultEndpoint, "", false},
		{"token file of hf auth login", map[string]string{"HF_HOME": tokenDir}, filepath.Join(tokenDir, "hub"), hub.DefaultEndpoint, "hf_fromfile", false},
		{"HF_TOKEN over the file", map[string]string{"HF_HOME": tokenDir, "HF_TOKEN": "hf_env"}, filepath.Join(tokenDir, "hub"), hub.DefaultEndpoint, "hf_env", false},
		{"HF_TOKEN_PATH", map[string]string{"HF_HOME": "/hf", "HF_TOKEN_PATH": filepath.Join(tokenDir, "token")}, "/hf/hub", hub.DefaultEndpoint, "hf_fromfile", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := hub.FromEnv(func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.CacheDir != filepath.FromSlash(tc.cache) || c.Endpoint != tc.endpoint || string(c.Token) != tc.token || c.Offline != tc.offline {
				t.Errorf("got cache %s endpoint %s token %q offline %v; want %s %s %q %v",
					c.CacheDir, c.Endpoint, string(c.Token), c.Offline, tc.cache, tc.endpoint, tc.token, tc.offline)
			}
		})
	}
	if _, err := hub.FromEnv(func(k string) string { return map[string]string{"HF_ENDPOINT": "mirror.example"}[k] }); err == nil || !strings.Contains(err.Error(), "HF_ENDPOINT") {
		t.Errorf("an endpoint without scheme: %v, want an error naming HF_ENDPOINT", err)
	}
}

func TestParseRef(t *testing.T) {
	good := map[string]hub.Ref{
		"hf-hub:org/name":           {Repo: "org/name", Revision: "main"},
		"hf-hub:gpt2":               {Repo: "gpt2", Revision: "main"},
		"hf-hub:org/Name_1.5@v1.0":  {Repo: "org/Name_1.5", Revision: "v1.0"},
		"hf-hub:org/name@refs/pr/3": {Repo: "org/name", Revision: "refs/pr/3"},
		"hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224": {Repo: "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", Revision: "main"},
	}
	for s, want := range good {
		got, err := hub.ParseRef(s)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", s, got, err, want)
		}
		if s != "hf-hub:org/name@refs/pr/3" && got.String() != s {
			t.Errorf("%s prints as %s", s, got)
		}
	}
	for _, s := range []string{"org/name", "hf-hub:", "hf-hub:org/name@", "hf-hub:a/b/c", "hf-hub:org/../x", "hf-hub:org--x/y",
		"hf-hub:org/na me", "hf-hub:org/name@../../x", "hf-hub:-org/x", "hf-hub:org/x.git"} {
		if _, err := hub.ParseRef(s); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	if !hub.IsRef("hf-hub:org/x") || hub.IsRef("runs/hf-hub:x") || hub.IsRef("./hf-hub") {
		t.Error("IsRef")
	}
}
