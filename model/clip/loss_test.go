package clip

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// clipLoss evaluates ContrastiveLoss(Logits(...)) with logit_scale = logScale.
func clipLoss(t *testing.T, img, txt []float32, n, dim int, logScale float32) float64 {
	t.Helper()
	store := model.NewStore()
	if _, err := store.CreateVariable(transformer.VariablePath(LogitScaleName), tensors.FromScalar(logScale)); err != nil {
		t.Fatal(err)
	}
	exec := model.MustNewExec(graphtest.Backend(t), store, func(scope *model.Scope, a, b *Node) *Node {
		return ContrastiveLoss(Logits(scope, a, b))
	})
	defer exec.Finalize()
	out, err := exec.Call(tensors.FromFlatDataAndDimensions(img, n, dim), tensors.FromFlatDataAndDimensions(txt, n, dim))
	if err != nil {
		t.Fatal(err)
	}
	return float64(tensors.MustCopyFlatData[float32](out[0])[0])
}

// TestContrastiveLossByHand checks a 3×3 case worked out on paper.
// Images are the unit axes, scaled (normalisation must undo the scale);
// text 2 is identical to text 0. With scale s = e^0 = 1 the similarity
// matrix is S = [[1,0,1],[0,1,0],[0,0,0]]:
//
//	image→text rows:  -log(e/(2e+1)), -log(e/(e+2)), -log(1/3)
//	text→image cols:  -log(e/(e+2)),  -log(e/(e+2)), -log(1/(e+2))  (column 2 is [1,0,0], its own image scores 0)
//
// loss = (mean(rows) + mean(cols)) / 2.
func TestContrastiveLossByHand(t *testing.T) {
	img := []float32{2, 0, 0, 0, 3, 0, 0, 0, 0.5}
	txt := []float32{1, 0, 0, 0, 1, 0, 1, 0, 0}
	e := math.E
	rows := (math.Log((2*e+1)/e) + math.Log((e+2)/e) + math.Log(3)) / 3
	cols := (2*math.Log((e+2)/e) + math.Log(e+2)) / 3
	want := (rows + cols) / 2
	if got := clipLoss(t, img, txt, 3, 3, 0); math.Abs(got-want) > 1e-6 {
		t.Errorf("loss %.7f, hand computation %.7f", got, want)
	}
}

// TestContrastiveLossMatchesOpenCLIP uses OpenCLIP's ClipLoss output on the
// tiny reference features.
func TestContrastiveLossMatchesOpenCLIP(t *testing.T) {
	_, reference := loadReference(t, "tiny")
	cases := reference.Cases
	var ref struct {
		Loss float64 `json:"loss"`
	}
	data, err := os.ReadFile(filepath.Join(reference.Dir, "loss.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	dim := cases["image_features_normalized"].Shape[1]
	img := floats(t, cases, "image_features_normalized")[:4*dim]
	txt := floats(t, cases, "text_features_normalized")[:4*dim]
	logScale := floats(t, cases, "logit_scale_log")[0]
	if got := clipLoss(t, img, txt, 4, dim, logScale); math.Abs(got-ref.Loss) > 1e-5 {
		t.Errorf("loss %.7f, OpenCLIP %.7f", got, ref.Loss)
	}
}
