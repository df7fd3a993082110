package synth

import (
	"math"
	"math/rand/v2"
)

// object is one of the main objects of an image: a star-shaped region around
// (cx, cy) whose boundary lies at scale·radius(θ) in the object's own frame,
// which is rotated against the image axes by the angle with cosine cos and
// sine sin.
type object struct {
	cx, cy   float64
	cos, sin float64 // of the rotation
	scale    float64 // shrink factor applied when a crowded cluster must be re-placed
	shape    Shape
	a, b     float64      // Round: a = radius; Elongated: semi-axes a ≥ b
	wobble   [4]float64   // Round: sin and cos coefficients of the 2nd and 3rd harmonics
	star     []float64    // Irregular: radius at 2n vertices, alternating outer/inner
	starRot  float64      // Irregular: angle of the first vertex
	rim      [][2]float64 // outline samples relative to the centre, image axes
	halfMinX float64      // extent of the outline relative to the centre, image axes
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
		o.a = unit * (4.3 + 1.0*rng.Float64())
		a2, p2 := 0.05*rng.Float64(), 2*math.Pi*rng.Float64()
		a3, p3 := 0.04*rng.Float64(), 2*math.Pi*rng.Float64()
		o.wobble = [4]float64{a2 * math.Cos(p2), a2 * math.Sin(p2), a3 * math.Cos(p3), a3 * math.Sin(p3)}
	case Elongated:
		o.a = unit * (7.0 + 1.3*rng.Float64())
		o.b = unit * (2.4 + 0.5*rng.Float64())
	case Irregular:
		n := 5 + rng.IntN(2)
		outer := unit * (6.2 + 1.0*rng.Float64())
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

// radius returns the boundary radius, before scaling, in the direction
// (c, s) = (cos θ, sin θ) of the object's frame.
func (o *object) radius(c, s float64) float64 {
	switch o.shape {
	case Round:
		// sin(kθ+φ) expanded with the multiple-angle formulas, to avoid trigonometry.
		w := o.wobble
		sin2, cos2 := 2*s*c, c*c-s*s
		sin3, cos3 := s*(3-4*s*s), c*(4*c*c-3)
		return o.a * (1 + w[0]*sin2 + w[1]*cos2 + w[2]*sin3 + w[3]*cos3)
	case Elongated:
		return o.a * o.b / math.Sqrt(o.b*o.b*c*c+o.a*o.a*s*s)
	default:
		n := len(o.star)
		t := math.Atan2(s, c) - o.starRot
		for t < 0 {
			t += 2 * math.Pi
		}
		f := t / (2 * math.Pi) * float64(n)
		i := int(f)
		frac := f - float64(i)
		i %= n
		return o.star[i] + (o.star[(i+1)%n]-o.star[i])*frac
	}
}

// rimPoints is the number of outline samples kept for extents and spacing.
const rimPoints = 64

// measure samples the scaled outline into rim and records its extent along
// the image axes.
func (o *object) measure() {
	o.halfMinX, o.halfMaxX, o.halfMinY, o.halfMaxY = 0, 0, 0, 0
	if o.rim == nil {
		o.rim = make([][2]float64, rimPoints)
	}
	for k := range o.rim {
		theta := 2 * math.Pi * (float64(k) + 0.5) / rimPoints
		c, sn := math.Cos(theta), math.Sin(theta)
		r := o.radius(c, sn) * o.scale
		lx, ly := r*c, r*sn
		x := lx*o.cos - ly*o.sin
		y := lx*o.sin + ly*o.cos
		o.rim[k] = [2]float64{x, y}
		o.halfMinX, o.halfMaxX = min(o.halfMinX, x), max(o.halfMaxX, x)
		o.halfMinY, o.halfMaxY = min(o.halfMinY, y), max(o.halfMaxY, y)
	}
}

// distance returns an approximate signed distance in pixels from (x, y) to the
// outline (negative inside), measured along the ray from the centre, and the
// distance from the centre as a fraction of the boundary radius in that
// direction (0 at the centre, 1 on the outline).
func (o *object) distance(x, y float64) (d, rel float64) {
	dx, dy := x-o.cx, y-o.cy
	lx := dx*o.cos + dy*o.sin
	ly := -dx*o.sin + dy*o.cos
	dist := math.Sqrt(lx*lx + ly*ly)
	if dist == 0 {
		lx, dist = 1e-9, 1e-9
	}
	r := o.radius(lx/dist, ly/dist) * o.scale
	return dist - r, dist / r
}

// near reports whether (x, y) lies within pad of the outline's bounding box.
func (o *object) near(x, y, pad float64) bool {
	return x >= o.cx+o.halfMinX-pad && x <= o.cx+o.halfMaxX+pad &&
		y >= o.cy+o.halfMinY-pad && y <= o.cy+o.halfMaxY+pad
}

// tooClose reports whether the outlines of o and p come within gap of each
// other or overlap, testing sampled outline points of each against the other.
func (o *object) tooClose(p *object, gap float64) bool {
	if o.cx+o.halfMaxX+gap < p.cx+p.halfMinX || p.cx+p.halfMaxX+gap < o.cx+o.halfMinX ||
		o.cy+o.halfMaxY+gap < p.cy+p.halfMinY || p.cy+p.halfMaxY+gap < o.cy+o.halfMinY {
		return false // bounding boxes further apart than gap
	}
	for _, pair := range [2][2]*object{{o, p}, {p, o}} {
		a, b := pair[0], pair[1]
		if d, _ := b.distance(a.cx, a.cy); d < gap {
			return true
		}
		for _, q := range a.rim {
			x, y := a.cx+q[0], a.cy+q[1]
			if !b.near(x, y, gap) {
				continue
			}
			if d, _ := b.distance(x, y); d < gap {
				return true
			}
		}
	}
	return false
}

// placeObjects draws a.Count objects of shape a.Shape and places them,
// without touching, inside the quadrant a.Position. The placement region
// reaches slightly past the image centre when there are several objects, to
// leave room for them, but the centroid of the object centres always lies at
// least 8% of the image size away from both centre lines, inside the quadrant.
func placeObjects(rng *rand.Rand, a Attributes, size int) []object {
	s := float64(size)
	unit := s / 48
	objs := make([]object, a.Count)
	for i := range objs {
		objs[i] = newObject(rng, a.Shape, unit)
	}
	lo, hi := 0.04*s, []float64{0, 0.50, 0.56, 0.60}[a.Count]*s
	x0, x1, y0, y1 := lo, hi, lo, hi
	if a.Position.Right() {
		x0, x1 = s-hi, s-lo
	}
	if a.Position.Lower() {
		y0, y1 = s-hi, s-lo
	}
	gap := 3 * unit
	const (
		triesPerObject   = 60
		attemptsPerScale = 4
		maxAttempts      = 48 // the last one ignores collisions; scale is then 0.93¹²≈0.42
	)
	for attempt := 0; ; attempt++ {
		scale := math.Pow(0.93, float64(attempt/attemptsPerScale))
		last := attempt == maxAttempts
		placedAll := true
		var sumX, sumY float64
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
				clash := false
				for j := range i {
					if !last && o.tooClose(&objs[j], gap) {
						clash = true
						break
					}
				}
				if !clash {
					placed = true
					break
				}
			}
			if !placed {
				placedAll = false
				break
			}
			sumX, sumY = sumX+o.cx, sumY+o.cy
		}
		n := float64(len(objs))
		centred := placedAll &&
			offCentre(sumX/n, s, a.Position.Right()) &&
			offCentre(sumY/n, s, a.Position.Lower())
		if centred || last {
			return objs
		}
	}
}

// offCentre reports whether coordinate v lies on the requested side of the
// image centre, at least 8% of the image size s away from it.
func offCentre(v, s float64, far bool) bool {
	if far {
		return v >= 0.58*s
	}
	return v <= 0.42*s
}
