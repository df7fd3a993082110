package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCIRunsTheREADMETestCommand keeps .ci/run calling exactly the test
// command of the README's set-up section, and the demo command built the same
// way (same environment prefix), so that what CI checks is what a user runs.
func TestCIRunsTheREADMETestCommand(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var demo, test string
	for line := range strings.SplitSeq(string(readme), "\n") {
		cmd, comment, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(cmd)
		switch {
		case strings.Contains(comment, "what CI's .ci/run calls"):
			test = cmd
		case strings.Contains(comment, "the demo:"):
			demo = cmd
		}
	}
	if test == "" || demo == "" {
		t.Fatalf("README.md: the set-up section's demo or test command not found (looked for the comments %q and %q)", "the demo:", "what CI's .ci/run calls")
	}
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for line := range strings.SplitSeq(string(ci), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			last = line
		}
	}
	if last != test {
		t.Errorf(".ci/run ends with\n\t%s\nbut the README's test command is\n\t%s", last, test)
	}
	testPrefix, _, _ := strings.Cut(test, "go test")
	demoPrefix, _, _ := strings.Cut(demo, "go run")
	if testPrefix != demoPrefix {
		t.Errorf("the README's demo and test commands build differently: %q against %q", demoPrefix, testPrefix)
	}
}
