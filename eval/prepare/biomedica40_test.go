package prepare

import (
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

// TestBiomedica40Recipes checks the shipped suite's recipes: every task is
// served by exactly one, each says what was verified and what assumed, open
// ones download over HTTPS (plain HTTP only where the publisher offers
// nothing else), and a recipe's outputs include the paths its tasks read.
func TestBiomedica40Recipes(t *testing.T) {
	s, err := tasks.LoadSuiteWith("../../configs/suites/biomedica40.yaml", tasks.LoadOptions{DataRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]string{}
	for _, d := range s.Datasets {
		for _, task := range d.Tasks {
			if other, dup := served[task]; dup {
				t.Errorf("task %s served by recipes %s and %s", task, other, d.Name)
			}
			served[task] = d.Name
		}
		if d.Verified == "" || d.Assumed == "" || d.Source == "" || d.License == "" {
			t.Errorf("recipe %s: source, license, verified and assumed are all required in the shipped suite", d.Name)
		}
		for _, f := range d.Files {
			if f.URL == "" {
				continue
			}
			u, _ := url.Parse(f.URL)
			if u.Scheme != "https" && u.Host != "www.inf.ufpr.br" {
				t.Errorf("recipe %s: %s is not HTTPS", d.Name, f.URL)
			}
		}
	}
	for _, task := range s.Tasks {
		if served[task.Name] == "" {
			t.Errorf("task %s has no recipe: add one to the suite's datasets section", task.Name)
		}
	}
	// Each task's data paths are produced by its recipe: a file it places,
	// an output of a step, or a path its expectations check.
	outputs := map[string][]string{}
	for _, d := range s.Datasets {
		var outs []string
		for _, f := range d.Files {
			outs = append(outs, f.Path)
		}
		for _, st := range d.Steps {
			switch {
			case st.Unpack != nil:
				outs = append(outs, st.Unpack.To)
			case st.FolderTable != nil:
				outs = append(outs, st.FolderTable.Out)
			case st.Table != nil:
				outs = append(outs, st.Table.Out)
			case st.Crops != nil:
				outs = append(outs, st.Crops.Out)
			case st.VideoFrames != nil:
				outs = append(outs, st.VideoFrames.PhaseOut, st.VideoFrames.ToolsOut)
			case st.NPZ != nil:
				outs = append(outs, st.NPZ.Out)
			case st.FetchListed != nil:
				outs = append(outs, st.FetchListed.Out)
			case st.PMCFigures != nil:
				outs = append(outs, st.PMCFigures.Out)
			}
		}
		outputs[d.Name] = outs
	}
	for _, task := range s.Tasks {
		for _, p := range append(slices.Clone(task.Paths()), task.TrainData...) {
			rel := strings.TrimPrefix(strings.TrimPrefix(p, s.DataDir()), "/")
			ok := false
			for _, o := range outputs[served[task.Name]] {
				if o != "" && overlaps(rel, strings.ReplaceAll(o, "%06d", "*")) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("task %s reads %s, which recipe %s does not produce (outputs %q)", task.Name, rel, served[task.Name], outputs[served[task.Name]])
			}
		}
	}
}

// overlaps reports whether one slash path (or glob) lies in the other: their
// common leading elements match as globs either way round.
func overlaps(a, b string) bool {
	ae, be := strings.Split(a, "/"), strings.Split(b, "/")
	for i := range min(len(ae), len(be)) {
		m1, _ := path.Match(ae[i], be[i])
		m2, _ := path.Match(be[i], ae[i])
		if !m1 && !m2 {
			return false
		}
	}
	return true
}
