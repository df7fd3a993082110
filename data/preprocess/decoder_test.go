package preprocess

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readPNM reads the binary PGM/PPM files djpeg wrote.
func readPNM(t *testing.T, path string) (w, h, ch int, pix []uint8) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(raw))
	var magic string
	var maxv int
	if _, err := fmt.Fscan(r, &magic, &w, &h, &maxv); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r.ReadByte() // the single whitespace after the header
	ch = map[string]int{"P5": 1, "P6": 3}[magic]
	pix = make([]uint8, w*h*ch)
	if _, err := io.ReadFull(r, pix); err != nil || ch == 0 {
		t.Fatalf("%s: %v (magic %s)", path, err, magic)
	}
	return w, h, ch, pix
}

// TestDecodersMatchDjpeg decodes JPEGs written by libjpeg-turbo's cjpeg
// (progressive, restart intervals, 4:2:0, 4:2:2, 4:4:0, 4:1:1, greyscale,
// RGB, sizes that are not multiples of the MCU) at scales 1, 1/2, 1/4 and
// 1/8, and compares every pixel with what djpeg -dct int wrote: the
// reference for the ported IDCTs, the DCT-domain scaling rules and the
// upsampling (fancy, and plain replication at 1/8).
func TestDecodersMatchDjpeg(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test JPEGs: %v", err)
	}
	for _, dec := range decoders() {
		cfg := Config{JPEG: dec}
		for _, f := range files {
			for _, scale := range []int{1, 2, 4, 8} {
				name := strings.TrimSuffix(filepath.Base(f), ".jpg")
				t.Run(fmt.Sprintf("%s/%s/1:%d", dec, name, scale), func(t *testing.T) {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					w, h, ch, want := readPNM(t, fmt.Sprintf("testdata/%s.s%d.pnm", name, scale))
					src, err := cfg.open(data, func(int, int) int { return scale })
					if err != nil {
						t.Fatal(err)
					}
					m, gw, gh, _ := src.info()
					if gw != w || gh != h || m.channels() != ch {
						t.Fatalf("decoded %dx%d with %d channels, djpeg %dx%d with %d", gw, gh, m.channels(), w, h, ch)
					}
					r, err := materialize(src)
					if err != nil {
						t.Fatal(err)
					}
					if n := countDiff(r.pix, want); n != 0 {
						t.Errorf("%d of %d bytes differ from djpeg", n, len(want))
					}
				})
			}
		}
	}
}

// TestCorruptJPEGs checks that damaged files fail cleanly (no panic) with
// an error naming the format, and that a file cut inside its scan is
// refused rather than decoded with a grey bottom, as Pillow refuses it.
func TestCorruptJPEGs(t *testing.T) {
	good, err := os.ReadFile("testdata/progressive420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("testdata/baseline422-restart.jpg")
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, at int) []byte {
		b = bytes.Clone(b)
		for i := at; i < len(b)-2 && i < at+40; i++ {
			b[i] ^= 0x5a
		}
		return b
	}
	cases := map[string][]byte{
		"progressive cut in scan": good[:len(good)/2],
		"baseline cut in scan":    base[:len(base)*3/4],
		"header only":             good[:120],
		"scrambled scan":          flip(base, len(base)/2),
		"scrambled tables":        flip(good, 30),
		"soi only":                {0xff, 0xd8, 0xff},
	}
	for _, dec := range decoders() {
		cfg := OpenAI(16)
		cfg.JPEG = dec
		for name, data := range cases {
			t.Run(string(dec)+"/"+name, func(t *testing.T) {
				_, err := cfg.Apply(data)
				if name == "scrambled scan" || name == "scrambled tables" {
					// libjpeg decodes some damage with a warning; either
					// outcome is fine as long as nothing panics.
					return
				}
				if err == nil || !strings.HasPrefix(err.Error(), "preprocess: decode") {
					t.Errorf("error %v, want a preprocess: decode error", err)
				}
			})
		}
	}
}
