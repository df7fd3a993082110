package transformer

import (
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// MLP is Sequential(c_fc, GELU or QuickGELU, c_proj).
func MLP(scope *model.Scope, x *Node, c Config) *Node {
	h := Linear(scope.In("c_fc"), x, c.MLPWidth(), c.Precision)
	if c.QuickGELU {
		h = QuickGELU(h)
	} else {
		h = GELU(h)
	}
	return Linear(scope.In("c_proj"), h, c.Width, c.Precision)
}

// ResidualBlock is OpenCLIP's pre-norm ResidualAttentionBlock without
// LayerScale: x + attn(ln_1(x)), then + mlp(ln_2(x)). causal selects the
// text tower's attention mask.
func ResidualBlock(scope *model.Scope, x *Node, c Config, causal bool) *Node {
	x = Add(x, Attention(scope.In("attn"), LayerNorm(scope.In("ln_1"), x), c, causal))
	return Add(x, MLP(scope.In("mlp"), LayerNorm(scope.In("ln_2"), x), c))
}

// Apply runs the whole stack: c.Layers residual blocks found under scope/resblocks/<i>.
func Apply(scope *model.Scope, x *Node, c Config, causal bool) *Node {
	blocks := scope.In("resblocks")
	for i := 0; i < c.Layers; i++ {
		if c.GradCheckpointing {
			x = x.Checkpoint() // the block input is kept, the rest recomputed
		}
		x = ResidualBlock(blocks.In("%d", i), x, c, causal)
	}
	if c.GradCheckpointing && c.Layers > 0 {
		x = x.StopCheckpoint() // what follows the stack is stored as usual
	}
	return x
}
