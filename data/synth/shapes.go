package synth

import (
	"math"
	"math/rand/v2"
)

// object is one of the main objects of an image: a star-shaped region around
// (cx, cy) whose boundary is at radius radius(θ) in the object's own frame,
// rotated by rot.
type object struct {
	cx, cy   float64
	cos, sin float64 // of the rotation
	scale    float64 // shrink factor applied when a crowded cluster must be re-placed
	shape    Shape
	a, b     float64    // Round: a = radius; Elongated: semi-axes a ≥ b
	wobble   [4]float64 // Round: amplitude and phase of the 2nd and 3rd harmonics
	star     []float64  // Irregular: radius at 2n vertices, alternating outer/inner
	starRot  float64    // Irregular: angle of the first vertex
	halfMinX float64    // extent of the outline relative to the centre, image axes
	halfMaxX float64
	halfMinY float64
	halfMaxY float64
}

// newObject draws the outline of one object of the given shape; unit is the
// image size divided by 48 (sizes below are in pixels of a 48 px image).
func newObject(rng *rand.Rand, shape Shape, unit float64) object {
	o := object{shape: shape, scale: 1}
	rot := 2 * math.Pi * rng.Float64()
	o.cos, o.sin = math.Cos(rot), math.Sin(rot)
	switch shape {
	case Round:
		o.a = unit * (4.7 + 1.1*rng.Float64())
		o.wobble = [4]float64{0.05 * rng.Float64(), 2 * math.Pi * rng.Float64(), 0.04 * rng.Float64(), 2 * math.Pi * rng.Float64()}
	case Elongated:
		o.a = unit * (7.6 + 1.4*rng.Float64())
		o.b = unit * (2.6 + 0.6*rng.Float64())
	case Irregular:
		n := 5 + rng.IntN(2)
		outer := unit * (6.8 + 1.2*rng.Float64())
		inner := outer * (0.40 + 0.08*rng.Float64())
		o.star = make([]float64, 2*n)
		for i := range o.star {
			r := outer
			if i%2 == 1 {
				r = inner
			}
			o.star[i] = r * (0.85 + 0.3*rng.Float64())
		}
		o.starRot = 2 * math.Pi * rng.Float64()
	}
	o.measure()
	return o
}

// radius returns the boundary radius at angle theta of the object's frame,
// before scaling.
func (o *object) radius(theta float64) float64 {
	switch o.shape {
	case Round:
		w := o.wobble
		return o.a * (1 + w[0]*math.Sin(2*theta+w[1]) + w[2]*math.Sin(3*theta+w[3]))
	case Elongated:
		c, s := math.Cos(theta), math.Sin(theta)
		return o.a * o.b / math.Sqrt(o.b*o.b*c*c+o.a*o.a*s*s)
	default:
		n := len(o.star)
		t := math.Mod(theta-o.starRot, 2*math.Pi)
		if t < 0 {
			t += 2 * math.Pi
		}
		f := t / (2 * math.Pi) * float64(n)
		i := int(f) % n
		frac := f - math.Floor(f)
		return o.star[i] + (o.star[(i+1)%n]-o.star[i])*frac
	}
}

// measure records the outline's extent along the image axes.
func (o *object) measure() {
	o.halfMinX, o.halfMaxX, o.halfMinY, o.halfMaxY = 0, 0, 0, 0
	const steps = 96
	for k := range steps {
		theta := 2 * math.Pi * float64(k) / steps
		r := o.radius(theta) * o.scale
		lx, ly := r*math.Cos(theta), r*math.Sin(theta)
		x := lx*o.cos - ly*o.sin
		y := lx*o.sin + ly*o.cos
		o.halfMinX, o.halfMaxX = min(o.halfMinX, x), max(o.halfMaxX, x)
		o.halfMinY, o.halfMaxY = min(o.halfMinY, y), max(o.halfMaxY, y)
	}
}

// distance returns an approximate signed distance in pixels from (x, y) to the
// outline (negative inside) and the distance from the centre as a fraction of
// the boundary radius in that direction (0 at the centre, 1 on the outline).
func (o *object) distance(x, y float64) (d, rel float64) {
	dx, dy := x-o.cx, y-o.cy
	lx := dx*o.cos + dy*o.sin
	ly := -dx*o.sin + dy*o.cos
	dist := math.Hypot(lx, ly)
	r := o.radius(math.Atan2(ly, lx)) * o.scale
	return dist - r, dist / r
}

// placeObjects draws a.Count objects of shape a.Shape and places them without
// touching inside the quadrant a.Position, so that the centroid of the cluster
// always lies in that quadrant. The placement region reaches slightly past the
// image centre to leave room for three objects.
func placeObjects(rng *rand.Rand, a Attributes, size int) []object {
	s := float64(size)
	unit := s / 48
	objs := make([]object, a.Count)
	for i := range objs {
		objs[i] = newObject(rng, a.Shape, unit)
	}
	lo, hi := 0.04*s, 0.58*s
	x0, x1, y0, y1 := lo, hi, lo, hi
	if a.Position.Right() {
		x0, x1 = s-hi, s-lo
	}
	if a.Position.Lower() {
		y0, y1 = s-hi, s-lo
	}
	gap := 2.5 * unit
	occupied := make([]bool, size*size)
	const (
		triesPerObject = 150
		maxRestarts    = 12
	)
	scale := 1.0
	for restart := 0; ; restart++ {
		clear(occupied)
		placedAll := true
		for i := range objs {
			o := &objs[i]
			o.scale = scale
			o.measure()
			placed := false
			for range triesPerObject {
				cxLo, cxHi := x0-o.halfMinX, x1-o.halfMaxX
				cyLo, cyHi := y0-o.halfMinY, y1-o.halfMaxY
				if cxHi < cxLo || cyHi < cyLo {
					break
				}
				o.cx = cxLo + (cxHi-cxLo)*rng.Float64()
				o.cy = cyLo + (cyHi-cyLo)*rng.Float64()
				if restart == maxRestarts || !o.collides(occupied, size) {
					o.mark(occupied, size, gap)
					placed = true
					break
				}
			}
			if !placed {
				placedAll = false
				break
			}
		}
		if placedAll || restart == maxRestarts {
			return objs
		}
		scale *= 0.93
	}
}

// bounds returns the pixel rectangle [x0,x1)×[y0,y1) holding the outline grown by pad.
func (o *object) bounds(size int, pad float64) (x0, y0, x1, y1 int) {
	x0 = max(0, int(math.Floor(o.cx+o.halfMinX-pad)))
	y0 = max(0, int(math.Floor(o.cy+o.halfMinY-pad)))
	x1 = min(size, int(math.Ceil(o.cx+o.halfMaxX+pad))+1)
	y1 = min(size, int(math.Ceil(o.cy+o.halfMaxY+pad))+1)
	return
}

// collides reports whether any pixel inside the outline is already occupied.
func (o *object) collides(occupied []bool, size int) bool {
	x0, y0, x1, y1 := o.bounds(size, 0)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if occupied[y*size+x] {
				if d, _ := o.distance(float64(x)+0.5, float64(y)+0.5); d < 0 {
					return true
				}
			}
		}
	}
	return false
}

// mark occupies every pixel within gap of the outline.
func (o *object) mark(occupied []bool, size int, gap float64) {
	x0, y0, x1, y1 := o.bounds(size, gap)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			if d, _ := o.distance(float64(x)+0.5, float64(y)+0.5); d < gap {
				occupied[y*size+x] = true
			}
		}
	}
}
