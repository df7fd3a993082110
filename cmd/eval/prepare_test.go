package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrepareCommand runs `eval prepare` on a two-recipe suite against a
// local server: the open recipe is prepared then up to date, the
// registration one lists where its file goes, and --list shows both.
func TestPrepareCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a,b\n1,2\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	suite := filepath.Join(dir, "suite.yaml")
	body := `
data_root: data
tasks:
  - name: t1
    kind: zeroshot_classification
    format: csv
    data: [t1/table.csv]
    classes: [a, b]
    templates: ["{c}"]
  - name: t2
    kind: zeroshot_classification
    format: csv
    data: [t2/table.csv]
    classes: [a, b]
    templates: ["{c}"]
datasets:
  - name: open1
    tasks: [t1]
    files: [{url: "` + srv.URL + `/table.csv", path: t1/table.csv}]
    expect: [{glob: "t1/table.csv", rows: 1}]
  - name: walled
    tasks: [t2]
    access: registration
    instructions: "Sign the form at example.org."
    files: [{path: "{downloads}/t2.zip"}]
`
	if err := os.WriteFile(suite, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		var out, errs bytes.Buffer
		if err := runPrepare(context.Background(), append([]string{"--suite", suite}, args...), &out, &errs); err != nil {
			t.Fatalf("%v\n%s%s", err, out.String(), errs.String())
		}
		return out.String()
	}
	first := run()
	for _, want := range []string{"open1", "prepared", "walled", "needs files", filepath.Join(dir, "data", "downloads", "walled", "t2.zip"), "Sign the form"} {
		if !strings.Contains(first, want) {
			t.Errorf("first run output lacks %q:\n%s", want, first)
		}
	}
	if second := run("open1"); !strings.Contains(second, "up to date") || strings.Contains(second, "walled") {
		t.Errorf("second run of open1:\n%s", second)
	}
	if list := run("--list"); !strings.Contains(list, "up to date") || !strings.Contains(list, "needs files") {
		t.Errorf("--list:\n%s", list)
	}
	var out, errs bytes.Buffer
	if err := runPrepare(context.Background(), []string{"--suite", suite, "nope"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "open1") {
		t.Errorf("unknown name: %v", err)
	}
}
