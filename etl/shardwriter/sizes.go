package shardwriter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/internal/atomicfile"
)

// SizesName is the manifest of sample counts OpenCLIP reads next to
// WebDataset shards: a JSON object mapping each shard's base name to its
// number of samples ({"000000.tar": 9512, ...}).
const SizesName = "sizes.json"

// WriteSizes writes dir/sizes.json atomically.
func WriteSizes(dir string, sizes map[string]int) error {
	data, err := json.MarshalIndent(sizes, "", " ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, SizesName), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("shardwriter: %w", err)
	}
	return nil
}

// ReadSizes reads dir/sizes.json; a missing file gives an empty map.
func ReadSizes(dir string) (map[string]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, SizesName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shardwriter: %w", err)
	}
	sizes := map[string]int{}
	if err := json.Unmarshal(data, &sizes); err != nil {
		return nil, fmt.Errorf("shardwriter: %s: %w (expected an object of shard name → sample count)", filepath.Join(dir, SizesName), err)
	}
	return sizes, nil
}
