package train

import (
	"fmt"

	"github.com/bmca/bmca/internal/graphstats"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Program builds the whole-step graph for batch pairs, as the first
// TrainStep would, without running it, and summarises what it asks the
// backend to compute: its matrix products by dtype, conversions and
// transposes. The summary covers the graph as built for this Stepper's
// backend (the pure-Go one has no fused attention, so its attention is the
// decomposed form); the backend's compiler may fuse or drop work further.
// It covers the single-graph step (accum_freq 1).
func (s *Stepper) Program(batch int) (*graphstats.Summary, error) {
	if s.fused == nil {
		return nil, fmt.Errorf("program summary: only the single-graph step (accum_freq 1) is summarised")
	}
	var roots []*Node
	exec, err := model.NewExec(s.backend, s.store, func(scope *model.Scope, inputs []*Node) []*Node {
		outputs := s.fusedGraph(scope, inputs)
		g := inputs[0].Graph()
		roots = append([]*Node(nil), outputs...)
		for v := range s.store.IterVariables() {
			if v.ChangedInGraph(g) {
				roots = append(roots, v.NodeValue(g))
			}
		}
		return outputs
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	size, ctxLen := s.modelCfg.VisionCfg.ImageSize, s.modelCfg.TextCfg.ContextLength
	scalar := shapes.Make(dtypes.Float32)
	if _, err := exec.Compile(shapes.Make(dtypes.Float32, batch, 3, size, size), shapes.Make(dtypes.Int32, batch, ctxLen), scalar, scalar, scalar); err != nil {
		return nil, fmt.Errorf("program summary: %w", err)
	}
	return graphstats.Summarize(roots)
}
