package train

import (
	"encoding/json"
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/model/clip"
	"github.com/gomlx/compute"
)

// demoModel is the demo's model (configs/models/tiny.json) and the
// configured CPU backend, for the benchmarks.
func demoModel(b *testing.B) (clip.Config, compute.Backend) {
	data, err := configs.Model("tiny")
	if err != nil {
		b.Fatal(err)
	}
	var cfg clip.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		b.Fatal(err)
	}
	be, err := backend.Open("")
	if err != nil {
		b.Fatal(err)
	}
	return cfg, be
}

// BenchmarkTrainStepTiny times one optimiser step of the demo's model
// (configs/models/tiny.json) at batch 64 on the configured CPU backend.
// Report: ms/step and samples/s.
func BenchmarkTrainStepTiny(b *testing.B) {
	cfg, be := demoModel(b)
	const batch = 64
	s, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW}, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Finalize()
	pixels, tokens := randomBatch(1, cfg, batch)
	for i := range tokens {
		tokens[i] %= int32(cfg.TextCfg.VocabSize)
	}
	if _, err := s.TrainStep([]MicroBatch{{pixels, tokens, batch}}, 1e-4); err != nil { // compile outside the timer
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.TrainStep([]MicroBatch{{pixels, tokens, batch}}, 1e-4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/step")
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkStepInputs times the host side of putting one ViT-B-16 batch of
// 256 images (154 MB of float32 pixels) on the backend's device, as every
// step does before it runs. Report: ms per batch.
func BenchmarkStepInputs(b *testing.B) {
	be, err := backend.Open("")
	if err != nil {
		b.Fatal(err)
	}
	const batch, size = 256, 224
	pixels := make([]float32, batch*3*size*size)
	for i := range pixels {
		pixels[i] = float32(i%251) / 251
	}
	b.SetBytes(int64(4 * len(pixels)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t, err := deviceTensor(be, 0, pixels, batch, 3, size, size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := t.Buffer(be, 0); err != nil {
			b.Fatal(err)
		}
		t.FinalizeAll()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/batch")
}
