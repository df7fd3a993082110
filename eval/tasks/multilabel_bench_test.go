package tasks

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMultiLabelMetrics is ChestMNIST's test split: 22,433 images, 14
// classes, 1000 bootstrap resamples.
func BenchmarkMultiLabelMetrics(b *testing.B) {
	const n, c = 22433, 14
	rng := rand.New(rand.NewPCG(1, 2))
	scores := make([]float32, n*c)
	targets := make([]bool, n*c)
	for i := range scores {
		targets[i] = rng.Float64() < 0.05
		scores[i] = float32(rng.NormFloat64())
		if targets[i] {
			scores[i] += 0.5
		}
	}
	classes := make([]string, c)
	for k := range classes {
		classes[k] = string(rune('a' + k))
	}
	for b.Loop() {
		if _, _, err := MultiLabelMetrics(scores, targets, classes, Bootstrap{}); err != nil {
			b.Fatal(err)
		}
	}
}
