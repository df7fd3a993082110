package tasks_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

const (
	biomedica40 = "../../configs/suites/biomedica40.yaml"
	suiteReadme = "../../configs/suites/README.md"
)

// TestBiomedica40 checks the shipped suite: 41 valid tasks (40 plus the
// multi-label ChestMNIST) over the nine
// domains, each with its source and licence, listed in the README's table
// with the same domain, kind and class count; and, with no data, every task
// is skipped rather than failed.
func TestBiomedica40(t *testing.T) {
	s, err := tasks.LoadSuiteWith(biomedica40, tasks.LoadOptions{DataRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Tasks) != 41 {
		t.Fatalf("%d tasks, want 41", len(s.Tasks))
	}
	domains := []string{"pathology", "radiology", "ophthalmology", "dermatology", "surgery", "molecular biology", "parasitology", "cell biology", "microscopy"}
	seen := map[string]int{}
	kinds := map[tasks.Kind]int{}
	for _, task := range s.Tasks {
		if !slices.Contains(domains, task.Domain) {
			t.Errorf("task %s: domain %q is not one of %q", task.Name, task.Domain, domains)
		}
		seen[task.Domain]++
		kinds[task.Kind]++
		if task.Source == "" || task.License == "" {
			t.Errorf("task %s: source or license missing", task.Name)
		}
	}
	for _, d := range domains {
		if seen[d] == 0 {
			t.Errorf("no task in domain %s", d)
		}
	}
	if kinds[tasks.ZeroShotClassification] == 0 || kinds[tasks.Retrieval] == 0 || kinds[tasks.LinearProbe] == 0 || kinds[tasks.ZeroShotMultiLabel] == 0 {
		t.Errorf("kinds %v: want all four", kinds)
	}

	readme, err := os.ReadFile(suiteReadme)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 8 {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if _, err := fmt.Sscan(cells[1], new(int)); err == nil {
			rows[cells[2]] = cells[3:6] // domain, kind, classes
		}
	}
	kindWord := map[tasks.Kind]string{tasks.ZeroShotClassification: "zero-shot", tasks.Retrieval: "retrieval", tasks.LinearProbe: "linear probe", tasks.ZeroShotMultiLabel: "zero-shot multi-label"}
	for _, task := range s.Tasks {
		classes := fmt.Sprint(len(task.Classes))
		switch {
		case task.ClassesFromData:
			classes = "from data"
		case task.Kind == tasks.Retrieval:
			classes = "captions"
		}
		want := []string{task.Domain, kindWord[task.Kind], classes}
		if got, ok := rows[task.Name]; !ok || !slices.Equal(got, want) {
			t.Errorf("README table row for %s: %q, want %q", task.Name, got, want)
		}
	}
	if len(rows) != len(s.Tasks) {
		t.Errorf("README table has %d rows, the suite %d tasks", len(rows), len(s.Tasks))
	}

	results, err := tasks.Run(context.Background(), s, testEnv(8))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if !r.Skipped || r.Reason == "" || r.Metrics != nil {
			t.Errorf("task %s without data: %+v, want skipped with a reason", r.Task, r)
		}
	}
}
