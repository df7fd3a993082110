package transformer

import "fmt"

// Config is the shape of one stack of residual attention blocks.
type Config struct {
	// Width is the residual stream size d.
	Width int
	// Heads is the number of attention heads; Width must divide evenly.
	Heads int
	// Layers is the number of resblocks.
	Layers int
	// MLPRatio sets the hidden MLP size to int(Width * MLPRatio), as OpenCLIP does.
	MLPRatio float64
	// QuickGELU selects x*sigmoid(1.702x) (OpenAI weights) instead of exact erf GELU.
	QuickGELU bool
	// Runtime says how the stack computes (precision, gradient
	// checkpointing); it changes no weight.
	Runtime
}

// MLPWidth is the hidden size of the MLP, int(Width*MLPRatio) as in OpenCLIP.
func (c Config) MLPWidth() int { return int(float64(c.Width) * c.MLPRatio) }

// Validate reports a configuration that cannot build a transformer.
func (c Config) Validate() error {
	switch {
	case c.Width <= 0:
		return fmt.Errorf("width must be positive, got %d", c.Width)
	case c.Heads <= 0:
		return fmt.Errorf("heads must be positive, got %d", c.Heads)
	case c.Width%c.Heads != 0:
		return fmt.Errorf("width %d is not divisible by heads %d", c.Width, c.Heads)
	case c.Layers < 0:
		return fmt.Errorf("layers must not be negative, got %d", c.Layers)
	case c.MLPWidth() <= 0:
		return fmt.Errorf("mlp_ratio %g gives an empty MLP", c.MLPRatio)
	}
	return nil
}
