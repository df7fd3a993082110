package tasks

import (
	"strings"
	"testing"
)

const recipeSuiteHead = `
tasks:
  - name: lung
    kind: zeroshot_classification
    format: imagefolder
    data: [lung]
    classes: [a, b]
    templates: ["{c}"]
datasets:
`

// TestRecipeValidation: malformed recipes are errors naming the recipe and
// the field; a good one loads.
func TestRecipeValidation(t *testing.T) {
	good := recipeSuiteHead + `
  - name: lc
    tasks: [lung]
    files: [{url: "https://example.org/LC.zip", sha256: "` + strings.Repeat("a", 64) + `"}]
    steps:
      - unpack: {archive: "{downloads}/LC.zip", to: lung, from: x}
    expect: [{glob: "lung/*/*.jpg", count: 2}]
`
	s, err := LoadSuite(writeSuite(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Datasets) != 1 || s.Datasets[0].Steps[0].Kind() != "unpack" || s.Datasets[0].Steps[0].Unpack.From != "x" {
		t.Fatalf("decoded %+v", s.Datasets)
	}
	for _, c := range []struct{ body, want string }{
		{"  - name: x\n    tasks: [nope]\n    files: [{url: \"https://e.org/a\"}]\n", `no task "nope"`},
		{"  - name: x\n    tasks: [lung]\n    files: [{url: \"ftp://e.org/a\"}]\n", "not an http(s) URL"},
		{"  - name: x\n    tasks: [lung]\n    files: [{url: \"https://e.org/a\", md5: \"12\"}]\n", "not 32 hex digits"},
		{"  - name: x\n    tasks: [lung]\n    files: [{path: a.zip}]\n", "required for open data sets"},
		{"  - name: x\n    tasks: [lung]\n    access: registration\n    files: [{path: a.zip}]\n", "instructions"},
		{"  - name: x\n    tasks: [lung]\n    access: paid\n    instructions: y\n    files: [{path: a.zip}]\n", `unknown access "paid"`},
		{"  - name: x\n    tasks: [lung]\n    steps:\n      - {unpack: {archive: a, to: b}, table: {in: a, out: b, path: \"{x}\", label: y}}\n", "exactly one of"},
		{"  - name: x\n    tasks: [lung]\n    steps:\n      - table: {in: a, out: b, path: a.png, label: y}\n", "names no column"},
		{"  - name: x\n    tasks: [lung]\n    steps:\n      - crops: {annotations: a, format: voc, images: i, out: o, crops: c}\n", `"voc"`},
		{"  - name: x\n    tasks: [lung]\n    steps:\n      - video_frames: {ids: \"80-41\", video: v, frames: f, every: 25, phase: p, phase_out: o}\n", "bad range"},
		{"  - name: x\n    tasks: [lung]\n    steps:\n      - folder_table: {root: r, out: o, convert: jpeg}\n", `unknown conversion "jpeg"`},
		{"  - name: x\n    tasks: [lung]\n    files: [{url: \"https://e.org/a\"}]\n  - name: x\n    tasks: [lung]\n    files: [{url: \"https://e.org/b\"}]\n", "duplicate"},
		{"  - name: x\n    tasks: [lung]\n    files: [{url: \"https://e.org/a\"}]\n    bogus: 1\n", "bogus"},
	} {
		_, err := LoadSuite(writeSuite(t, recipeSuiteHead+c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("recipe\n%s: got %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

func TestParseIDRange(t *testing.T) {
	ids, err := ParseIDRange("41-43, 7")
	if err != nil || len(ids) != 4 || ids[0] != 41 || ids[3] != 7 {
		t.Errorf("got %v, %v", ids, err)
	}
	for _, bad := range []string{"", "a-3", "5-2", "4x"} {
		if _, err := ParseIDRange(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
