package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MarshalRun encodes the config as a checkpoint records it
// (training_state.json's run_config): JSON with the YAML key names, the
// same keys as the config file, --set and the README, and with every
// local path made absolute against the working directory, so that eval or
// a resume started elsewhere finds the same files. References that are
// not paths (URLs, pipe:, biomedica: specs, hf-hub:) stay as written
// (package location decides). ParseRun reads it back.
func (c *Config) MarshalRun() ([]byte, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("run config: %w", err)
	}
	abs := *c
	abs.Data.TrainShards = slices.Clone(c.Data.TrainShards)
	abs.resolvePaths(wd)
	return yamlKeyJSON(&abs)
}

// yamlKeyJSON renders c as JSON under its YAML key names.
func yamlKeyJSON(c *Config) ([]byte, error) {
	y, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("run config: %w", err)
	}
	var tree any
	if err := yaml.Unmarshal(y, &tree); err != nil {
		return nil, fmt.Errorf("run config: %w", err)
	}
	data, err := json.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("run config: %w", err)
	}
	return data, nil
}

// ParseRun reads a run config recorded in a checkpoint, applies
// overrides ("key=value", as --set) and validates it. checkpointDir is the
// directory the checkpoint was read from.
//
// Run configs recorded before MarshalRun existed used Go's field names
// ("Model", "TrainShards") and kept paths relative to the directory the
// training run was started from. They are still read: the fields by
// encoding/json as they were written, and the relative paths against that
// starting directory, which is recovered from where the checkpoint sits
// (its recorded output folder must end the checkpoint's path, as
// OUTPUT/checkpoints/step-N); when it cannot be recovered (the run folder
// was moved) the paths are left relative to the working directory, as
// they were always read before.
func ParseRun(data []byte, checkpointDir string, overrides []string) (*Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("run config: %w", err)
	}
	if _, old := top["Model"]; old {
		renamed, err := renameLegacyFields(data)
		if err != nil {
			return nil, fmt.Errorf("run config (old form): %w", err)
		}
		legacy := Default()
		if err := json.Unmarshal(renamed, &legacy); err != nil {
			return nil, fmt.Errorf("run config (old form): %w", err)
		}
		if base, ok := runStartDir(legacy.Output, checkpointDir); ok {
			legacy.resolvePaths(base)
		}
		if data, err = yamlKeyJSON(&legacy); err != nil {
			return nil, err
		}
	}
	// JSON is YAML: the recorded config goes through the same decoding,
	// overrides and validation as a config file.
	cfg, err := Parse(data, "the checkpoint's run config", overrides)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("the checkpoint's run config: %w", err)
	}
	return cfg, nil
}

// legacyRenames maps the Go field names old run configs recorded, section
// by section, to the fields that hold those settings since the config
// embeds the library's types (train.Schedule, train.AdamW, synth.Config).
// Every other old name still names its field.
var legacyRenames = map[string]map[string]string{
	"Train":          {"Schedule": "Kind", "LR": "PeakLR", "WDExclude": "DecayRule", "GradClipNorm": "ClipNorm"},
	"Data.Synthetic": {"TrainSamples": "train_samples", "EvalSamplesPerTask": "eval_samples_per_task"},
}

// renameLegacyFields rewrites an old run config's renamed fields
// (legacyRenames) so that encoding/json reads them into today's Config.
func renameLegacyFields(data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers keep their text
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	for path, renames := range legacyRenames {
		section := tree
		for _, part := range strings.Split(path, ".") {
			section, _ = section[part].(map[string]any)
		}
		for old, now := range renames {
			if v, ok := section[old]; ok {
				delete(section, old)
				section[now] = v
			}
		}
	}
	return json.Marshal(tree)
}

// runStartDir recovers the directory an old run was started from: the
// checkpoint directory is OUTPUT/checkpoints/step-N, so with a relative
// OUTPUT it is what precedes that suffix.
func runStartDir(output, checkpointDir string) (string, bool) {
	if output == "" || filepath.IsAbs(output) {
		return "", false
	}
	abs, err := filepath.Abs(checkpointDir)
	if err != nil {
		return "", false
	}
	run := filepath.Dir(filepath.Dir(abs)) // OUTPUT
	rel := filepath.Clean(output)
	if !strings.HasSuffix(run, string(filepath.Separator)+rel) {
		return "", false
	}
	return strings.TrimSuffix(run, string(filepath.Separator)+rel), true
}

// Change is one key whose value differs between two run configs.
type Change struct {
	// Key is the dotted YAML key, as --set takes it.
	Key string
	// Old and New are the values as JSON text ("" when absent).
	Old, New string
}

// Diff lists the keys whose values differ from old to new, in key order.
// Local paths are compared in absolute form (see MarshalRun), so the same
// file named from two directories is no change.
func Diff(old, new *Config) ([]Change, error) {
	a, err := flatten(old)
	if err != nil {
		return nil, err
	}
	b, err := flatten(new)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if a[k] != b[k] {
			out = append(out, Change{Key: k, Old: a[k], New: b[k]})
		}
	}
	return out, nil
}

// flatten maps each dotted key of c's recorded form to its JSON value;
// lists are one value.
func flatten(c *Config) (map[string]string, error) {
	data, err := c.MarshalRun()
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		return nil, err
	}
	out := map[string]string{}
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		if m, ok := v.(map[string]any); ok {
			for k, child := range m {
				if err := walk(joinKey(prefix, k), child); err != nil {
					return err
				}
			}
			return nil
		}
		text, err := json.Marshal(v)
		out[prefix] = string(text)
		return err
	}
	return out, walk("", tree)
}
