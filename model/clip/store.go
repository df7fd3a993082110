package clip

import (
	"fmt"

	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// NewStore creates a GoMLX store holding the model's variables, one per
// state-dict entry, at the path matching its OpenCLIP name. The state dict
// must match the config exactly (see CheckStateDict).
func NewStore(c Config, sd weights.StateDict) (*model.Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := CheckStateDict(c, sd); err != nil {
		return nil, err
	}
	store := model.NewStore()
	for _, p := range Params(c) {
		values, err := sd[p.Name].Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		if _, err := store.CreateVariable(transformer.VariablePath(p.Name), tensors.FromFlatDataAndDimensions(values, p.Shape...)); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return store, nil
}

// SetStateDict overwrites the model's variables in store with sd.
func SetStateDict(store *model.Store, c Config, sd weights.StateDict) error {
	if err := CheckStateDict(c, sd); err != nil {
		return err
	}
	for _, p := range Params(c) {
		v := store.GetVariable(transformer.VariablePath(p.Name))
		if v == nil {
			return fmt.Errorf("store has no variable for %s", p.Name)
		}
		values, err := sd[p.Name].Float32s()
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(values, p.Shape...)); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

// StateDictFromStore copies the model's variables out of store as float32
// tensors with OpenCLIP names.
func StateDictFromStore(store *model.Store, c Config) (weights.StateDict, error) {
	sd := make(weights.StateDict)
	for _, p := range Params(c) {
		v := store.GetVariable(transformer.VariablePath(p.Name))
		if v == nil {
			return nil, fmt.Errorf("store has no variable for %s", p.Name)
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		values, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		sd[p.Name] = weights.FromFloat32s(p.Shape, values)
	}
	return sd, nil
}
