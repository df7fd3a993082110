package tasks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind names what a task measures.
type Kind string

// The task kinds a suite may use.
const (
	// ZeroShotClassification scores images against prompts built from class
	// names (CLIP_benchmark's "zeroshot_classification").
	ZeroShotClassification Kind = "zeroshot_classification"
	// Retrieval ranks images for captions and captions for images
	// (CLIP_benchmark's "zeroshot_retrieval").
	Retrieval Kind = "retrieval"
)

// Defaults applied to fields a task leaves empty.
const (
	DefaultImageKey   = "jpg;png;jpeg;webp"
	DefaultLabelKey   = "cls"
	DefaultCaptionKey = "txt"
)

// DefaultRecallK is the recall@k list of retrieval tasks that set none.
var DefaultRecallK = []int{1, 5, 10}

// Suite is a named list of evaluation tasks, usually loaded from YAML with
// LoadSuite:
//
//	name: biomed-small
//	tasks:
//	  - name: lung-histology
//	    domain: pathology
//	    kind: zeroshot_classification
//	    shards: ["lung/test-{000000..000003}.tar"]
//	    classes: [adenocarcinoma, squamous cell carcinoma, benign lung tissue]
//	    templates: ["a histopathology image of {c}.", "an H&E stained slide showing {c}."]
//	  - name: roco-captions
//	    domain: radiology
//	    kind: retrieval
//	    shards: ["roco/test-*.tar"]
//	    recall_k: [1, 5, 10]
//	    max_examples: 2000
type Suite struct {
	// Name labels the suite in reports; LoadSuite defaults it to the file
	// name without extension.
	Name string `yaml:"name"`
	// Tasks run in order.
	Tasks []Task `yaml:"tasks"`

	path  string       // file LoadSuite read, for error messages
	lines []fieldLines // where each task and its keys are in that file
}

// Task is one evaluation: a data set in WebDataset shards and what to measure
// on it. Fields marked "classification" or "retrieval" apply to that kind
// only; setting them on the other kind is an error.
type Task struct {
	// Name identifies the task in results; required, unique in the suite.
	Name string `yaml:"name"`
	// Domain is free text grouping tasks in reports ("pathology",
	// "radiology", …); optional.
	Domain string `yaml:"domain"`
	// Kind is "zeroshot_classification" or "retrieval"; required.
	Kind Kind `yaml:"kind"`
	// Shards lists WebDataset tar files: paths, globs ("test-*.tar") or
	// brace ranges ("test-{000..009}.tar"). LoadSuite resolves relative
	// paths against the suite file's directory; URLs are kept as they are.
	// When no listed shard exists the task is reported skipped.
	Shards []string `yaml:"shards"`
	// ImageKey lists the image member extensions to try, separated by ';';
	// a sample's first present one is used (default "jpg;png;jpeg;webp").
	ImageKey string `yaml:"image_key"`
	// LabelKey is the member holding the class index as decimal text
	// (classification; default "cls"). Index i names Classes[i].
	LabelKey string `yaml:"label_key"`
	// CaptionKey is the member holding the captions, one per line as
	// Python's str.splitlines splits them (retrieval; default "txt").
	CaptionKey string `yaml:"caption_key"`
	// Classes are the class names, in label order (classification;
	// required, at least 2, distinct).
	Classes []string `yaml:"classes"`
	// Templates are the prompts, each with one or more "{c}" placeholders
	// for the class name, as CLIP_benchmark writes them; Python-style "{}"
	// is accepted too, and "{{" / "}}" are literal braces
	// (classification; required).
	Templates []string `yaml:"templates"`
	// RecallK lists the k of recall@k (retrieval; default [1, 5, 10]).
	RecallK []int `yaml:"recall_k"`
	// MaxExamples caps the number of images evaluated, taken in shard
	// order; 0 or absent means all.
	MaxExamples int `yaml:"max_examples"`
}

// fieldLines records where a task and its keys are in the suite file.
type fieldLines struct {
	task int            // line of the task's mapping
	keys map[string]int // line of each key
}

// withDefaults returns t with the defaults of its kind filled in.
func (t Task) withDefaults() Task {
	if t.ImageKey == "" {
		t.ImageKey = DefaultImageKey
	}
	switch t.Kind {
	case ZeroShotClassification:
		if t.LabelKey == "" {
			t.LabelKey = DefaultLabelKey
		}
	case Retrieval:
		if t.CaptionKey == "" {
			t.CaptionKey = DefaultCaptionKey
		}
		if len(t.RecallK) == 0 {
			t.RecallK = slices.Clone(DefaultRecallK)
		}
	}
	return t
}

// imageKeys splits ImageKey into the extensions to try.
func (t Task) imageKeys() []string {
	return strings.Split(t.withDefaults().ImageKey, ";")
}

// FieldError is a validation error about one field of one task (Task empty
// and Index -1 for suite-level fields).
type FieldError struct {
	File  string // suite file, when loaded from one
	Line  int    // line of the field (or of its task) in File, 0 when unknown
	Task  string // task name, may be empty when the name itself is missing
	Index int    // position in Suite.Tasks
	Field string // YAML key
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "task %q (tasks[%d]): ", e.Task, e.Index)
	}
	fmt.Fprintf(&b, "%s: %s", e.Field, e.Msg)
	return b.String()
}

// LoadSuite reads a suite from a YAML file. Decoding is strict: unknown keys
// are errors that give the line. Defaults are filled in, relative shard paths
// are resolved against the file's directory, and the suite is validated; all
// validation errors are returned together (each a *FieldError).
func LoadSuite(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	s, err := parseSuite(data, path)
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	dir := filepath.Dir(path)
	for i := range s.Tasks {
		s.Tasks[i] = s.Tasks[i].withDefaults()
		for j, p := range s.Tasks[i].Shards {
			s.Tasks[i].Shards[j] = resolveShard(dir, p)
		}
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseSuite decodes YAML strictly, checking unknown keys itself first so the
// error can name the task as well as the line.
func parseSuite(data []byte, path string) (*Suite, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("suite %s: empty file", path)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("suite %s:%d: want a mapping with keys name and tasks", path, doc.Line)
	}
	s := &Suite{path: path}
	if err := checkKeys(doc, reflect.TypeFor[Suite](), path, "suite"); err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "tasks" || doc.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range doc.Content[i+1].Content {
			fl := fieldLines{task: item.Line, keys: map[string]int{}}
			for k := 0; k+1 < len(item.Content); k += 2 {
				fl.keys[item.Content[k].Value] = item.Content[k].Line
			}
			s.lines = append(s.lines, fl)
			if item.Kind != yaml.MappingNode {
				continue // the typed decode below reports it
			}
			where := fmt.Sprintf("tasks[%d]", j)
			if name := mappingValue(item, "name"); name != "" {
				where = fmt.Sprintf("task %q (tasks[%d])", name, j)
			}
			if err := checkKeys(item, reflect.TypeFor[Task](), path, where); err != nil {
				return nil, err
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	return s, nil
}

// checkKeys reports the first key of mapping m that typ has no yaml tag for.
func checkKeys(m *yaml.Node, typ reflect.Type, path, where string) error {
	known := yamlKeys(typ)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if !slices.Contains(known, k.Value) {
			return fmt.Errorf("suite %s:%d: %s: unknown key %q (known keys: %s)", path, k.Line, where, k.Value, strings.Join(known, ", "))
		}
	}
	return nil
}

func yamlKeys(typ reflect.Type) []string {
	var keys []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func mappingValue(m *yaml.Node, key string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value
		}
	}
	return ""
}

// resolveShard makes a relative local path relative to dir. URLs and
// "pipe:" sources are left alone.
func resolveShard(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "://") || strings.HasPrefix(p, "pipe:") {
		return p
	}
	return filepath.Join(dir, p)
}

// Validate checks the suite and returns every problem found, joined; each
// is a *FieldError naming the task and the field. Empty optional fields are
// fine (their defaults apply).
func (s *Suite) Validate() error {
	var errs []error
	add := func(i int, task, field, format string, args ...any) {
		line := 0
		if i >= 0 && i < len(s.lines) {
			line = s.lines[i].task
			if l, ok := s.lines[i].keys[field]; ok {
				line = l
			}
		}
		errs = append(errs, &FieldError{File: s.path, Line: line, Task: task, Index: i, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if len(s.Tasks) == 0 {
		add(-1, "", "tasks", "the suite has no tasks")
	}
	seen := map[string]int{}
	for i, raw := range s.Tasks {
		t := raw.withDefaults()
		bad := func(field, format string, args ...any) { add(i, t.Name, field, format, args...) }
		switch {
		case strings.TrimSpace(t.Name) == "":
			bad("name", "required")
		default:
			if j, dup := seen[t.Name]; dup {
				bad("name", "duplicate of tasks[%d]", j)
			}
			seen[t.Name] = i
		}
		switch t.Kind {
		case ZeroShotClassification, Retrieval:
		case "":
			bad("kind", "required (%q or %q)", ZeroShotClassification, Retrieval)
		default:
			bad("kind", "unknown kind %q (allowed: %q, %q)", t.Kind, ZeroShotClassification, Retrieval)
		}
		if len(t.Shards) == 0 {
			bad("shards", "required: at least one path, glob or brace pattern")
		}
		for j, p := range t.Shards {
			if strings.TrimSpace(p) == "" {
				bad("shards", "entry %d is empty", j)
			}
		}
		for _, k := range t.imageKeys() {
			if k == "" {
				bad("image_key", "%q has an empty extension (want e.g. %q)", t.ImageKey, DefaultImageKey)
				break
			}
		}
		if t.MaxExamples < 0 {
			bad("max_examples", "%d is negative (0 or absent means all)", t.MaxExamples)
		}
		switch t.Kind {
		case ZeroShotClassification:
			validateClassification(t, bad)
		case Retrieval:
			validateRetrieval(t, bad)
		}
	}
	return errors.Join(errs...)
}

func validateClassification(t Task, bad func(field, format string, args ...any)) {
	if len(t.Classes) < 2 {
		bad("classes", "need at least 2 class names, got %d", len(t.Classes))
	}
	names := map[string]int{}
	for i, c := range t.Classes {
		if strings.TrimSpace(c) == "" {
			bad("classes", "entry %d is empty", i)
		}
		if j, dup := names[c]; dup {
			bad("classes", "entry %d %q repeats entry %d", i, c, j)
		}
		names[c] = i
	}
	if len(t.Templates) == 0 {
		bad("templates", "need at least one prompt template with a {c} placeholder")
	}
	for i, tmpl := range t.Templates {
		if err := checkTemplate(tmpl); err != nil {
			bad("templates", "entry %d: %v", i, err)
		}
	}
	if t.CaptionKey != "" {
		bad("caption_key", "applies to retrieval tasks only")
	}
	if len(t.RecallK) > 0 {
		bad("recall_k", "applies to retrieval tasks only")
	}
}

func validateRetrieval(t Task, bad func(field, format string, args ...any)) {
	if len(t.Classes) > 0 {
		bad("classes", "applies to zeroshot_classification tasks only")
	}
	if len(t.Templates) > 0 {
		bad("templates", "applies to zeroshot_classification tasks only")
	}
	if t.LabelKey != "" {
		bad("label_key", "applies to zeroshot_classification tasks only")
	}
	seen := map[int]bool{}
	for _, k := range t.RecallK {
		if k < 1 {
			bad("recall_k", "k=%d: must be at least 1", k)
		}
		if seen[k] {
			bad("recall_k", "k=%d listed twice", k)
		}
		seen[k] = true
	}
}
