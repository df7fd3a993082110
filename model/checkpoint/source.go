package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch"
)

// ErrUnrecognized is returned (wrapped) when a path holds no checkpoint
// format this package reads.
var ErrUnrecognized = errors.New("not a recognised checkpoint")

// Container is the file format the tensors are stored in.
type Container string

// Containers this package reads.
const (
	Safetensors   Container = "safetensors"
	PyTorchZip    Container = "pytorch-zip"    // torch.save, PyTorch ≥ 1.6
	PyTorchLegacy Container = "pytorch-legacy" // torch.save, older
)

// Layout is the naming scheme of the tensors.
type Layout string

// Layouts this package maps onto the model.
const (
	OpenCLIP Layout = "openclip" // OpenCLIP's state-dict names (ours)
	HF       Layout = "hf"       // transformers' CLIPModel names
)

// Format is what a checkpoint was detected to be.
type Format struct {
	Container Container
	Layout    Layout
}

// String is "layout container", e.g. "hf safetensors".
func (f Format) String() string { return string(f.Layout) + " " + string(f.Container) }

// WeightFiles are the names searched, in order, when a directory is given:
// OpenCLIP's local-directory order, then transformers'.
var WeightFiles = []string{
	"open_clip_model.safetensors",
	"open_clip_pytorch_model.safetensors",
	"open_clip_pytorch_model.bin",
	"model.safetensors",
	"model.safetensors.index.json",
	"pytorch_model.bin",
	"pytorch_model.bin.index.json",
}

// source is a store of named tensors read on demand.
type source interface {
	names() []string
	info(name string) (weights.DType, []int)
	read(name string) (weights.Tensor, error)
	close() error
}

// sniff detects the container of a file from its first bytes.
func sniff(path string) (Container, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	switch {
	case pytorch.IsZip(f):
		return PyTorchZip, nil
	case pytorch.IsLegacy(f):
		return PyTorchLegacy, nil
	}
	var head [9]byte
	if _, err := f.ReadAt(head[:], 0); err == nil {
		// safetensors: an 8-byte header length that fits, then a JSON object.
		n := binary.LittleEndian.Uint64(head[:8])
		if n > 0 && n <= uint64(st.Size()-8) && head[8] == '{' {
			return Safetensors, nil
		}
	}
	if st.Size() < 9 {
		return "", fmt.Errorf("%s: %w (%d bytes)", path, ErrUnrecognized, st.Size())
	}
	return "", fmt.Errorf("%s: %w: neither safetensors nor a torch.save file", path, ErrUnrecognized)
}

// openFile opens one weights file of a detected container.
func openFile(path string, c Container) (source, error) {
	if c == Safetensors {
		f, err := weights.Open(path)
		if err != nil {
			return nil, err
		}
		return safetensorsSource{f}, nil
	}
	f, err := pytorch.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := newPyTorchSource(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

type safetensorsSource struct{ f *weights.File }

func (s safetensorsSource) names() []string { return s.f.Names() }
func (s safetensorsSource) info(name string) (weights.DType, []int) {
	d, shape, _ := s.f.Info(name)
	return d, shape
}
func (s safetensorsSource) read(name string) (weights.Tensor, error) { return s.f.Tensor(name) }
func (s safetensorsSource) close() error                             { return s.f.Close() }

// pytorchSource is the state dict inside a torch.save file.
type pytorchSource struct {
	f       *pytorch.File
	order   []string
	tensors map[string]*pytorch.Tensor
}

// newPyTorchSource finds the state dict: the root dict, or its
// "state_dict" entry when it has one (OpenCLIP's training checkpoints).
func newPyTorchSource(f *pytorch.File) (*pytorchSource, error) {
	entries, ok := pytorch.DictEntries(f.Root())
	if !ok {
		return nil, fmt.Errorf("the file holds a %s, not a state dict", pytorch.TypeName(f.Root()))
	}
	where := "the top-level dict"
	for _, e := range entries {
		if e.Key == "state_dict" {
			inner, ok := pytorch.DictEntries(e.Value)
			if !ok {
				return nil, fmt.Errorf(`"state_dict" is a %s, not a dict`, pytorch.TypeName(e.Value))
			}
			entries, where = inner, `"state_dict"`
			break
		}
	}
	s := &pytorchSource{f: f, tensors: make(map[string]*pytorch.Tensor, len(entries))}
	var bad []string
	for _, e := range entries {
		name, ok := e.Key.(string)
		t, ok2 := e.Value.(*pytorch.Tensor)
		if !ok || !ok2 {
			bad = append(bad, fmt.Sprintf("%v (%s)", e.Key, pytorch.TypeName(e.Value)))
			continue
		}
		s.order = append(s.order, name)
		s.tensors[name] = t
	}
	if len(bad) > 0 {
		if len(bad) > 8 {
			bad = append(bad[:8], fmt.Sprintf("… %d more", len(bad)-8))
		}
		return nil, fmt.Errorf("%s is not a state dict: entries that are not named tensors: %s", where, strings.Join(bad, ", "))
	}
	return s, nil
}

func (s *pytorchSource) names() []string { return slices.Clone(s.order) }
func (s *pytorchSource) info(name string) (weights.DType, []int) {
	t := s.tensors[name]
	return t.DType, t.Shape
}
func (s *pytorchSource) read(name string) (weights.Tensor, error) {
	t, err := s.tensors[name].Read()
	if err != nil {
		return weights.Tensor{}, fmt.Errorf("%s: tensor %q: %w", s.f.Path(), name, err)
	}
	return t, nil
}
func (s *pytorchSource) close() error { return s.f.Close() }

// shardedSource joins the files a transformers *.index.json lists.
type shardedSource struct {
	parts []source
	paths []string // the parts' files
	owner map[string]source
	order []string
}

// openSharded reads an index ({"weight_map": {name: file}}) and opens
// every shard it names, detecting each one's container.
func openSharded(index string) (*shardedSource, Container, error) {
	data, err := os.ReadFile(index)
	if err != nil {
		return nil, "", err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &idx); err != nil || len(idx.WeightMap) == 0 {
		return nil, "", fmt.Errorf("%s: %w: not a shard index with a weight_map (%v)", index, ErrUnrecognized, err)
	}
	files := map[string]bool{}
	for _, f := range idx.WeightMap {
		files[f] = true
	}
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, f)
	}
	sort.Strings(names)
	s := &shardedSource{owner: map[string]source{}}
	var container Container
	for _, name := range names {
		path := filepath.Join(filepath.Dir(index), filepath.FromSlash(name))
		c, err := sniff(path)
		if err != nil {
			s.close()
			return nil, "", err
		}
		container = c
		part, err := openFile(path, c)
		if err != nil {
			s.close()
			return nil, "", err
		}
		s.parts = append(s.parts, part)
		s.paths = append(s.paths, path)
		for _, n := range part.names() {
			if _, dup := s.owner[n]; dup {
				s.close()
				return nil, "", fmt.Errorf("%s: tensor %q appears in two shards", index, n)
			}
			s.owner[n] = part
			s.order = append(s.order, n)
		}
	}
	for n, f := range idx.WeightMap {
		if _, ok := s.owner[n]; !ok {
			s.close()
			return nil, "", fmt.Errorf("%s: tensor %q is mapped to %s, which does not hold it", index, n, f)
		}
	}
	return s, container, nil
}

func (s *shardedSource) names() []string { return slices.Clone(s.order) }
func (s *shardedSource) info(name string) (weights.DType, []int) {
	return s.owner[name].info(name)
}
func (s *shardedSource) read(name string) (weights.Tensor, error) { return s.owner[name].read(name) }
func (s *shardedSource) close() error {
	var errs []error
	for _, p := range s.parts {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

// resolveWeights turns a user path into the weights file to read: the path
// itself when it is a file, else the first of WeightFiles in the directory.
func resolveWeights(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	for _, name := range WeightFiles {
		p := filepath.Join(path, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w: the directory holds none of %s", path, ErrUnrecognized, strings.Join(WeightFiles, ", "))
}

// openSource opens the weights at a resolved path, detecting the container.
func openSource(path string) (source, Container, error) {
	if strings.HasSuffix(path, ".index.json") {
		return openSharded(path)
	}
	c, err := sniff(path)
	if err != nil {
		return nil, "", err
	}
	s, err := openFile(path, c)
	if err != nil {
		return nil, "", err
	}
	return s, c, nil
}
