package tasks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSuite(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "suite.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSuite(t *testing.T) {
	p := writeSuite(t, `
tasks:
  - name: lung
    domain: pathology
    kind: zeroshot_classification
    shards: ["lung/test-{0..1}.tar", /abs/x.tar, "https://host/a.tar"]
    classes: [adenocarcinoma, normal]
    templates: ["a histopathology image of {c}.", "an H&E slide showing {}."]
    max_examples: 100
  - name: roco
    kind: retrieval
    shards: [roco.tar]
`)
	s, err := LoadSuite(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if s.Name != "suite" {
		t.Errorf("name %q, want the file name", s.Name)
	}
	lung, roco := s.Tasks[0], s.Tasks[1]
	if lung.Shards[0] != filepath.Join(dir, "lung/test-{0..1}.tar") || lung.Shards[1] != "/abs/x.tar" || lung.Shards[2] != "https://host/a.tar" {
		t.Errorf("shards %q", lung.Shards)
	}
	if lung.ImageKey != DefaultImageKey || lung.LabelKey != "cls" || lung.CaptionKey != "" || lung.MaxExamples != 100 {
		t.Errorf("classification defaults: %+v", lung)
	}
	if roco.CaptionKey != "txt" || len(roco.RecallK) != 3 || roco.LabelKey != "" {
		t.Errorf("retrieval defaults: %+v", roco)
	}
}

func TestLoadSuiteErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // substrings of the error
	}{
		{
			name: "unknown task key",
			body: `name: s
tasks:
  - name: a
    kind: retrieval
    shards: [x.tar]
    lable_key: cls
`,
			want: []string{"suite.yaml:6:", `task "a"`, `unknown key "lable_key"`},
		},
		{
			name: "unknown suite key",
			body: "name: s\ntask:\n  - name: a\n",
			want: []string{"suite.yaml:2:", `unknown key "task"`},
		},
		{
			name: "wrong type",
			body: "tasks:\n  - name: a\n    kind: retrieval\n    shards: [x.tar]\n    max_examples: lots\n",
			want: []string{"line 5", "lots"},
		},
		{
			name: "bad kind",
			body: `tasks:
  - name: a
    kind: retrieval
    shards: [x.tar]
  - name: b
    kind: classification
    shards: [y.tar]
`,
			want: []string{"suite.yaml:6:", `task "b" (tasks[1])`, "kind", `"classification"`},
		},
		{
			name: "classification fields",
			body: `tasks:
  - name: c
    kind: zeroshot_classification
    shards: [x.tar]
    classes: [a, a]
    templates: ["no placeholder"]
    recall_k: [1]
`,
			want: []string{`task "c"`, "classes: entry 1", "templates: entry 0", "no {c} placeholder", "recall_k: applies to retrieval"},
		},
		{
			name: "retrieval fields and duplicates",
			body: `tasks:
  - name: r
    kind: retrieval
    shards: []
    templates: ["{c}"]
    recall_k: [0, 5, 5]
    max_examples: -1
  - name: r
    kind: retrieval
    shards: [x.tar]
`,
			want: []string{"data: required", "templates: applies to zeroshot_classification", "k=0", "k=5 listed twice", "max_examples", `task "r" (tasks[1]): name: duplicate of tasks[0]`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSuite(writeSuite(t, tc.body))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
		})
	}
	_, err := LoadSuite(writeSuite(t, "tasks:\n  - name: x\n    kind: bogus\n    shards: [a.tar]\n"))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Task != "x" || fe.Field != "kind" || fe.Line != 3 {
		t.Errorf("want a *FieldError for task x, field kind, line 3; got %#v", fe)
	}
}

func TestSplitLines(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\nb\r\nc\rd", "a|b|c|d"},
		{"a\n\nb\n", "a||b"},
		{"", ""},
		{"one", "one"},
		{"x\u2028y\x0bz", "x|y|z"},
	} {
		if got := strings.Join(splitLines(tc.in), "|"); got != tc.want {
			t.Errorf("splitLines(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLoadSuiteSchemaErrors(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{
			name: "format fields",
			body: `tasks:
  - {name: a, kind: zeroshot_classification, format: imagefolder, data: [x], label_key: dx, path_template: "p/{}", classes: [p, q], templates: ["{c}"]}
  - {name: b, kind: zeroshot_classification, format: csv, data: [x.csv], subdir: images, path_template: "no placeholder", classes: [p, q], templates: ["{c}"]}
  - {name: c, kind: retrieval, format: imagefolder, data: [x]}
  - {name: d, kind: retrieval, format: parquet, shards: [x.parquet]}
  - {name: e, kind: retrieval, data: [x.tar], shards: [y.tar]}
  - {name: f, kind: retrieval, format: xml, data: [x.xml]}
`,
			want: []string{`task "a" (tasks[0]): label_key: does not apply to format imagefolder`, `task "a" (tasks[0]): path_template: applies to formats csv and tsv only`,
				`task "b" (tasks[1]): subdir: applies to format imagefolder only`, `path_template: "no placeholder" has no {}`,
				`task "c" (tasks[2]): format: imagefolder has class folders, not captions`, `task "d" (tasks[3]): shards: applies to format webdataset`,
				`task "e" (tasks[4]): shards: give data or shards, not both`, `task "f" (tasks[5]): format: unknown format "xml"`},
		},
		{
			name: "labels and classes",
			body: `tasks:
  - {name: a, kind: zeroshot_classification, data: [x.tar], classes: [p, q], labels: ["1"], templates: ["{c}"]}
  - {name: b, kind: zeroshot_classification, data: [x.tar], classes: [p, q], classes_from_data: true, templates: ["{c}"]}
  - {name: c, kind: zeroshot_classification, data: [x.tar], classes: [p, q], labels: [u, v], exclude_labels: [v], templates: ["{c}"], metrics: [acc1, recall]}
  - {name: d, kind: retrieval, data: [x.tar], exclude_labels: [v], metrics: [mean_recall, acc1]}
`,
			want: []string{`task "a" (tasks[0]): labels: 1 labels for 2 classes`, `task "b" (tasks[1]): classes: give classes or classes_from_data, not both`,
				`task "c" (tasks[2]): exclude_labels: "v" is also one of labels`, `task "c" (tasks[2]): metrics: "recall" is not reported`,
				`task "d" (tasks[3]): exclude_labels: applies to zeroshot_classification`, `task "d" (tasks[3]): metrics: "acc1" is not reported by retrieval tasks`},
		},
		{
			name: "linear probe",
			body: `tasks:
  - {name: a, kind: linear_probe, data: [x.tar], classes: [p, q], templates: ["{c}"]}
  - {name: b, kind: linear_probe, data: [x.tar], train_data: [t.tar], classes: [p, q], val_fraction: 1.5, l2_grid: [-1]}
  - {name: c, kind: linear_probe, data: [x.tar], train_data: [t.tar], val_data: [v.tar], val_fraction: 0.1, classes: [p, q]}
  - {name: d, kind: zeroshot_classification, data: [x.tar], train_data: [t.tar], classes: [p, q], templates: ["{c}"]}
`,
			want: []string{`task "a" (tasks[0]): train_data: required`, `task "a" (tasks[0]): templates: applies to zeroshot_classification tasks only`,
				`task "b" (tasks[1]): val_fraction: 1.5: must be in (0, 1)`, `task "b" (tasks[1]): l2_grid: -1`,
				`task "c" (tasks[2]): val_fraction: give val_data or val_fraction, not both`, `task "d" (tasks[3]): train_data: applies to linear_probe tasks only`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSuite(writeSuite(t, tc.body))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not mention %q", err, w)
				}
			}
		})
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("BMCA_TEST_ROOT", "/data")
	t.Setenv("BMCA_TEST_EMPTY", "")
	for _, tc := range []struct{ in, want, err string }{
		{in: "${BMCA_TEST_ROOT}/pcam", want: "/data/pcam"},
		{in: "${BMCA_TEST_UNSET:-fallback}/x", want: "fallback/x"},
		{in: "${BMCA_TEST_EMPTY:-${BMCA_TEST_ROOT}}", want: "/data"},
		{in: "${BMCA_TEST_ROOT:-ignored}", want: "/data"},
		{in: "cost$5/{a}", want: "cost$5/{a}"},
		{in: "${BMCA_TEST_UNSET}/x", err: "BMCA_TEST_UNSET is not set"},
		{in: "${BMCA_TEST_ROOT", err: "unclosed"},
	} {
		got, err := ExpandEnv(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ExpandEnv(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandEnv(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestDataRoot(t *testing.T) {
	body := "data_root: ${BMCA_TEST_DATA:-../eval-data}\ntasks:\n  - {name: a, kind: retrieval, data: [roco/x.tar, /abs/y.tar, \"https://h/z.tar\"], format: webdataset}\n"
	p := writeSuite(t, body)
	dir := filepath.Dir(p)
	s, err := LoadSuite(p)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "../eval-data")
	if s.DataDir() != root || s.Tasks[0].Data[0] != filepath.Join(root, "roco/x.tar") || s.Tasks[0].Data[1] != "/abs/y.tar" || s.Tasks[0].Data[2] != "https://h/z.tar" {
		t.Errorf("default root: %q, data %q", s.DataDir(), s.Tasks[0].Data)
	}
	t.Setenv("BMCA_TEST_DATA", "/mnt/eval")
	if s, _ = LoadSuite(p); s.Tasks[0].Data[0] != "/mnt/eval/roco/x.tar" {
		t.Errorf("root from the environment: %q", s.Tasks[0].Data[0])
	}
	if s, _ = LoadSuiteWith(p, LoadOptions{DataRoot: "/override"}); s.Tasks[0].Data[0] != "/override/roco/x.tar" {
		t.Errorf("root from the options: %q", s.Tasks[0].Data[0])
	}
	if _, err := LoadSuite(writeSuite(t, "data_root: ${BMCA_TEST_NOPE}\ntasks: []\n")); err == nil || !strings.Contains(err.Error(), "data_root") {
		t.Errorf("unset root variable: %v", err)
	}
}

func TestSelect(t *testing.T) {
	s, err := LoadSuite(writeSuite(t, `tasks:
  - {name: a, domain: pathology, kind: retrieval, data: [a.tar]}
  - {name: b, domain: radiology, kind: retrieval, data: [b.tar]}
  - {name: c, domain: pathology, kind: retrieval, data: [c.tar]}
`))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Select([]string{"pathology", "b"})
	if err != nil || len(sub.Tasks) != 3 {
		t.Fatalf("select: %v, %v", sub, err)
	}
	sub, _ = s.Select([]string{"c"})
	if len(sub.Tasks) != 1 || sub.Tasks[0].Name != "c" || len(s.Tasks) != 3 {
		t.Errorf("select c: %+v (original now %d tasks)", sub.Tasks, len(s.Tasks))
	}
	if _, err := s.Select([]string{"dermatology"}); err == nil || !strings.Contains(err.Error(), `no task or domain "dermatology" (have: a, pathology, b, radiology, c)`) {
		t.Errorf("unknown selector: %v", err)
	}
}
