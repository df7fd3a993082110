package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// ManifestName is the manifest's file name inside the dataset directory.
const ManifestName = "MANIFEST.json"

// ManifestVersion is the format version of MANIFEST.json that this package
// writes and reads.
const ManifestVersion = 1

// Manifest describes a written dataset; it is stored as dir/MANIFEST.json.
// All paths are relative to the dataset directory and use forward slashes.
type Manifest struct {
	Version    int    `json:"version"`     // ManifestVersion
	Generator  string `json:"generator"`   // GeneratorVersion that wrote the files
	ConfigHash string `json:"config_hash"` // Config.Hash() of Config
	Config     Config `json:"config"`
	// ImageExt is the extension of the image member of every sample ("png").
	ImageExt string `json:"image_ext"`
	Train    Split  `json:"train"`
	// Tasks are the held-out evaluations: one zero-shot task per attribute
	// (modality, shape, count, position), then the retrieval task.
	Tasks []Task `json:"tasks"`
	// Files lists every file but the manifest, with its SHA-256.
	Files []File `json:"files"`
}

// Split is a set of training shards.
type Split struct {
	Shards  []string `json:"shards"`  // tar shards, in order
	Samples int      `json:"samples"` // total over Shards
	// Sizes is the sizes.json next to the shards (shard basename → samples),
	// as OpenCLIP's WebDataset loader reads it.
	Sizes string `json:"sizes"`
}

// Task is one held-out evaluation.
type Task struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // KindZeroShot or KindRetrieval
	// Attribute is the KEY.json field that the classes of a zero-shot task
	// stand for; Values[i] is its value for class i.
	Attribute string   `json:"attribute,omitempty"`
	Values    []string `json:"values,omitempty"`
	Shards    []string `json:"shards"`
	Samples   int      `json:"samples"`
	// ClassNames are natural phrases for the classes, in class-index order,
	// to be put into Templates at Placeholder (see Prompt).
	ClassNames []string `json:"class_names,omitempty"`
	Templates  []string `json:"templates,omitempty"`
}

// File is one file of the dataset.
type File struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"` // hex
	Bytes   int64  `json:"bytes"`
	Samples int    `json:"samples,omitempty"` // for shards
}

// Task returns the task with the given name.
func (m *Manifest) Task(name string) (Task, bool) {
	for _, t := range m.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return Task{}, false
}

// ReadManifest reads dir/MANIFEST.json. It does not check the files; see Verify.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("synth: read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("synth: manifest %s: %w", path, err)
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("synth: manifest %s has version %d, want %d", path, m.Version, ManifestVersion)
	}
	if !strings.HasPrefix(m.Generator, "bmca/data/synth/") {
		return nil, fmt.Errorf("synth: manifest %s was written by %q, not by this package", path, m.Generator)
	}
	return &m, nil
}

// Verify checks that every file of the manifest exists under dir with the
// recorded size and SHA-256.
func (m *Manifest) Verify(dir string) error {
	for _, f := range m.Files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		sum, n, err := hashFile(path)
		if err != nil {
			return fmt.Errorf("synth: verify: %w", err)
		}
		if n != f.Bytes || sum != f.SHA256 {
			return fmt.Errorf("synth: verify %s: %d bytes with SHA-256 %s, manifest says %d bytes with %s", path, n, sum, f.Bytes, f.SHA256)
		}
	}
	return nil
}

func hashFile(path string) (sum string, n int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
