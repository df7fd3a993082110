// Package cmd_test checks the command line as a user meets it: every
// command under cmd/ is built and its --help read, and the flags several
// commands share must have one name, the same aliases, default and help
// text everywhere (package cliflag declares them).
package cmd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/internal/cli/cliflag"
)

// helpFlag is one flag as --help shows it.
type helpFlag struct {
	placeholder, usage, def string
}

// shared says which commands take each shared flag. A new command must be
// added here, which makes its author decide which of them apply.
var shared = map[string][]string{
	"train":        {cliflag.OutputName, cliflag.BackendName, cliflag.PrecisionName},
	"eval":         {cliflag.OutputName, cliflag.BatchSizeName, cliflag.BackendName, cliflag.PrecisionName},
	"eval prepare": nil,
	"embed":        {cliflag.OutputName, cliflag.BatchSizeName, cliflag.BackendName, cliflag.PrecisionName},
	"bench":        {cliflag.BatchSizeName, cliflag.BackendName, cliflag.PrecisionName},
	"export":       {cliflag.OutputName},
	"merge":        {cliflag.OutputName},
	"shards":       {cliflag.OutputName},
	"tokenize":     {cliflag.BatchSizeName},
}

// TestSharedFlagsAgreeAcrossCommands builds every command, reads its
// --help and checks the shared flags: present where they apply, the same
// aliases (with "alias of --NAME" and the flag's placeholder), the same
// default and help text for --backend and --precision, and no other
// spelling of an output or batch-size flag.
func TestSharedFlagsAgreeAcrossCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: builds every command (about 20 s on 2 cores) to read its --help")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH to build the commands: %v", err)
	}
	bin := t.TempDir()
	build := exec.Command(goTool, "build", "-o", bin+string(filepath.Separator), "./...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "internal" && e.Name() != "testdata" {
			commands = append(commands, e.Name())
		}
	}
	commands = append(commands, "eval prepare")
	for _, c := range commands {
		if _, ok := shared[c]; !ok {
			t.Errorf("command %s is not in this test's table: add it with the shared flags it takes", c)
		}
	}
	helps := make(map[string]map[string]helpFlag)
	for _, c := range commands {
		args := strings.Fields(c)
		cmd := exec.Command(filepath.Join(bin, args[0]), append(args[1:], "--help")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s --help: %v (want exit status 0)\n%s", c, err, out)
			continue
		}
		helps[c] = parseHelp(string(out))
		if len(helps[c]) == 0 {
			t.Errorf("%s --help lists no flags:\n%s", c, out)
		}
	}

	canonical := map[string]string{} // alias → the flag it spells
	for _, name := range []string{cliflag.OutputName, cliflag.BatchSizeName, cliflag.BackendName, cliflag.PrecisionName} {
		for _, a := range cliflag.Aliases(name) {
			canonical[a] = name
		}
	}
	oddSpellings := regexp.MustCompile(`^(out|output|batch|batch-size)[-_]?(dir|file|size|path)?$|^(outdir|outfile|batchsize|batch_size|bs|o)$`)
	first := map[string]string{} // shared flag → the command whose help the others must match
	for _, c := range commands {
		flags, ok := helps[c]
		if !ok {
			continue
		}
		want := shared[c]
		for _, name := range []string{cliflag.OutputName, cliflag.BatchSizeName, cliflag.BackendName, cliflag.PrecisionName} {
			f, has := flags[name]
			if has != slices.Contains(want, name) {
				t.Errorf("%s: --%s present %v, want %v", c, name, has, !has)
			}
			if !has {
				continue
			}
			for _, a := range cliflag.Aliases(name) {
				af, ok := flags[a]
				switch {
				case !ok:
					t.Errorf("%s: --%s has no alias --%s", c, name, a)
				case af.usage != strings.ReplaceAll(cliflag.AliasUsage(name, f.placeholder), "`", ""):
					t.Errorf("%s: --%s's help %q, want %q", c, a, af.usage, cliflag.AliasUsage(name, f.placeholder))
				case af.def != f.def:
					t.Errorf("%s: --%s's default %q differs from --%s's %q", c, a, af.def, name, f.def)
				}
			}
			if name == cliflag.OutputName && f.def != "" {
				t.Errorf("%s: --output has default %q; an output is always asked for", c, f.def)
			}
			if name == cliflag.BackendName || name == cliflag.PrecisionName {
				if prev, ok := first[name]; ok && flags[name] != helps[prev][name] {
					t.Errorf("--%s differs between %s and %s:\n%+v\n%+v", name, prev, c, helps[prev][name], flags[name])
				} else if !ok {
					first[name] = c
				}
			}
		}
		for name := range flags {
			if of, isAlias := canonical[name]; isAlias {
				if _, ok := flags[of]; !ok {
					t.Errorf("%s: flag --%s without --%s; use package cliflag", c, name, of)
				}
				continue
			}
			if name != cliflag.OutputName && name != cliflag.BatchSizeName && oddSpellings.MatchString(name) {
				t.Errorf("%s: flag --%s spells a shared flag another way; use package cliflag", c, name)
			}
		}
	}
	if got, want := helps["bench"]["devices"].def, config.Default().Train.Devices; got != strconv.Itoa(want) && (got != "" || want != 0) {
		t.Errorf("bench --devices defaults to %q, train.devices to %d: they should agree", got, want)
	}
	if u := helps["train"][cliflag.PrecisionName].usage; u != "" && u != strings.ReplaceAll(cliflag.PrecisionUsage, "`", "") {
		t.Errorf("train --precision's help is not cliflag.PrecisionUsage: %q", u)
	}
	if u := helps["embed"][cliflag.BackendName].usage; u != "" && u != strings.ReplaceAll(cliflag.BackendUsage, "`", "") {
		t.Errorf("embed --backend's help is not cliflag.BackendUsage: %q", u)
	}
}

// flagLine is the first line of a flag in flag.PrintDefaults' format:
// "  -name PLACEHOLDER", or "  -x\tusage" for a one-letter name.
var flagLine = regexp.MustCompile(`^  -([A-Za-z0-9][-A-Za-z0-9_.]*)(?: (\S+))?(?:\t(.*))?$`)

// defaultSuffix is what PrintDefaults appends to a non-zero default.
var defaultSuffix = regexp.MustCompile(` \(default (.*)\)$`)

// parseHelp reads the flags of a --help text written by flag.PrintDefaults.
func parseHelp(text string) map[string]helpFlag {
	flags := make(map[string]helpFlag)
	var name string
	var f helpFlag
	var usage []string
	done := func() {
		if name == "" {
			return
		}
		f.usage = strings.Join(usage, "\n")
		if m := defaultSuffix.FindStringSubmatchIndex(f.usage); m != nil {
			f.def = f.usage[m[2]:m[3]]
			f.usage = f.usage[:m[0]]
		}
		flags[name] = f
		name, usage = "", nil
	}
	for _, line := range strings.Split(text, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			done()
			name, f = m[1], helpFlag{placeholder: m[2]}
			if m[3] != "" {
				usage = append(usage, m[3])
			}
			continue
		}
		if rest, ok := strings.CutPrefix(line, "    \t"); ok && name != "" {
			usage = append(usage, rest)
			continue
		}
		done()
	}
	done()
	return flags
}
