package prepare

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/eval/tasks"
)

// stateFile is kept in each recipe's download folder.
const stateFile = ".prepare-state.json"

// state records what is known done for one recipe, so reruns skip it.
type state struct {
	// Done is the hash of the recipe that last completed ("" while not).
	Done string `json:"done"`
	// Files maps a file's path to what was verified of it.
	Files map[string]fileState `json:"files"`
	// Steps maps a step index to the hash of the recipe up to that step.
	Steps map[string]string `json:"steps"`

	path string
}

// fileState identifies a verified file by size and modification time.
type fileState struct {
	Size     int64  `json:"size"`
	ModTime  int64  `json:"mtime"`
	Checksum string `json:"checksum"` // what was checked, e.g. "sha256:…"
}

func loadState(dir string) (*state, error) {
	st := &state{Files: map[string]fileState{}, Steps: map[string]string{}, path: filepath.Join(dir, stateFile)}
	data, err := os.ReadFile(st.path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("%s: %w (delete it to start over)", st.path, err)
	}
	if st.Files == nil {
		st.Files = map[string]fileState{}
	}
	if st.Steps == nil {
		st.Steps = map[string]string{}
	}
	return st, nil
}

// save writes the state atomically.
func (st *state) save() error {
	data, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(st.path), 0o755); err != nil {
		return err
	}
	return writeAtomic(st.path, data)
}

// writeAtomic writes data to a temporary file and renames it into place, so
// a crash never leaves a half-written file under the final name.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func hashJSON(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		data, err := json.Marshal(p)
		if err != nil {
			panic(err) // recipe types are plain data
		}
		h.Write(data)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// recipeHash identifies everything about a recipe that affects its output.
func recipeHash(d tasks.Dataset) string { return hashJSON(d.Files, d.Steps, d.Expect) }

func filesHash(files []tasks.DataFile) string { return hashJSON(files) }

// stepHash chains a step onto the hash of everything before it, so a
// changed step reruns itself and every later step.
func stepHash(prev string, s tasks.Step) string { return hashJSON(prev, s) }
