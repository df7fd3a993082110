package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
)

// ExportFormat is the checkpoint layout Export writes.
type ExportFormat string

const (
	// ExportOpenCLIP writes OpenCLIPWeightsFile and OpenCLIPConfigFile,
	// what OpenCLIP's create_model(pretrained=DIR) and hf-hub loading read,
	// loadable with load_state_dict(strict=True). bmca's training
	// checkpoints keep their weights in this same layout.
	ExportOpenCLIP ExportFormat = "openclip"
	// ExportHF writes HFWeightsFile and HFConfigFile, a transformers
	// CLIPModel (CLIPModel.from_pretrained(DIR)).
	ExportHF ExportFormat = "hf"
)

// File names Export writes.
const (
	OpenCLIPWeightsFile = "open_clip_model.safetensors"
	OpenCLIPConfigFile  = "open_clip_config.json"
	HFWeightsFile       = "model.safetensors"
	HFConfigFile        = "config.json"
)

// safetensorsMetadata is what torch-side safetensors writers record, and
// what transformers requires before it loads a file.
var safetensorsMetadata = map[string]string{"format": "pt"}

// ExportOptions choose what Export writes.
type ExportOptions struct {
	// Format is the layout; the zero value means ExportOpenCLIP.
	Format ExportFormat
	// DType converts every tensor (F32, F16 or BF16); "" keeps the
	// checkpoint's dtypes, so a default export is a copy.
	DType weights.DType
}

// Export writes the checkpoint's model to dir (created when missing) and
// returns the paths written. Each file is replaced atomically. Tensors are
// read and converted one at a time; the output is held in memory once.
func (c *Checkpoint) Export(dir string, opts ExportOptions) ([]string, error) {
	switch opts.DType {
	case "", weights.F32, weights.F16, weights.BF16:
	default:
		return nil, fmt.Errorf("export: dtype %q is not one of F32, F16, BF16", opts.DType)
	}
	sd, err := c.stateDict(opts.DType)
	if err != nil {
		return nil, err
	}
	switch opts.Format {
	case "", ExportOpenCLIP:
		return WriteOpenCLIP(dir, c.Model.Config, c.Model.Preprocess, sd)
	case ExportHF:
		return WriteHF(dir, c.Model.Config, sd)
	}
	return nil, fmt.Errorf("export: format %q is not one of %s, %s", opts.Format, ExportOpenCLIP, ExportHF)
}

// WriteOpenCLIP writes sd (OpenCLIP names) and its model config to dir in
// OpenCLIP's Hub layout, after checking sd against cfg.
func WriteOpenCLIP(dir string, cfg clip.Config, pre clip.PreprocessConfig, sd weights.StateDict) ([]string, error) {
	if err := clip.CheckStateDict(cfg, sd); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	cfgJSON, err := cfg.OpenCLIPConfigJSON(pre)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return writePair(dir, OpenCLIPWeightsFile, sd, OpenCLIPConfigFile, cfgJSON)
}

// WriteHF writes sd (OpenCLIP names) to dir as a transformers CLIPModel:
// renamed, q/k/v split and projections transposed (package hf), with a
// config.json whose torch_dtype is the weights' dominant dtype.
func WriteHF(dir string, cfg clip.Config, sd weights.StateDict) ([]string, error) {
	if err := clip.CheckStateDict(cfg, sd); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	cfgJSON, err := hf.ConfigJSON(cfg, dominantDType(sd)) // first: it says which models CLIPModel cannot hold
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	hfsd, err := hf.FromOpenCLIP(sd)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return writePair(dir, HFWeightsFile, hfsd, HFConfigFile, cfgJSON)
}

// writePair writes the weights, then the config, each atomically.
func writePair(dir, weightsName string, sd weights.StateDict, configName string, cfgJSON []byte) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	wPath, cPath := filepath.Join(dir, weightsName), filepath.Join(dir, configName)
	if err := weights.WriteFile(wPath, sd, safetensorsMetadata); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := atomicfile.WriteFile(cPath, cfgJSON, 0o644); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return []string{wPath, cPath}, nil
}

// dominantDType is the dtype holding the most elements of sd.
func dominantDType(sd weights.StateDict) weights.DType {
	count := map[weights.DType]int{}
	best := weights.F32
	for _, name := range sd.Names() {
		t := sd[name]
		count[t.DType] += t.NumElements()
		if count[t.DType] > count[best] {
			best = t.DType
		}
	}
	return best
}
