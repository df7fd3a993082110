package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights/hf"
)

// ErrNoConfig is returned (wrapped) by Open when no model config was given
// and none sits next to the weights.
var ErrNoConfig = errors.New("no model config")

// ConfigFiles are the config names looked for next to the weights, in order.
var ConfigFiles = []string{"open_clip_config.json", "config.json"}

// ModelConfig is a model configuration with the preprocessing that goes
// with it and where both came from.
type ModelConfig struct {
	clip.Config
	// Preprocess is open_clip_config.json's preprocess_cfg, or OpenAI's
	// transform when the source has none.
	Preprocess clip.PreprocessConfig
	// Source names the file or built-in config it was read from.
	Source string
}

// ReadModelConfig reads a model config from a file or names a built-in one.
// A file may be an OpenCLIP model config, an open_clip_config.json (model_cfg
// and preprocess_cfg) or a transformers CLIPModel config.json. A built-in
// name is one of configs.ModelNames ("ViT-L-14"); as in OpenCLIP, a
// "-quickgelu" suffix selects QuickGELU.
func ReadModelConfig(nameOrPath string) (ModelConfig, error) {
	data, err := os.ReadFile(nameOrPath)
	if err == nil {
		mc, err := ParseModelConfig(data)
		if err != nil {
			return ModelConfig{}, fmt.Errorf("model config %s: %w", nameOrPath, err)
		}
		mc.Source = nameOrPath
		return mc, nil
	}
	if !errors.Is(err, os.ErrNotExist) || strings.ContainsAny(nameOrPath, `/\`) || strings.HasSuffix(nameOrPath, ".json") {
		return ModelConfig{}, fmt.Errorf("model config: %w", err)
	}
	base, quick := strings.CutSuffix(nameOrPath, "-quickgelu")
	data, cerr := configs.Model(base)
	if cerr != nil {
		return ModelConfig{}, fmt.Errorf("model config %q is neither a file nor a built-in model (%s)", nameOrPath, strings.Join(configs.ModelNames(), ", "))
	}
	mc, err := ParseModelConfig(data)
	if err != nil {
		return ModelConfig{}, fmt.Errorf("built-in model config %s: %w", base, err)
	}
	mc.QuickGELU = mc.QuickGELU || quick
	mc.Source = "built-in " + nameOrPath
	return mc, nil
}

// ParseModelConfig parses any of the config files ReadModelConfig reads.
func ParseModelConfig(data []byte) (ModelConfig, error) {
	return ParseModelConfigWith(data, nil)
}

// ParseModelConfigWith is ParseModelConfig with a source for the config.json
// of a Hugging Face text tower's model (see clip.ParseConfigJSONWith).
func ParseModelConfigWith(data []byte, hfConfigs clip.HFConfigSource) (ModelConfig, error) {
	if hf.IsConfigJSON(data) {
		c, err := hf.ParseConfig(data)
		if err != nil {
			return ModelConfig{}, err
		}
		return ModelConfig{Config: c, Preprocess: clip.OpenAIPreprocess}, nil
	}
	c, err := clip.ParseConfigJSONWith(data, hfConfigs)
	if err != nil {
		return ModelConfig{}, err
	}
	pre, err := parsePreprocess(data)
	if err != nil {
		return ModelConfig{}, err
	}
	return ModelConfig{Config: c, Preprocess: pre}, nil
}

// parsePreprocess reads open_clip_config.json's preprocess_cfg; fields it
// leaves out keep OpenAI's values, as OpenCLIP's defaults do.
func parsePreprocess(data []byte) (clip.PreprocessConfig, error) {
	pre := clip.OpenAIPreprocess
	var wrapper struct {
		PreprocessCfg json.RawMessage `json:"preprocess_cfg"`
	}
	if err := json.Unmarshal(data, &wrapper); err != nil || len(wrapper.PreprocessCfg) == 0 || string(wrapper.PreprocessCfg) == "null" {
		return pre, nil
	}
	if err := json.Unmarshal(wrapper.PreprocessCfg, &pre); err != nil {
		return pre, fmt.Errorf("preprocess_cfg: %w", err)
	}
	return pre, nil
}

// findConfig reads the first of ConfigFiles in dir; hfConfigs (may be
// nil) supplies an HF text tower's model config.
func findConfig(dir string, hfConfigs clip.HFConfigSource) (ModelConfig, error) {
	for _, name := range ConfigFiles {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return ModelConfig{}, err
		}
		mc, err := ParseModelConfigWith(data, hfConfigs)
		if err != nil {
			return ModelConfig{}, fmt.Errorf("%s: %w", p, err)
		}
		mc.Source = p
		return mc, nil
	}
	return ModelConfig{}, fmt.Errorf("%w in %s (looked for %s); name one (a config file, or a built-in model such as ViT-L-14)",
		ErrNoConfig, dir, strings.Join(ConfigFiles, ", "))
}
