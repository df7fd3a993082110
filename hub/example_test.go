package hub_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/hub/hubtest"
)

// A hf-hub: reference becomes a snapshot directory in the Hugging Face
// cache; here the hub is a local replica and the cache a temporary folder.
func ExampleClient_CheckpointPath() {
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/tiny", map[string][]byte{
		"open_clip_config.json":       []byte(`{"model_cfg": {"embed_dim": 8}}`),
		"open_clip_model.safetensors": []byte("weights"),
	})
	cache, _ := os.MkdirTemp("", "hf")
	defer os.RemoveAll(cache)
	env := map[string]string{"HF_ENDPOINT": srv.URL(), "HF_HUB_CACHE": cache}
	c, err := hub.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := c.CheckpointPath(context.Background(), "hf-hub:org/tiny")
	if err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := os.ReadDir(dir)
	rel, _ := filepath.Rel(cache, filepath.Dir(dir))
	fmt.Println(rel)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	// Output:
	// models--org--tiny/snapshots
	// open_clip_config.json
	// open_clip_model.safetensors
}
