package synth

import (
	"fmt"
	"image"
	"math/rand/v2"
	"testing"

	"golang.org/x/image/draw"
)

// foreground marks the pixels of the main objects, by modality-specific
// thresholds well clear of the background's range.
func foreground(img *image.RGBA, m Modality) []bool {
	n := img.Rect.Dx() * img.Rect.Dy()
	fg := make([]bool, n)
	for i := range n {
		r, g, b := img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2]
		switch m {
		case XRay:
			fg[i] = r > 140
		case Histology:
			fg[i] = g < 90
		case Fluorescence:
			fg[i] = max(r, g, b) > 100
		}
	}
	return fg
}

// components counts 8-connected regions of at least minSize pixels.
func components(fg []bool, size, minSize int) int {
	seen := make([]bool, len(fg))
	count := 0
	var stack []int
	for start := range fg {
		if !fg[start] || seen[start] {
			continue
		}
		seen[start] = true
		stack = append(stack[:0], start)
		pixels := 0
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			pixels++
			x, y := p%size, p/size
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= size || ny >= size {
						continue
					}
					q := ny*size + nx
					if fg[q] && !seen[q] {
						seen[q] = true
						stack = append(stack, q)
					}
				}
			}
		}
		if pixels >= minSize {
			count++
		}
	}
	return count
}

// allAttributes lists every attribute combination (one colour per fluorescence
// combination, cycling).
func allAttributes() []Attributes {
	var out []Attributes
	for m := range NumModalities {
		for s := range NumShapes {
			for c := 1; c <= MaxCount; c++ {
				for p := range NumPositions {
					a := Attributes{Modality: m, Shape: s, Count: c, Position: p}
					if m == Fluorescence {
						a.Color = Color(1 + len(out)%3)
					}
					out = append(out, a)
				}
			}
		}
	}
	return out
}

func TestRenderModalityLooks(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for m := range NumModalities {
		for k := range 40 {
			a := RandomAttributes(rng)
			a.Modality, a.Color = m, NoColor
			if m == Fluorescence {
				a.Color = Color(1 + k%3)
			}
			img := Render(rng, a, 48).(*image.RGBA)
			var sum [3]float64
			dark, gray := 0, 0
			n := 48 * 48
			for i := range n {
				r, g, b := img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2]
				sum[0], sum[1], sum[2] = sum[0]+float64(r), sum[1]+float64(g), sum[2]+float64(b)
				if max(r, g, b) < 40 {
					dark++
				}
				if r == g && g == b {
					gray++
				}
				if img.Pix[4*i+3] != 255 {
					t.Fatalf("%v: pixel %d not opaque", a, i)
				}
			}
			switch m {
			case XRay:
				if gray != n {
					t.Errorf("%+v: %d of %d pixels are not gray", a, n-gray, n)
				}
				if mean := sum[0] / float64(n); mean > 110 {
					t.Errorf("%+v: mean %.0f, want a dark radiograph", a, mean)
				}
			case Histology:
				if !(sum[0] > sum[1]*1.15 && sum[2] > sum[1]) {
					t.Errorf("%+v: mean RGB %v is not pink (R > G, B > G)", a, sum)
				}
			case Fluorescence:
				if float64(dark) < 0.6*float64(n) {
					t.Errorf("%+v: only %d of %d pixels are dark", a, dark, n)
				}
				want := map[Color]int{Green: 1, Red: 0, Blue: 2}[a.Color]
				for ch := range 3 {
					if ch != want && sum[ch] >= sum[want] {
						t.Errorf("%+v: channel sums %v, want channel %d brightest", a, sum, want)
					}
				}
			}
		}
	}
}

// TestRenderCountAndPosition checks that the foreground falls apart into
// exactly Count blobs whose centroid lies in the named quadrant, for every
// attribute combination: at 48 px, at 48 px resized to the 32 px the demo
// model sees, and rendered at 32 px.
func TestRenderCountAndPosition(t *testing.T) {
	for _, tc := range []struct{ render, size int }{{48, 48}, {48, 32}, {32, 32}} {
		size := tc.size
		rng := rand.New(rand.NewPCG(21, uint64(tc.render)))
		failures := 0
		for _, a := range allAttributes() {
			for rep := range 4 {
				img := Render(rng, a, tc.render).(*image.RGBA)
				if tc.render != size {
					small := image.NewRGBA(image.Rect(0, 0, size, size))
					draw.CatmullRom.Scale(small, small.Bounds(), img, img.Bounds(), draw.Src, nil)
					img = small
				}
				fg := foreground(img, a.Modality)
				if got := components(fg, size, 3); got != a.Count {
					failures++
					t.Errorf("size %d, %+v, rep %d: %d blobs, want %d", size, a, rep, got, a.Count)
				}
				var sx, sy, n float64
				for i, on := range fg {
					if on {
						sx, sy, n = sx+float64(i%size)+0.5, sy+float64(i/size)+0.5, n+1
					}
				}
				cx, cy, half := sx/n, sy/n, float64(size)/2
				if (cx > half) != a.Position.Right() || (cy > half) != a.Position.Lower() {
					failures++
					t.Errorf("size %d, %+v: foreground centroid (%.1f, %.1f) not in the %v quadrant", size, a, cx, cy, a.Position)
				}
				if failures > 10 {
					t.Fatal("too many failures")
				}
			}
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	a := Attributes{Modality: Fluorescence, Shape: Irregular, Count: 3, Position: LowerLeft, Color: Red}
	x := Render(rand.New(rand.NewPCG(5, 6)), a, 48).(*image.RGBA)
	y := Render(rand.New(rand.NewPCG(5, 6)), a, 48).(*image.RGBA)
	z := Render(rand.New(rand.NewPCG(5, 7)), a, 48).(*image.RGBA)
	if string(x.Pix) != string(y.Pix) {
		t.Error("equal rng states rendered different images")
	}
	if string(x.Pix) == string(z.Pix) {
		t.Error("different rng states rendered the same image")
	}
}

func TestRenderPanicsOnInvalidInput(t *testing.T) {
	valid := Attributes{Modality: XRay, Shape: Round, Count: 1, Position: UpperLeft}
	for name, tc := range map[string]struct {
		a    Attributes
		size int
	}{
		"count 0":           {Attributes{Modality: XRay, Shape: Round, Count: 0}, 48},
		"count 4":           {Attributes{Modality: XRay, Shape: Round, Count: 4}, 48},
		"fluor no colour":   {Attributes{Modality: Fluorescence, Shape: Round, Count: 1}, 48},
		"xray with colour":  {Attributes{Modality: XRay, Shape: Round, Count: 1, Color: Red}, 48},
		"bad shape":         {Attributes{Modality: XRay, Shape: NumShapes, Count: 1}, 48},
		"size too small":    {valid, MinImageSize - 1},
		"size too large":    {valid, MaxImageSize + 1},
		"position too high": {Attributes{Modality: XRay, Shape: Round, Count: 1, Position: NumPositions}, 48},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Render(%+v, %d) did not panic", tc.a, tc.size)
				}
			}()
			Render(rand.New(rand.NewPCG(1, 1)), tc.a, tc.size)
		})
	}
}

func BenchmarkRender(b *testing.B) {
	for m := range NumModalities {
		b.Run(fmt.Sprint(m), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				a := RandomAttributes(rng)
				a.Modality, a.Color = m, NoColor
				if m == Fluorescence {
					a.Color = Green
				}
				Render(rng, a, 48)
			}
		})
	}
}
