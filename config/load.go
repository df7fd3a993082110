package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/internal/location"
	"go.yaml.in/yaml/v3"
)

// Load reads a YAML run config, applies "key=value" overrides (keys are
// dotted YAML paths such as train.steps), fills defaults, resolves relative
// paths against the file's directory and validates the result.
func Load(path string, overrides []string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg, err := Parse(data, path, overrides)
	if err != nil {
		return nil, err
	}
	cfg.resolvePaths(filepath.Dir(path))
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes a run config without resolving paths or validating; name
// labels errors.
func Parse(data []byte, name string, overrides []string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	} else if doc.Kind == 0 {
		root = &yaml.Node{Kind: yaml.MappingNode}
	}
	if root.Kind == yaml.MappingNode {
		if err := checkTextValues(root, reflect.TypeFor[Config](), ""); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	// Strict decode of the file as written, so unknown keys and wrong types
	// are reported with the file's own line numbers.
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	var probe Config
	if err := strict.Decode(&probe); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the top level must be a mapping of sections (model, data, train, ...)", name)
	}
	for _, o := range overrides {
		if err := applyOverride(root, o); err != nil {
			return nil, err
		}
	}

	cfg := Default()
	if modelName := lookupScalar(root, "model", "name"); modelName != "" {
		base, err := configs.Model(modelName)
		if err != nil {
			return nil, fmt.Errorf("%s: model.name: %w", name, err)
		}
		if err := json.Unmarshal(base, &cfg.Model.Config); err != nil {
			return nil, fmt.Errorf("built-in model %s: %w", modelName, err)
		}
	}
	if err := root.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &cfg, nil
}

// applyOverride sets key=value in the YAML tree after checking that the key
// exists in Config and the value decodes into the field's type.
func applyOverride(root *yaml.Node, override string) error {
	key, value, ok := strings.Cut(override, "=")
	if !ok || key == "" {
		return fmt.Errorf("--set %q: expected key=value, e.g. train.steps=20", override)
	}
	path := strings.Split(key, ".")
	field, err := fieldType(reflect.TypeOf(Config{}), path, key)
	if err != nil {
		return fmt.Errorf("--set %s: %w", override, err)
	}
	var valueNode yaml.Node
	if err := yaml.Unmarshal([]byte(value), &valueNode); err != nil {
		return fmt.Errorf("--set %s: value is not valid YAML: %w", override, err)
	}
	var scalar *yaml.Node
	if valueNode.Kind == yaml.DocumentNode && len(valueNode.Content) == 1 {
		scalar = valueNode.Content[0]
	} else {
		scalar = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	}
	probe := reflect.New(field)
	if err := scalar.Decode(probe.Interface()); err != nil {
		if probe.Type().Implements(textUnmarshaler) {
			return fmt.Errorf("--set %s: %s: %w", override, key, err) // the type's own error says what it takes
		}
		return fmt.Errorf("--set %s: %s expects %s: %w", override, key, describeType(field), err)
	}
	setNode(root, path, scalar)
	return nil
}

// fieldType walks Config's YAML keys (following inline structs) and returns
// the type at path, or an error listing the keys allowed where it failed.
func fieldType(t reflect.Type, path []string, full string) (reflect.Type, error) {
	for i, part := range path {
		if t.Kind() != reflect.Struct {
			return nil, fmt.Errorf("unknown key %q: %s is a value, not a section", full, strings.Join(path[:i], "."))
		}
		fields := yamlFields(t)
		next, ok := fields[part]
		if !ok {
			var allowed []string
			for k := range fields {
				allowed = append(allowed, k)
			}
			sort.Strings(allowed)
			where := "the top level"
			if i > 0 {
				where = strings.Join(path[:i], ".")
			}
			return nil, fmt.Errorf("unknown key %q (allowed in %s: %s)", full, where, strings.Join(allowed, ", "))
		}
		t = next
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return t, nil
}

// textUnmarshaler is the interface of the config's fields that parse their
// own spelling, such as train.precision.
var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// checkTextValues parses every value whose field parses its own spelling
// (encoding.TextUnmarshaler, such as train.precision) and reports a bad
// one with its line and key, which the YAML decoder's error lacks. Unknown
// keys are left to the strict decode.
func checkTextValues(m *yaml.Node, t reflect.Type, key string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if m.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := yamlFields(t)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		ft, ok := fields[k.Value]
		if !ok {
			continue
		}
		child := joinKey(key, k.Value)
		if reflect.PointerTo(ft).Implements(textUnmarshaler) {
			if v.Kind != yaml.ScalarNode {
				continue // the decoder reports a list or mapping given for a scalar
			}
			if err := reflect.New(ft).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(v.Value)); err != nil {
				return fmt.Errorf("line %d: %s: %w", v.Line, child, err)
			}
			continue
		}
		if err := checkTextValues(v, ft, child); err != nil {
			return err
		}
	}
	return nil
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list such as [a, b]"
	case reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func setNode(m *yaml.Node, path []string, value *yaml.Node) {
	for i, part := range path {
		var child *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == part {
				child = m.Content[j+1]
				if i == len(path)-1 {
					m.Content[j+1] = value
					return
				}
				break
			}
		}
		if i == len(path)-1 {
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: part}, value)
			return
		}
		if child == nil || child.Kind != yaml.MappingNode {
			child = &yaml.Node{Kind: yaml.MappingNode}
			m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: part}, child)
		}
		m = child
	}
}

func lookupScalar(m *yaml.Node, path ...string) string {
	for _, part := range path {
		if m == nil || m.Kind != yaml.MappingNode {
			return ""
		}
		var next *yaml.Node
		for j := 0; j+1 < len(m.Content); j += 2 {
			if m.Content[j].Value == part {
				next = m.Content[j+1]
			}
		}
		m = next
	}
	if m == nil || m.Kind != yaml.ScalarNode {
		return ""
	}
	return m.Value
}

// resolvePaths makes the local paths in the config relative to dir
// absolute-or-cwd-relative, so a config works from any working directory.
// URLs, pipe:, biomedica: and hf-hub: references are not paths and stay as
// written (package location decides which is which).
func (c *Config) resolvePaths(dir string) {
	for i, s := range c.Data.TrainShards {
		c.Data.TrainShards[i] = location.ResolveSources(dir, s)
	}
	c.Data.Synthetic.Dir = location.Resolve(dir, c.Data.Synthetic.Dir)
	c.Data.Tensors = location.Resolve(dir, c.Data.Tensors)
	c.Eval.Suite = location.Resolve(dir, c.Eval.Suite)
	c.Tokenizer.Vocab = location.Resolve(dir, c.Tokenizer.Vocab)
	c.Train.Pretrained = location.Resolve(dir, c.Train.Pretrained)
	c.Output = location.Resolve(dir, c.Output)
}
