package checkpoint_test

import (
	"bufio"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// randomStateDict fills every parameter of cfg with cheap pseudo-random
// float32 values (an xorshift stream, not an initialisation: a benchmark
// only needs the bytes).
func randomStateDict(cfg clip.Config) weights.StateDict {
	sd := weights.StateDict{}
	x := uint64(88172645463325252)
	for _, p := range clip.Params(cfg) {
		data := make([]byte, 4*p.NumElements())
		for i := 0; i < len(data); i += 4 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			binary.LittleEndian.PutUint32(data[i:], math.Float32bits(float32(int32(x>>32))/(1<<33)))
		}
		sd[p.Name] = weights.Tensor{DType: weights.F32, Shape: p.Shape, Data: data}
	}
	return sd
}

// procStatus reads a field of /proc/self/status in bytes (Linux).
func procStatus(field string) (uint64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// resetPeakRSS makes VmHWM restart from the current RSS (Linux ≥ 4.0).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// BenchmarkLoadViTL14 loads a ViT-L-14-sized checkpoint (427.6 M float32
// parameters, 1.71 GB; random values) from a warm page cache, as cmd/embed
// does (Open + NewStore: the GoMLX variables) and as train.Load does (Open
// + StateDict), for the OpenCLIP safetensors, torch.save zip and
// transformers safetensors layouts. It reports the peak resident memory of
// the load alone (VmHWM reset after writing the file), and the peak above
// the process's resident memory before loading, per byte of file: near 1 means one
// copy of the weights. Needs ~5.2 GB of temporary disk.
//
//	go test ./model/checkpoint -run '^$' -bench LoadViTL14 -benchtime 2x
func BenchmarkLoadViTL14(b *testing.B) {
	data, err := configs.Model("ViT-L-14")
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := clip.ParseConfigJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	mc := checkpoint.ModelConfig{Config: cfg, Preprocess: clip.OpenAIPreprocess, Source: "built-in ViT-L-14"}
	dir := b.TempDir()
	files := map[string]string{}
	{
		sd := randomStateDict(cfg)
		hfsd, err := hf.FromOpenCLIP(sd)
		if err != nil {
			b.Fatal(err)
		}
		files["openclip-safetensors"] = filepath.Join(dir, "open_clip_model.safetensors")
		files["pytorch-zip"] = filepath.Join(dir, "epoch_1.pt")
		files["hf-safetensors"] = filepath.Join(dir, "model.safetensors")
		for name, err := range map[string]error{
			"openclip-safetensors": weights.WriteFile(files["openclip-safetensors"], sd, map[string]string{"format": "pt"}),
			"pytorch-zip": pytorchtest.WriteFile(files["pytorch-zip"],
				pytorchtest.NewDict("epoch", 1, "state_dict", pytorchtest.StateDict(sd, "module.")), pytorchtest.Options{}),
			"hf-safetensors": weights.WriteFile(files["hf-safetensors"], hfsd, map[string]string{"format": "pt"}),
		} {
			if err != nil {
				b.Fatalf("%s: %v", name, err)
			}
		}
	}
	for _, format := range []string{"openclip-safetensors", "pytorch-zip", "hf-safetensors"} {
		for _, target := range []string{"store", "statedict"} {
			b.Run(format+"/"+target, func(b *testing.B) {
				path := files[format]
				st, err := os.Stat(path)
				if err != nil {
					b.Fatal(err)
				}
				var peak, above uint64
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					runtime.GC()
					debug.FreeOSMemory()
					base, _ := procStatus("VmRSS")
					canPeak := resetPeakRSS()
					b.StartTimer()
					start := time.Now()
					ck, err := checkpoint.Open(path, checkpoint.Options{ModelConfig: &mc})
					if err != nil {
						b.Fatal(err)
					}
					var keep any
					if target == "store" {
						keep, err = ck.NewStore()
					} else {
						keep, err = ck.StateDict()
					}
					ck.Close()
					if err != nil {
						b.Fatal(err)
					}
					elapsed += time.Since(start)
					b.StopTimer()
					if hwm, ok := procStatus("VmHWM"); ok && canPeak {
						peak = max(peak, hwm)
						above = max(above, hwm-min(hwm, base))
					}
					runtime.KeepAlive(keep)
					keep = nil
					b.StartTimer()
				}
				b.ReportMetric(float64(elapsed.Milliseconds())/float64(b.N), "ms/load")
				b.ReportMetric(float64(st.Size())/1e6/elapsed.Seconds()*float64(b.N), "MB/s")
				if peak > 0 {
					b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
					b.ReportMetric(float64(above)/float64(st.Size()), "peak-above-start/file-byte")
				}
				b.Logf("%s: %.2f GB file", path, float64(st.Size())/1e9)
			})
		}
	}
}
