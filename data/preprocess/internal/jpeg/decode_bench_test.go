package jpeg

import (
	"fmt"
	"testing"

	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
)

// BenchmarkDecodeFigures decodes the real JPEG figures (0.3–2.2 megapixels,
// 4:2:0 and 4:4:4, baseline) into planes at each DCT scale, in figures and
// MB of JPEG per CPU-second (run with -cpu 1 for the one-core rate). At
// 1/4 and 1/8 the entropy decoding is most of the work.
func BenchmarkDecodeFigures(b *testing.B) {
	var files [][]byte
	var total int
	for _, f := range testshared.RealJPEGs(b, testshared.Dir(b), false) {
		files = append(files, f.Data)
		total += len(f.Data)
	}
	if len(files) == 0 {
		b.Skip("no JPEG figures in the shared material")
	}
	for _, scale := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("scale=1/%d", scale), func(b *testing.B) {
			cpu0 := cputime.Process()
			for b.Loop() {
				for _, raw := range files {
					if _, err := Decode(raw, Options{Scale: scale}); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu := (cputime.Process() - cpu0).Seconds()
			b.ReportMetric(float64(total)*float64(b.N)/1e6/cpu, "MB/cpu-s")
			b.ReportMetric(float64(len(files))*float64(b.N)/cpu, "images/cpu-s")
		})
	}
}
