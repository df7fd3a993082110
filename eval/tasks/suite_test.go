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
			want: []string{"shards: required", "templates: applies to zeroshot_classification", "k=0", "k=5 listed twice", "max_examples", `task "r" (tasks[1]): name: duplicate of tasks[0]`},
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
