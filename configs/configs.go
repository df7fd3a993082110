// Package configs ships bmca's built-in configuration files: OpenCLIP model
// configs (models/*.json, in OpenCLIP's model_configs format), run configs
// (*.yaml) and evaluation suites (suites/*.yaml). The model configs are
// embedded so a run can name one ("model: {name: ViT-B-16}") from anywhere.
//
//	data, err := configs.Model("ViT-L-14")
package configs

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
)

//go:embed models/*.json
var modelFiles embed.FS

// Model returns the JSON of the built-in model config called name.
func Model(name string) ([]byte, error) {
	data, err := modelFiles.ReadFile(path.Join("models", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("unknown model %q (built-in: %s)", name, strings.Join(ModelNames(), ", "))
	}
	return data, nil
}

// ModelNames lists the built-in model configs.
func ModelNames() []string {
	entries, _ := modelFiles.ReadDir("models")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}
