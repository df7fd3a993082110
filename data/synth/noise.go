package synth

import "math/rand/v2"

// valueNoise returns a size×size field of smooth noise in about [-1, 1]:
// uniform random values on a (cells+1)² lattice, interpolated with smoothstep.
func valueNoise(rng *rand.Rand, size, cells int) []float32 {
	n := cells + 1
	lattice := make([]float32, n*n)
	for i := range lattice {
		lattice[i] = float32(2*rng.Float64() - 1)
	}
	// Interpolate every lattice row along x once, then blend rows along y.
	step := float32(cells) / float32(size)
	rows := make([]float32, n*size)
	for x := range size {
		f := (float32(x) + 0.5) * step
		i := min(int(f), cells-1)
		t := smoothstep(f - float32(i))
		for j := range n {
			l := lattice[j*n:]
			rows[j*size+x] = l[i] + (l[i+1]-l[i])*t
		}
	}
	out := make([]float32, size*size)
	for y := range size {
		f := (float32(y) + 0.5) * step
		j := min(int(f), cells-1)
		t := smoothstep(f - float32(j))
		a, b := rows[j*size:(j+1)*size], rows[(j+1)*size:(j+2)*size]
		o := out[y*size : (y+1)*size]
		for x := range o {
			o[x] = a[x] + (b[x]-a[x])*t
		}
	}
	return out
}

// fractalNoise sums octaves of valueNoise with halving amplitude, starting at
// cells lattice cells; the result stays in about [-1, 1].
func fractalNoise(rng *rand.Rand, size, cells, octaves int) []float32 {
	out := make([]float32, size*size)
	amp, total := float32(1), float32(0)
	for range octaves {
		layer := valueNoise(rng, size, cells)
		for i, v := range layer {
			out[i] += amp * v
		}
		total += amp
		amp /= 2
		cells *= 2
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

func smoothstep(t float32) float32 { return t * t * (3 - 2*t) }

// clamp01 limits v to [0, 1].
func clamp01(v float64) float64 { return max(0, min(1, v)) }

// coverage turns a signed distance (negative inside) into an anti-aliased
// coverage in [0, 1] over an edge of the given width in pixels.
func coverage(d, width float64) float64 { return clamp01(0.5 - d/width) }
