package synth

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// MinImageSize and MaxImageSize bound the size Render accepts.
const (
	MinImageSize = 24
	MaxImageSize = 1024
)

// canvas holds linear RGB values in [0, 1], row-major.
type canvas struct {
	size    int
	r, g, b []float64
}

func newCanvas(size int) *canvas {
	n := size * size
	return &canvas{size: size, r: make([]float64, n), g: make([]float64, n), b: make([]float64, n)}
}

// Render draws a size×size image showing attrs: a modality-specific background
// and texture, and attrs.Count objects of attrs.Shape clustered in the
// attrs.Position quadrant. Objects stay inside the image with a margin, so a
// centre crop of the square image loses none of them. X-ray images are
// grayscale (R = G = B). The result is an opaque *image.RGBA; Render panics
// if attrs is invalid or size is outside [MinImageSize, MaxImageSize].
//
// All randomness comes from rng, so equal rng states give equal images.
func Render(rng *rand.Rand, attrs Attributes, size int) image.Image {
	if err := attrs.Validate(); err != nil {
		panic(err)
	}
	if size < MinImageSize || size > MaxImageSize {
		panic(fmt.Sprintf("synth: Render size %d outside [%d, %d]", size, MinImageSize, MaxImageSize))
	}
	objs := placeObjects(rng, attrs, size)
	c := newCanvas(size)
	switch attrs.Modality {
	case XRay:
		paintXRay(rng, c, objs)
	case Histology:
		paintHistology(rng, c, objs)
	case Fluorescence:
		paintFluorescence(rng, c, objs, attrs.Color)
	}
	return c.rgba()
}

// rgba quantises the canvas to 8 bits.
func (c *canvas) rgba() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, c.size, c.size))
	for i := range c.r {
		p := img.Pix[4*i : 4*i+4 : 4*i+4]
		p[0] = quantise(c.r[i])
		p[1] = quantise(c.g[i])
		p[2] = quantise(c.b[i])
		p[3] = 255
	}
	return img
}

func quantise(v float64) uint8 { return uint8(clamp01(v)*255 + 0.5) }

// ellipseMask is a soft indicator of the ellipse centred at (cx, cy) with
// semi-axes (ax, ay): 1 inside, fading to 0 over soft (fraction of the radius).
func ellipseMask(x, y, cx, cy, ax, ay, soft float64) float64 {
	dx, dy := (x-cx)/ax, (y-cy)/ay
	r := math.Sqrt(dx*dx + dy*dy)
	return clamp01((1 - r) / soft)
}

// paintXRay draws a frontal chest radiograph: a dark field, a soft thorax with
// darker lungs, a bright mediastinum and faint ribs, film grain, and the
// objects as bright soft-edged opacities.
func paintXRay(rng *rand.Rand, c *canvas, objs []object) {
	s := float64(c.size)
	unit := s / 48
	base := 0.04 + 0.05*rng.Float64()
	body := 0.08 + 0.05*rng.Float64()
	lungDark := 0.05 + 0.03*rng.Float64()
	ribAmp := 0.03 + 0.03*rng.Float64()
	ribPeriod := s * (0.11 + 0.03*rng.Float64())
	ribPhase := rng.Float64() * ribPeriod
	tilt := 0.25 + 0.2*rng.Float64()
	cx := s * (0.5 + 0.04*(rng.Float64()-0.5))
	nz := fractalNoise(rng, c.size, 3, 3)
	peaks := make([]float64, len(objs))
	for i := range peaks {
		peaks[i] = 0.78 + 0.17*rng.Float64()
	}
	for y := range c.size {
		fy := float64(y) + 0.5
		for x := range c.size {
			fx := float64(x) + 0.5
			i := y*c.size + x
			thorax := ellipseMask(fx, fy, cx, 0.58*s, 0.50*s, 0.62*s, 0.25)
			lungs := max(ellipseMask(fx, fy, cx-0.2*s, 0.48*s, 0.15*s, 0.30*s, 0.45),
				ellipseMask(fx, fy, cx+0.2*s, 0.48*s, 0.15*s, 0.30*s, 0.45))
			spine := math.Exp(-sq((fx-cx)/(0.06*s))) * thorax
			rib := 0.5 + 0.5*math.Sin(2*math.Pi*(fy-tilt*math.Abs(fx-cx)+ribPhase)/ribPeriod)
			v := base + body*thorax - lungDark*lungs + 0.10*spine + ribAmp*lungs*sq(rib) + 0.03*float64(nz[i])
			for k := range objs {
				if !objs[k].near(fx, fy, 2*unit) {
					continue
				}
				d, rel := objs[k].distance(fx, fy)
				a := coverage(d, 1.6*unit)
				inner := peaks[k] * (0.82 + 0.18*(1-rel*rel))
				v += (inner - v) * a
			}
			v += 0.022 * rng.NormFloat64()
			c.r[i], c.g[i], c.b[i] = v, v, v
		}
	}
}

// paintHistology draws an H&E section: eosin-pink stroma with fibres and pale
// vacuoles, each object a purple hematoxylin nucleus with chromatin texture
// and a darker rim, surrounded by a faint cytoplasm halo.
func paintHistology(rng *rand.Rand, c *canvas, objs []object) {
	s := float64(c.size)
	unit := s / 48
	jit := func(v, by float64) float64 { return v + by*(2*rng.Float64()-1) }
	light := [3]float64{jit(0.95, 0.02), jit(0.74, 0.04), jit(0.85, 0.03)}
	deep := [3]float64{jit(0.86, 0.03), jit(0.50, 0.05), jit(0.71, 0.04)}
	cyto := [3]float64{0.80, 0.47, 0.70}
	hema := [3]float64{jit(0.36, 0.04), jit(0.19, 0.03), jit(0.55, 0.05)}
	angle := math.Pi * rng.Float64()
	fc, fs := math.Cos(angle), math.Sin(angle)
	period := s * (0.16 + 0.08*rng.Float64())
	warp := fractalNoise(rng, c.size, 2, 2)
	blotch := fractalNoise(rng, c.size, 4, 2)
	chromatin := valueNoise(rng, c.size, max(4, c.size/3))
	type spot struct{ x, y, r float64 }
	vacuoles := make([]spot, 3+rng.IntN(5))
	for i := range vacuoles {
		vacuoles[i] = spot{s * rng.Float64(), s * rng.Float64(), unit * (0.8 + 1.6*rng.Float64())}
	}
	for y := range c.size {
		fy := float64(y) + 0.5
		for x := range c.size {
			fx := float64(x) + 0.5
			i := y*c.size + x
			fibre := 0.5 + 0.5*math.Sin(2*math.Pi*(fx*fc+fy*fs)/period+4.5*float64(warp[i]))
			m := clamp01(0.15 + 0.45*fibre*fibre + 0.35*float64(blotch[i]))
			var col [3]float64
			for ch := range col {
				col[ch] = light[ch] + (deep[ch]-light[ch])*m
			}
			for _, v := range vacuoles {
				if math.Abs(fx-v.x) > v.r+1 || math.Abs(fy-v.y) > v.r+1 {
					continue
				}
				a := coverage(math.Hypot(fx-v.x, fy-v.y)-v.r, 1)
				for ch, w := range [3]float64{0.98, 0.94, 0.97} {
					col[ch] += (w - col[ch]) * a * 0.8
				}
			}
			halo, nucleus, rim := 0.0, 0.0, 0.0
			for k := range objs {
				if !objs[k].near(fx, fy, 4*unit) {
					continue
				}
				d, rel := objs[k].distance(fx, fy)
				halo = max(halo, coverage(d-2.2*unit, 1.8*unit))
				if a := coverage(d, 1.0); a > nucleus {
					nucleus, rim = a, clamp01((rel-0.6)/0.4)
				}
			}
			for ch := range col {
				col[ch] += (cyto[ch] - col[ch]) * 0.5 * halo
			}
			texture := 0.88 + 0.22*float64(chromatin[i]) - 0.18*rim
			for ch := range col {
				col[ch] += (hema[ch]*texture - col[ch]) * nucleus
			}
			common := 0.018 * rng.NormFloat64()
			c.r[i] = col[0] + common + 0.008*rng.NormFloat64()
			c.g[i] = col[1] + common + 0.008*rng.NormFloat64()
			c.b[i] = col[2] + common + 0.008*rng.NormFloat64()
		}
	}
}

// paintFluorescence draws a fluorescence micrograph: a near-black field with
// faint haze and debris, each object a glowing cell of the given colour with a
// brighter centre, mottled texture and a soft halo.
func paintFluorescence(rng *rand.Rand, c *canvas, objs []object, color Color) {
	s := float64(c.size)
	unit := s / 48
	tint := map[Color][3]float64{
		Green: {0.22, 1.00, 0.35},
		Red:   {1.00, 0.22, 0.18},
		Blue:  {0.30, 0.50, 1.00},
	}[color]
	haze := fractalNoise(rng, c.size, 3, 2)
	mottle := valueNoise(rng, c.size, max(4, c.size/4))
	type speck struct{ x, y, v float64 }
	debris := make([]speck, 2+rng.IntN(5))
	for i := range debris {
		debris[i] = speck{s * rng.Float64(), s * rng.Float64(), 0.08 + 0.08*rng.Float64()}
	}
	peaks := make([]float64, len(objs))
	for i := range peaks {
		peaks[i] = 0.75 + 0.25*rng.Float64()
	}
	level := 0.015 + 0.015*rng.Float64()
	for y := range c.size {
		fy := float64(y) + 0.5
		for x := range c.size {
			fx := float64(x) + 0.5
			i := y*c.size + x
			bg := level * (1 + float64(haze[i]))
			signal := 0.0
			for _, d := range debris {
				if math.Abs(fx-d.x) > 3*unit || math.Abs(fy-d.y) > 3*unit {
					continue
				}
				signal += d.v * math.Exp(-(sq(fx-d.x)+sq(fy-d.y))/(0.6*unit*unit))
			}
			for k := range objs {
				if !objs[k].near(fx, fy, 8*unit) {
					continue
				}
				d, rel := objs[k].distance(fx, fy)
				body := coverage(d, 1.4*unit) * peaks[k] * (0.72 + 0.28*(1-rel*rel)) * (0.88 + 0.12*float64(mottle[i]))
				glow := 0.2 * math.Exp(-max(d, 0)/(1.5*unit))
				signal += max(body, glow)
			}
			noise := 0.012 * rng.NormFloat64()
			c.r[i] = bg + tint[0]*signal + noise
			c.g[i] = bg + tint[1]*signal + noise
			c.b[i] = bg + tint[2]*signal + noise
		}
	}
}

func sq(v float64) float64 { return v * v }
