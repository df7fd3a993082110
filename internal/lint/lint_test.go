package lint

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleIsClean runs gofmt -l, go vet and staticcheck over the whole
// module and fails with their findings.
func TestModuleIsClean(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: gofmt, go vet and staticcheck over the whole module take about a minute on 2 cores")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	root := strings.TrimSpace(run(t, "", goTool, "env", "GOMOD"))
	if root == "" || root == "/dev/null" {
		t.Fatal("not inside the bmca module")
	}
	root = filepath.Dir(root)
	goroot := strings.TrimSpace(run(t, root, goTool, "env", "GOROOT"))

	t.Run("gofmt", func(t *testing.T) {
		out, err := output(root, filepath.Join(goroot, "bin", "gofmt"), "-l", ".")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("gofmt -l . lists files that gofmt -w would change (%v):\n%s", err, out)
		}
	})
	// Both builds the README names: the SIMD one its commands use and the
	// plain one a bare go test gets; files behind the experiment's build
	// tag, and fields only they use, are checked in each.
	for _, build := range []struct{ name, experiment string }{{"plain", ""}, {"simd", "simd"}} {
		env := append(os.Environ(), "GOEXPERIMENT="+build.experiment)
		t.Run("vet-"+build.name, func(t *testing.T) {
			if out, err := outputEnv(root, env, goTool, "vet", "./..."); err != nil {
				t.Errorf("GOEXPERIMENT=%s go vet ./...: %v\n%s", build.experiment, err, out)
			}
		})
		t.Run("staticcheck-"+build.name, func(t *testing.T) {
			if out, err := outputEnv(root, env, goTool, "tool", "staticcheck", "./..."); err != nil {
				t.Errorf("GOEXPERIMENT=%s go tool staticcheck ./... (fix the code; a finding that is wrong gets a //lint:ignore CHECK reason on its line): %v\n%s", build.experiment, err, out)
			}
		})
	}
}

// output runs a command in dir and returns its stdout and stderr together.
func output(dir, name string, args ...string) (string, error) {
	return outputEnv(dir, nil, name, args...)
}

// outputEnv is output with the environment env (nil: this process's).
func outputEnv(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// run is output for commands that must succeed.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, err := output(dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}
