package tasks

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/internal/location"
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
	// LinearProbe fits a logistic regression on frozen image features of a
	// training split and scores the test split (CLIP_benchmark's
	// "linear_probe").
	LinearProbe Kind = "linear_probe"
	// ZeroShotMultiLabel scores each class separately from the
	// image–prompt similarities, for data where an image may show several
	// classes or none (CLIP_benchmark's multi-label zero-shot
	// classification): per-class average precision and ROC AUC, and their
	// means.
	ZeroShotMultiLabel Kind = "zeroshot_multilabel"
)

// Kinds lists every task kind.
var Kinds = []Kind{ZeroShotClassification, Retrieval, LinearProbe, ZeroShotMultiLabel}

// Defaults applied to fields a task leaves empty. The key defaults are those
// of WebDataset; tables and parquet use formats.Default*Column.
const (
	DefaultImageKey    = "jpg;png;jpeg;webp"
	DefaultLabelKey    = "cls"
	DefaultCaptionKey  = "txt"
	DefaultValFraction = 0.2
)

// DefaultRecallK is the recall@k list of retrieval tasks that set none.
var DefaultRecallK = []int{1, 5, 10}

// Suite is a named list of evaluation tasks, usually loaded from YAML with
// LoadSuite:
//
//	name: biomed-small
//	data_root: ${BMCA_EVAL_DATA:-../../eval-data}
//	tasks:
//	  - name: lc25000-lung
//	    domain: pathology
//	    kind: zeroshot_classification
//	    format: imagefolder
//	    data: [lc25000/lung_image_sets]
//	    classes: [lung adenocarcinoma, lung squamous cell carcinoma, benign lung tissue]
//	    labels: [lung_aca, lung_scc, lung_n]
//	    templates: ["a histopathology image of {c}.", "an H&E stained slide showing {c}."]
//	  - name: roco-captions
//	    domain: radiology
//	    kind: retrieval
//	    shards: ["roco/test-*.tar"]
//	    recall_k: [1, 10, 100]
type Suite struct {
	// Name labels the suite in reports; LoadSuite defaults it to the file
	// name without extension.
	Name string `yaml:"name"`
	// DataRoot is the folder relative data paths are resolved against.
	// ${VAR} and ${VAR:-default} are expanded from the environment; a
	// relative root is relative to the suite file. Empty means the suite
	// file's folder. LoadOptions.DataRoot overrides it.
	DataRoot string `yaml:"data_root"`
	// Tasks run in order.
	Tasks []Task `yaml:"tasks"`
	// Datasets are the recipes that fetch and lay out the tasks' data
	// (recipe.go; run by cmd/eval prepare, ignored by evaluation).
	Datasets []Dataset `yaml:"datasets"`

	path    string       // file LoadSuite read, for error messages
	lines   []fieldLines // where each task and its keys are in that file
	dataDir string       // resolved data root
}

// DataDir is the resolved data root ("" for a suite not loaded from a file).
func (s *Suite) DataDir() string { return s.dataDir }

// Task is one evaluation: a data set and what to measure on it. Fields marked
// with a kind or format apply to it only; setting them elsewhere is an error.
type Task struct {
	// Name identifies the task in results; required, unique in the suite.
	Name string `yaml:"name"`
	// Domain groups tasks in leaderboards ("pathology", "radiology", …);
	// optional.
	Domain string `yaml:"domain"`
	// Kind is "zeroshot_classification", "retrieval", "linear_probe" or
	// "zeroshot_multilabel"; required.
	Kind Kind `yaml:"kind"`
	// Format is the data layout: "webdataset" (the default), "imagefolder",
	// "csv", "tsv" or "parquet" (see eval/formats).
	Format formats.Format `yaml:"format"`
	// Data lists the evaluated (test) split: WebDataset shards (paths,
	// globs or brace ranges such as "test-{000..009}.tar"), image folder
	// roots, tables or parquet files (paths or globs). Relative paths are
	// resolved against the suite's data root; URLs are kept as they are.
	// When the data is absent the task is reported skipped.
	Data []string `yaml:"data"`
	// Shards is the older name of Data, for WebDataset only.
	Shards []string `yaml:"shards"`
	// TrainData is the split a linear probe is fitted on (linear_probe;
	// required), in the task's format.
	TrainData []string `yaml:"train_data"`
	// ValData is the split the probe's L2 strength is chosen on
	// (linear_probe; optional: by default ValFraction of TrainData, drawn
	// per class with the bootstrap seed, is held out).
	ValData []string `yaml:"val_data"`
	// ImageKey is where the image is: for WebDataset the member extensions
	// to try, separated by ';' (default "jpg;png;jpeg;webp"); for tables
	// the image path column (default "path"); for parquet the image column
	// (default "image": Hugging Face's {bytes, path} struct or plain
	// binary).
	ImageKey string `yaml:"image_key"`
	// LabelKey is where the label is (classification and probes): the
	// WebDataset member (default "cls") or the column (default "label").
	LabelKey string `yaml:"label_key"`
	// CaptionKey is where the captions are (retrieval): the WebDataset
	// member holding one caption per line, as Python's str.splitlines
	// splits them (default "txt"), or the column (default "caption"; a
	// table gives one caption per row and rows naming the same image are
	// grouped; a parquet column may hold a list).
	CaptionKey string `yaml:"caption_key"`
	// PathTemplate builds the image path from a table's path cell: "{}"
	// stands for the cell, e.g. "HAM10000_images/{}.jpg" (csv, tsv).
	PathTemplate string `yaml:"path_template"`
	// Subdir restricts an image folder's classes to one sub-folder of each
	// (imagefolder), e.g. "images" beside "masks".
	Subdir string `yaml:"subdir"`
	// Classes are the class names the prompts are built from, in label
	// order (classification and probes; at least 2, distinct), unless
	// ClassesFromData is set.
	Classes []string `yaml:"classes"`
	// ClassesFromData takes the class names from the data: the distinct
	// raw labels, sorted. For data sets whose labels are already readable
	// names (μ-Bench's stain or sub-modality columns).
	ClassesFromData bool `yaml:"classes_from_data"`
	// Labels are the data set's own labels of the classes, one per class in
	// the same order: folder names, table cells or WebDataset cls values
	// ("lung_aca" for "lung adenocarcinoma"). Without them a raw label
	// must equal a class name or be a class index.
	Labels []string `yaml:"labels"`
	// LabelColumns are a multi-label table's columns, one per class in
	// class order, each 0 or 1 (also 0.0/1.0, true/false) for whether the
	// class applies (zeroshot_multilabel; csv, tsv, parquet). They replace
	// label_key.
	LabelColumns []string `yaml:"label_columns"`
	// LabelFormat says how a multi-label task's label_key value lists the
	// classes that apply (zeroshot_multilabel): "list" (the default) names
	// them — a table cell or WebDataset member split at label_separator, or
	// a parquet list — each by its label, class name or index, none for an
	// empty value; "multi_hot" is one 0/1 per class in class order — a
	// parquet list, a .npy vector (CLIP_benchmark's multi-label WebDataset
	// "npy" member) or a cell such as "[0, 1, 0]" or "0 1 0".
	LabelFormat string `yaml:"label_format"`
	// LabelSeparator splits a "list" label (default "|", as in NIH
	// ChestX-ray14's "Cardiomegaly|Effusion").
	LabelSeparator string `yaml:"label_separator"`
	// ExcludeLabels drops the examples with these raw labels before
	// anything is encoded ("" drops unlabelled rows); the count is
	// reported.
	ExcludeLabels []string `yaml:"exclude_labels"`
	// Templates are the prompts, each with one or more "{c}" placeholders
	// for the class name, as CLIP_benchmark writes them; Python-style "{}"
	// is accepted too, and "{{" / "}}" are literal braces
	// (zeroshot_classification; required).
	Templates []string `yaml:"templates"`
	// RecallK lists the k of recall@k (retrieval; default [1, 5, 10]).
	RecallK []int `yaml:"recall_k"`
	// Metrics are the metric keys leaderboards show for the task, the
	// first being its headline (the one averaged per domain). Default:
	// acc1, acc5, mean_per_class_recall, macro_f1 for classification and
	// probes; mean_recall then every recall@k for retrieval.
	Metrics []string `yaml:"metrics"`
	// MaxExamples caps the number of images evaluated per split, taken in
	// data order after exclusions; 0 or absent means all.
	MaxExamples int `yaml:"max_examples"`
	// ValFraction is the share of TrainData held out to choose the L2
	// strength when ValData is absent (linear_probe; default 0.2).
	ValFraction float64 `yaml:"val_fraction"`
	// L2Grid lists the L2 strengths the probe tries (linear_probe; default
	// eval/probe's grid).
	L2Grid []float64 `yaml:"l2_grid"`
	// Source says where the data set comes from (paper, page); License its
	// licence. Documentation only: copied into results, not interpreted.
	Source  string `yaml:"source"`
	License string `yaml:"license"`

	// problems are what made the task's YAML undecodable (an unknown key, a
	// value of the wrong type), kept by LoadOptions.KeepInvalid and
	// reported by Validate.
	problems []*FieldError
}

// fieldLines records where a task and its keys are in the suite file.
type fieldLines struct {
	task int            // line of the task's mapping
	keys map[string]int // line of each key
}

// withDefaults returns t with the defaults of its kind and format filled in.
func (t Task) withDefaults() Task {
	if t.Format == "" {
		t.Format = formats.WebDataset
	}
	image, label, caption := DefaultImageKey, DefaultLabelKey, DefaultCaptionKey
	switch t.Format {
	case formats.CSV, formats.TSV:
		image, label, caption = formats.DefaultPathColumn, formats.DefaultLabelColumn, formats.DefaultCaptionColumn
	case formats.Parquet:
		image, label, caption = formats.DefaultImageColumn, formats.DefaultLabelColumn, formats.DefaultCaptionColumn
	case formats.ImageFolder:
		image, label, caption = "", "", ""
	}
	if t.ImageKey == "" {
		t.ImageKey = image
	}
	switch t.Kind {
	case ZeroShotClassification, LinearProbe:
		if t.LabelKey == "" {
			t.LabelKey = label
		}
		if len(t.Metrics) == 0 {
			t.Metrics = []string{MetricAcc1, MetricAcc5, MetricMeanPerClassRecall, MetricMacroF1}
		}
	case Retrieval:
		if t.CaptionKey == "" {
			t.CaptionKey = caption
		}
		if len(t.RecallK) == 0 {
			t.RecallK = slices.Clone(DefaultRecallK)
		}
		if len(t.Metrics) == 0 {
			t.Metrics = []string{MetricMeanRecall}
			for _, k := range slices.Compact(slices.Sorted(slices.Values(t.RecallK))) {
				t.Metrics = append(t.Metrics, TextRetrievalRecallKey(k), ImageRetrievalRecallKey(k))
			}
		}
	}
	if t.Kind == ZeroShotMultiLabel {
		if t.LabelKey == "" && len(t.LabelColumns) == 0 {
			t.LabelKey = label
		}
		if t.LabelKey != "" && t.LabelFormat == "" {
			t.LabelFormat = LabelList
		}
		if t.LabelFormat == LabelList && t.LabelSeparator == "" {
			t.LabelSeparator = DefaultLabelSeparator
		}
		if len(t.Metrics) == 0 {
			t.Metrics = []string{MetricMeanAveragePrecision, MetricMeanAUROC}
		}
	}
	if t.Kind == LinearProbe && t.ValFraction == 0 && len(t.ValData) == 0 {
		t.ValFraction = DefaultValFraction
	}
	return t
}

// Paths is the evaluated split's data: Data, or Shards when only the older
// key is given.
func (t Task) Paths() []string {
	if len(t.Data) == 0 {
		return t.Shards
	}
	return t.Data
}

// imageKeys splits ImageKey into the WebDataset extensions to try.
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
	if e.Field != "" {
		fmt.Fprintf(&b, "%s: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadOptions adjust LoadSuiteWith.
type LoadOptions struct {
	// DataRoot, when set, replaces the suite's data_root (relative to the
	// working directory), e.g. from a --data-root flag.
	DataRoot string
	// KeepInvalid keeps tasks that fail validation (an unknown key, a value
	// of the wrong type, a missing or contradictory field) instead of
	// refusing the whole suite: Validate still lists their errors, and Run
	// reports each such task as failed, with its errors, while the others
	// run. Problems of the suite itself (YAML syntax, unknown top-level
	// keys, no tasks) are errors still.
	KeepInvalid bool
}

// LoadSuite reads a suite from a YAML file: LoadSuiteWith with no options.
func LoadSuite(path string) (*Suite, error) { return LoadSuiteWith(path, LoadOptions{}) }

// LoadSuiteWith reads a suite from a YAML file. Decoding is strict: unknown
// keys are errors that give the line. Defaults are filled in, ${VAR} and
// ${VAR:-default} in data_root and data paths are expanded, relative paths
// are resolved against the data root, and the suite is validated; all
// validation errors are returned together (each a *FieldError).
func LoadSuiteWith(path string, opts LoadOptions) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("suite: %w", err)
	}
	s, err := parseSuite(data, path, opts.KeepInvalid)
	if err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	dir := filepath.Dir(path)
	s.dataDir = dir
	switch {
	case opts.DataRoot != "":
		s.dataDir = opts.DataRoot
	case s.DataRoot != "":
		root, err := ExpandEnv(s.DataRoot)
		if err != nil {
			return nil, fmt.Errorf("suite %s: data_root: %w", path, err)
		}
		s.dataDir = location.Resolve(dir, root)
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		for _, list := range []*[]string{&t.Data, &t.Shards, &t.TrainData, &t.ValData} {
			for j, p := range *list {
				e, err := ExpandEnv(p)
				if err != nil {
					return nil, fmt.Errorf("suite %s: task %q: %w", path, t.Name, err)
				}
				(*list)[j] = location.Resolve(s.dataDir, e)
			}
		}
		s.Tasks[i] = t.withDefaults()
	}
	if err := s.Validate(); err != nil {
		if !opts.KeepInvalid {
			return nil, err
		}
		if _, err := s.taskErrors(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ExpandEnv replaces ${VAR} with the environment variable's value and
// ${VAR:-default} with it or, when unset or empty, with default (itself
// expanded). A ${VAR} that is unset is an error, so a misspelt variable is
// not silently read as an empty path. A '$' not followed by '{' is kept.
func ExpandEnv(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) || s[i+1] != '{' {
			b.WriteByte(s[i])
			continue
		}
		end, depth := -1, 0
		for j := i + 1; j < len(s); j++ {
			switch s[j] {
			case '{':
				depth++
			case '}':
				depth--
			}
			if depth == 0 {
				end = j
				break
			}
		}
		if end < 0 {
			return "", fmt.Errorf("%q: unclosed ${", s)
		}
		name, def, hasDef := strings.Cut(s[i+2:end], ":-")
		if name == "" {
			return "", fmt.Errorf("%q: empty variable name", s)
		}
		v, ok := os.LookupEnv(name)
		switch {
		case ok && v != "":
			b.WriteString(v)
		case hasDef:
			d, err := ExpandEnv(def)
			if err != nil {
				return "", err
			}
			b.WriteString(d)
		default:
			return "", fmt.Errorf("%q: environment variable %s is not set (give a default with ${%s:-…})", s, name, name)
		}
		i = end
	}
	return b.String(), nil
}

// parseSuite decodes YAML strictly, checking unknown keys itself first so the
// error can name the task as well as the line. With keep, a task's unknown
// keys and undecodable values are recorded on the task (Task.problems)
// instead of failing the suite.
func parseSuite(data []byte, path string, keep bool) (*Suite, error) {
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
			if err := checkKeys(item, reflect.TypeFor[Task](), path, where); err != nil && !keep {
				return nil, err
			}
		}
	}
	if keep {
		return decodeLeniently(s, doc, path)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	return s, nil
}

// decodeLeniently decodes the suite's own fields strictly and each task on
// its own, recording a task's unknown keys and type errors on it.
func decodeLeniently(s *Suite, doc *yaml.Node, path string) (*Suite, error) {
	var head struct {
		Name     string `yaml:"name"`
		DataRoot string `yaml:"data_root"`
	}
	if err := doc.Decode(&head); err != nil {
		return nil, fmt.Errorf("suite %s: %w", path, err)
	}
	s.Name, s.DataRoot = head.Name, head.DataRoot
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "tasks" {
			continue
		}
		list := doc.Content[i+1]
		if list.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("suite %s:%d: tasks: want a list of tasks", path, list.Line)
		}
		for j, item := range list.Content {
			var t Task
			if item.Kind == yaml.MappingNode {
				known := yamlKeys(reflect.TypeFor[Task]())
				for k := 0; k+1 < len(item.Content); k += 2 {
					if key := item.Content[k]; !slices.Contains(known, key.Value) {
						t.problems = append(t.problems, &FieldError{File: path, Line: key.Line, Index: j, Field: key.Value,
							Msg: fmt.Sprintf("unknown key (known keys: %s)", strings.Join(known, ", "))})
					}
				}
			}
			if err := item.Decode(&t); err != nil {
				msg := err.Error()
				var te *yaml.TypeError
				if errors.As(err, &te) {
					msg = strings.Join(te.Errors, "; ")
				}
				t.problems = append(t.problems, &FieldError{File: path, Line: item.Line, Index: j, Msg: msg})
			}
			s.Tasks = append(s.Tasks, t)
		}
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
		for _, p := range raw.problems {
			e := *p // Select renumbers tasks
			e.Index, e.Task = i, t.Name
			errs = append(errs, &e)
		}
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
		case ZeroShotClassification, Retrieval, LinearProbe, ZeroShotMultiLabel:
		case "":
			bad("kind", "required (%s)", kindList())
		default:
			bad("kind", "unknown kind %q (allowed: %s)", t.Kind, kindList())
		}
		validateData(t, raw, bad)
		if t.MaxExamples < 0 {
			bad("max_examples", "%d is negative (0 or absent means all)", t.MaxExamples)
		}
		switch t.Kind {
		case ZeroShotClassification, LinearProbe:
			validateClassification(t, bad)
		case Retrieval:
			validateRetrieval(t, bad)
		case ZeroShotMultiLabel:
			validateMultiLabel(t, raw, bad)
		}
		if t.Kind != ZeroShotMultiLabel {
			for _, f := range []setField{{"label_columns", len(t.LabelColumns) > 0}, {"label_format", t.LabelFormat != ""}, {"label_separator", t.LabelSeparator != ""}} {
				if f.set {
					bad(f.field, "applies to zeroshot_multilabel tasks only")
				}
			}
		}
		validateMetrics(t, bad)
	}
	errs = append(errs, s.validateDatasets())
	return errors.Join(errs...)
}

// taskErrors splits Validate's errors into those of single tasks, by index
// in s.Tasks, and those of the suite itself, which are returned as the error.
func (s *Suite) taskErrors() (map[int]error, error) {
	err := s.Validate()
	if err == nil {
		return nil, nil
	}
	perTask := map[int][]error{}
	var suite []error
	for _, e := range flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) && fe.Index >= 0 && fe.Index < len(s.Tasks) {
			perTask[fe.Index] = append(perTask[fe.Index], e)
		} else {
			suite = append(suite, e)
		}
	}
	out := make(map[int]error, len(perTask))
	for i, errs := range perTask {
		out[i] = errors.Join(errs...)
	}
	return out, errors.Join(suite...)
}

// InvalidTasks returns the validation errors of single tasks, by index in
// s.Tasks (a suite loaded with LoadOptions.KeepInvalid keeps such tasks;
// Run reports them failed).
func (s *Suite) InvalidTasks() map[int]error {
	perTask, _ := s.taskErrors()
	return perTask
}

// flatten undoes errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func kindList() string {
	var q []string
	for _, k := range Kinds {
		q = append(q, fmt.Sprintf("%q", k))
	}
	return strings.Join(q, ", ")
}

// validateData checks where the data is and the fields of its format.
func validateData(t, raw Task, bad func(field, format string, args ...any)) {
	if !slices.Contains(formats.Formats, t.Format) {
		var names []string
		for _, f := range formats.Formats {
			names = append(names, string(f))
		}
		bad("format", "unknown format %q (allowed: %s)", t.Format, strings.Join(names, ", "))
		return
	}
	if len(raw.Data) > 0 && len(raw.Shards) > 0 {
		bad("shards", "give data or shards, not both (shards is data's older name)")
	}
	if len(raw.Shards) > 0 && t.Format != formats.WebDataset {
		bad("shards", "applies to format webdataset; use data for %s", t.Format)
	}
	if len(t.Paths()) == 0 {
		bad("data", "required: at least one path, glob or brace pattern (shards: for WebDataset)")
	}
	for _, f := range []struct {
		field string
		list  []string
	}{{"data", t.Paths()}, {"train_data", t.TrainData}, {"val_data", t.ValData}} {
		field := f.field
		for j, p := range f.list {
			if strings.TrimSpace(p) == "" {
				bad(field, "entry %d is empty", j)
			}
			if !location.IsLocal(p) && t.Format != formats.WebDataset {
				bad(field, "entry %d %q: only WebDataset shards may be URLs", j, p)
			}
		}
	}
	switch t.Format {
	case formats.WebDataset:
		for _, k := range t.imageKeys() {
			if k == "" {
				bad("image_key", "%q has an empty extension (want e.g. %q)", t.ImageKey, DefaultImageKey)
				break
			}
		}
	case formats.ImageFolder:
		for _, f := range []setField{{"image_key", raw.ImageKey != ""}, {"label_key", raw.LabelKey != ""}, {"caption_key", raw.CaptionKey != ""}} {
			if f.set {
				bad(f.field, "does not apply to format imagefolder (the class is the folder name)")
			}
		}
		switch t.Kind {
		case Retrieval:
			bad("format", "imagefolder has class folders, not captions: retrieval needs webdataset, csv, tsv or parquet")
		case ZeroShotMultiLabel:
			bad("format", "imagefolder gives one class per image: zeroshot_multilabel needs webdataset, csv, tsv or parquet")
		}
	}
	if t.PathTemplate != "" && t.Format != formats.CSV && t.Format != formats.TSV {
		bad("path_template", "applies to formats csv and tsv only")
	}
	if t.PathTemplate != "" && !strings.Contains(t.PathTemplate, "{}") {
		bad("path_template", "%q has no {} for the path cell", t.PathTemplate)
	}
	if t.Subdir != "" && t.Format != formats.ImageFolder {
		bad("subdir", "applies to format imagefolder only")
	}
}

func validateClassification(t Task, bad func(field, format string, args ...any)) {
	switch {
	case t.ClassesFromData && len(t.Classes) > 0:
		bad("classes", "give classes or classes_from_data, not both")
	case t.ClassesFromData && len(t.Labels) > 0:
		bad("labels", "classes_from_data takes the raw labels as class names; labels do not apply")
	case !t.ClassesFromData && len(t.Classes) < 2:
		bad("classes", "need at least 2 class names, got %d (or set classes_from_data)", len(t.Classes))
	}
	checkDistinct("classes", t.Classes, bad)
	if len(t.Labels) > 0 {
		if len(t.Labels) != len(t.Classes) {
			bad("labels", "%d labels for %d classes: give the data set's label of each class, in class order", len(t.Labels), len(t.Classes))
		}
		checkDistinct("labels", t.Labels, bad)
	}
	for _, x := range t.ExcludeLabels {
		if slices.Contains(t.Labels, x) {
			bad("exclude_labels", "%q is also one of labels", x)
		}
	}
	switch t.Kind {
	case ZeroShotClassification:
		if len(t.Templates) == 0 {
			bad("templates", "need at least one prompt template with a {c} placeholder")
		}
		probeOnly(t, bad)
	case LinearProbe:
		if len(t.Templates) > 0 {
			bad("templates", "applies to zeroshot_classification tasks only (a probe learns its classifier)")
		}
		if len(t.TrainData) == 0 {
			bad("train_data", "required: the split the probe is fitted on")
		}
		if len(t.ValData) > 0 && t.ValFraction != 0 {
			bad("val_fraction", "give val_data or val_fraction, not both")
		}
		if len(t.ValData) == 0 && !(t.ValFraction > 0 && t.ValFraction < 1) {
			bad("val_fraction", "%v: must be in (0, 1)", t.ValFraction)
		}
		for _, l := range t.L2Grid {
			if !(l >= 0) || math.IsInf(l, 0) {
				bad("l2_grid", "%v: L2 strengths must be finite and non-negative", l)
			}
		}
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

func checkDistinct(field string, list []string, bad func(field, format string, args ...any)) {
	seen := map[string]int{}
	for i, c := range list {
		if strings.TrimSpace(c) == "" {
			bad(field, "entry %d is empty", i)
		}
		if j, dup := seen[c]; dup {
			bad(field, "entry %d %q repeats entry %d", i, c, j)
		}
		seen[c] = i
	}
}

func validateRetrieval(t Task, bad func(field, format string, args ...any)) {
	for _, f := range []setField{
		{"classes", len(t.Classes) > 0}, {"classes_from_data", t.ClassesFromData}, {"labels", len(t.Labels) > 0},
		{"exclude_labels", len(t.ExcludeLabels) > 0}, {"templates", len(t.Templates) > 0}, {"label_key", t.LabelKey != ""},
	} {
		if f.set {
			bad(f.field, "applies to zeroshot_classification tasks only")
		}
	}
	probeOnly(t, bad)
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

// setField is whether a field is set, for checks over several fields in a
// fixed order.
type setField struct {
	field string
	set   bool
}

// probeOnly reports linear-probe fields set on another kind of task.
func probeOnly(t Task, bad func(field, format string, args ...any)) {
	for _, f := range []setField{{"train_data", len(t.TrainData) > 0}, {"val_data", len(t.ValData) > 0},
		{"val_fraction", t.ValFraction != 0}, {"l2_grid", len(t.L2Grid) > 0}} {
		if f.set {
			bad(f.field, "applies to linear_probe tasks only")
		}
	}
}

// validateMetrics checks the leaderboard metrics are ones the kind reports.
func validateMetrics(t Task, bad func(field, format string, args ...any)) {
	known := KnownMetrics(t)
	for _, m := range t.Metrics {
		if !slices.Contains(known, m) {
			bad("metrics", "%q is not reported by %s tasks (known: %s)", m, t.Kind, strings.Join(known, ", "))
		}
	}
	checkDistinct("metrics", t.Metrics, bad)
}

// KnownMetrics lists the metric keys a task of t's kind (and recall_k) can
// report.
func KnownMetrics(t Task) []string {
	switch t.Kind {
	case ZeroShotClassification, LinearProbe:
		var out []string
		for _, m := range classificationMetrics {
			low, high := CIKeys(m)
			out = append(out, m, low, high)
		}
		return out
	case Retrieval:
		out := []string{MetricMeanRecall}
		for _, k := range t.withDefaults().RecallK {
			out = append(out, TextRetrievalRecallKey(k), ImageRetrievalRecallKey(k))
		}
		return out
	case ZeroShotMultiLabel:
		var out []string
		for _, m := range multiLabelMetricKeys {
			low, high := CIKeys(m)
			out = append(out, m, low, high)
		}
		for _, c := range t.Classes {
			out = append(out, ClassAPKey(c), ClassAUROCKey(c))
		}
		return out
	}
	return nil
}

// Select returns the suite restricted to the tasks whose name or domain is
// one of names, in suite order; a name that matches nothing is an error
// listing what exists. No names returns s itself.
func (s *Suite) Select(names []string) (*Suite, error) {
	if len(names) == 0 {
		return s, nil
	}
	out := *s
	out.Tasks, out.lines = nil, nil
	used := map[string]bool{}
	for i, t := range s.Tasks {
		hit := false
		for _, n := range names {
			if n == t.Name || (n == t.Domain && n != "") {
				used[n], hit = true, true
			}
		}
		if hit {
			out.Tasks = append(out.Tasks, t)
			if i < len(s.lines) {
				out.lines = append(out.lines, s.lines[i])
			}
		}
	}
	for _, n := range names {
		if !used[n] {
			var known []string
			for _, t := range s.Tasks {
				known = append(known, t.Name)
				if t.Domain != "" && !slices.Contains(known, t.Domain) {
					known = append(known, t.Domain)
				}
			}
			return nil, fmt.Errorf("suite %s: no task or domain %q (have: %s)", s.Name, n, strings.Join(known, ", "))
		}
	}
	return &out, nil
}
