// Package probe fits linear probes: multinomial logistic regression on frozen
// image features, with the L2 strength chosen on a validation split, as the
// CLIP paper's linear-probe evaluation does (it swept scikit-learn's C on a
// validation split, then refitted on train + validation).
//
//	model, sweep, err := probe.Fit(ctx, train, val, numClasses, probe.Options{})
//	logits, err := model.Logits(testFeatures, n)
//
// Features are standardised per dimension with the fitting data's mean and
// standard deviation (kept in the Model), which makes one L2 grid suit
// encoders of any feature scale. The objective is the mean cross-entropy
// plus λ/2·‖W‖² (the bias is not penalised), minimised with L-BFGS (matrix
// work on gonum) from zero weights (or, along the sweep, from the previous strength's
// solution). Everything is deterministic.
package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// DefaultLambdas is the L2 grid Fit sweeps when Options.Lambdas is empty:
// decades from 1e-6 to 10, refined by half a decade around the best.
var DefaultLambdas = []float64{1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10}

// DefaultMaxIterations bounds each L-BFGS fit.
const DefaultMaxIterations = 500

// Data is a labelled feature matrix.
type Data struct {
	X   []float32 // [N, Dim], row-major
	Dim int
	Y   []int // class of each row, in [0, numClasses)
}

// Len is the number of rows.
func (d Data) Len() int {
	if d.Dim == 0 {
		return 0
	}
	return len(d.X) / d.Dim
}

// Subset returns the rows idx, in that order.
func (d Data) Subset(idx []int) Data {
	out := Data{Dim: d.Dim, X: make([]float32, 0, len(idx)*d.Dim), Y: make([]int, 0, len(idx))}
	for _, i := range idx {
		out.X = append(out.X, d.X[i*d.Dim:(i+1)*d.Dim]...)
		out.Y = append(out.Y, d.Y[i])
	}
	return out
}

func (d Data) check(numClasses int) error {
	if d.Dim <= 0 || len(d.X)%d.Dim != 0 {
		return fmt.Errorf("probe data: %d values do not form rows of %d", len(d.X), d.Dim)
	}
	if d.Len() == 0 {
		return errors.New("probe data: no rows")
	}
	if len(d.Y) != d.Len() {
		return fmt.Errorf("probe data: %d labels for %d rows", len(d.Y), d.Len())
	}
	for i, y := range d.Y {
		if y < 0 || y >= numClasses {
			return fmt.Errorf("probe data: row %d has class %d, outside [0, %d)", i, y, numClasses)
		}
	}
	return nil
}

// Options configure Fit and Train. Zero values take the defaults.
type Options struct {
	// Lambdas are the L2 strengths to try; empty means DefaultLambdas plus
	// a half-decade refinement around the best.
	Lambdas []float64
	// MaxIterations bounds each fit's L-BFGS iterations.
	MaxIterations int
}

// Model is a fitted probe.
type Model struct {
	Dim, Classes int
	// Mean and Scale standardise a feature: (x - Mean) · Scale.
	Mean, Scale []float64
	// W is [Dim, Classes] row-major; B is [Classes].
	W, B []float64
	// Lambda is the L2 strength it was fitted with.
	Lambda float64
	// Iterations is the number of L-BFGS iterations the fit took.
	Iterations int
}

// Logits returns the scores [n, Classes] of n feature rows [n, Dim].
func (m *Model) Logits(x []float32, n int) ([]float32, error) {
	if len(x) != n*m.Dim {
		return nil, fmt.Errorf("probe logits: got %d values, want %d rows × %d", len(x), n, m.Dim)
	}
	out := make([]float32, n*m.Classes)
	z := make([]float64, m.Classes)
	for r := range n {
		copy(z, m.B)
		for i, v := range x[r*m.Dim : (r+1)*m.Dim] {
			s := (float64(v) - m.Mean[i]) * m.Scale[i]
			for c, w := range m.W[i*m.Classes : (i+1)*m.Classes] {
				z[c] += s * w
			}
		}
		for c, v := range z {
			out[r*m.Classes+c] = float32(v)
		}
	}
	return out, nil
}

// Accuracy is the fraction of d's rows whose top logit is their class (ties
// to the lower class index).
func (m *Model) Accuracy(d Data) (float64, error) {
	logits, err := m.Logits(d.X, d.Len())
	if err != nil {
		return 0, err
	}
	hits := 0
	for r, y := range d.Y {
		row := logits[r*m.Classes : (r+1)*m.Classes]
		best := 0
		for c, v := range row {
			if v > row[best] {
				best = c
			}
		}
		if best == y {
			hits++
		}
	}
	return float64(hits) / float64(len(d.Y)), nil
}

// Sweep records the L2 search.
type Sweep struct {
	// Lambdas were tried in this order; Accuracy[i] is the validation
	// top-1 accuracy of Lambdas[i].
	Lambdas  []float64 `json:"l2"`
	Accuracy []float64 `json:"val_acc1"`
	// Best is the strength chosen (highest validation accuracy; ties go to
	// the stronger regularisation).
	Best float64 `json:"best_l2"`
}

// Fit sweeps the L2 strengths, fitting on train and scoring on val, then
// refits on train and val together with the best strength and returns that
// model.
func Fit(ctx context.Context, train, val Data, numClasses int, opt Options) (*Model, Sweep, error) {
	var sweep Sweep
	if err := train.check(numClasses); err != nil {
		return nil, sweep, fmt.Errorf("train split: %w", err)
	}
	if err := val.check(numClasses); err != nil {
		return nil, sweep, fmt.Errorf("validation split: %w", err)
	}
	if val.Dim != train.Dim {
		return nil, sweep, fmt.Errorf("validation features have %d dimensions, training %d", val.Dim, train.Dim)
	}
	grid := slices.Clone(opt.Lambdas)
	refine := len(grid) == 0
	if refine {
		grid = slices.Clone(DefaultLambdas)
	}
	// Strong to weak, each fit starting from the last: the solutions move
	// gradually, so warm starts save most iterations.
	slices.SortFunc(grid, func(a, b float64) int { return -cmpFloat(a, b) })
	grid = slices.Compact(grid)
	var prev *Model
	try := func(lambda float64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := Train(train, numClasses, lambda, opt, prev)
		if err != nil {
			return err
		}
		acc, err := m.Accuracy(val)
		if err != nil {
			return err
		}
		prev = m
		sweep.Lambdas = append(sweep.Lambdas, lambda)
		sweep.Accuracy = append(sweep.Accuracy, acc)
		return nil
	}
	for _, l := range grid {
		if err := try(l); err != nil {
			return nil, sweep, err
		}
	}
	best := pick(sweep)
	if refine {
		for _, l := range []float64{best * math.Sqrt(10), best / math.Sqrt(10)} {
			if err := try(l); err != nil {
				return nil, sweep, err
			}
		}
		best = pick(sweep)
	}
	sweep.Best = best
	all := Data{Dim: train.Dim, X: slices.Concat(train.X, val.X), Y: slices.Concat(train.Y, val.Y)}
	m, err := Train(all, numClasses, best, opt, nil)
	return m, sweep, err
}

// pick returns the strength with the best accuracy, the larger on ties.
func pick(s Sweep) float64 {
	best := 0
	for i := range s.Lambdas {
		if s.Accuracy[i] > s.Accuracy[best] || (s.Accuracy[i] == s.Accuracy[best] && s.Lambdas[i] > s.Lambdas[best]) {
			best = i
		}
	}
	return s.Lambdas[best]
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Train fits one probe with L2 strength lambda. init, when not nil and of
// the same shape, is the starting point (its standardisation is recomputed
// from d, so only use it for the same data).
func Train(d Data, numClasses int, lambda float64, opt Options, init *Model) (*Model, error) {
	if err := d.check(numClasses); err != nil {
		return nil, err
	}
	if !(lambda >= 0) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("probe: L2 strength %v must be finite and non-negative", lambda)
	}
	if opt.MaxIterations <= 0 {
		opt.MaxIterations = DefaultMaxIterations
	}
	n, dim, c := d.Len(), d.Dim, numClasses
	m := &Model{Dim: dim, Classes: c, Lambda: lambda, Mean: make([]float64, dim), Scale: make([]float64, dim)}
	x := standardise(d, m.Mean, m.Scale)
	obj := &objective{x: x, y: d.Y, n: n, dim: dim, c: c, lambda: lambda}
	start := make([]float64, dim*c+c)
	if init != nil && init.Dim == dim && init.Classes == c {
		copy(start, init.W)
		copy(start[dim*c:], init.B)
	}
	f, iters := lbfgs(obj.eval, start, opt.MaxIterations)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("probe: L-BFGS with L2 %g diverged (loss %v)", lambda, f)
	}
	m.W = slices.Clone(start[:dim*c])
	m.B = slices.Clone(start[dim*c:])
	m.Iterations = iters
	return m, nil
}

// standardise returns d's rows as a matrix with each column centred and
// scaled to unit standard deviation, filling mean and scale.
func standardise(d Data, mean, scale []float64) *mat.Dense {
	n, dim := d.Len(), d.Dim
	x := mat.NewDense(n, dim, nil)
	for r := range n {
		for i, v := range d.X[r*dim : (r+1)*dim] {
			x.Set(r, i, float64(v))
			mean[i] += float64(v)
		}
	}
	for i := range mean {
		mean[i] /= float64(n)
	}
	vars := make([]float64, dim)
	for r := range n {
		for i := range dim {
			dv := x.At(r, i) - mean[i]
			vars[i] += dv * dv
		}
	}
	for i, v := range vars {
		sd := math.Sqrt(v / float64(n))
		scale[i] = 1
		if sd > 1e-12 {
			scale[i] = 1 / sd
		}
	}
	for r := range n {
		for i := range dim {
			x.Set(r, i, (x.At(r, i)-mean[i])*scale[i])
		}
	}
	return x
}

// L-BFGS settings: remembered curvature pairs, the Armijo constant, and the
// stopping thresholds (gradient max-norm; relative loss decrease).
const (
	lbfgsMemory   = 10
	armijo        = 1e-4
	gradTolerance = 1e-6
	lossTolerance = 1e-10
)

// lbfgs minimises f in place from x with limited-memory BFGS (the two-loop
// recursion) and a backtracking line search on the Armijo condition; f
// returns the value at x and writes the gradient into g. It stops at
// maxIter iterations, a gradient below gradTolerance, a relative decrease
// below lossTolerance, or a line search that finds no decrease, and returns
// the last value and the iterations taken. gonum's optimize package would
// do, but it drags in a module this repository does not carry.
func lbfgs(f func(x, g []float64) float64, x []float64, maxIter int) (float64, int) {
	n := len(x)
	g := make([]float64, n)
	fx := f(x, g)
	var ss, ys [][]float64
	var rhos []float64
	dir, xNew, gNew := make([]float64, n), make([]float64, n), make([]float64, n)
	alpha := make([]float64, lbfgsMemory)
	for iter := 0; iter < maxIter; iter++ {
		if floats.Norm(g, math.Inf(1)) < gradTolerance {
			return fx, iter
		}
		// dir = -H·g by the two-loop recursion.
		copy(dir, g)
		for i := len(ss) - 1; i >= 0; i-- {
			alpha[i] = rhos[i] * floats.Dot(ss[i], dir)
			floats.AddScaled(dir, -alpha[i], ys[i])
		}
		if k := len(ss) - 1; k >= 0 {
			floats.Scale(floats.Dot(ss[k], ys[k])/floats.Dot(ys[k], ys[k]), dir)
		} else {
			floats.Scale(1/max(floats.Norm(g, 2), 1), dir) // first step: at most unit length
		}
		for i := range ss {
			beta := rhos[i] * floats.Dot(ys[i], dir)
			floats.AddScaled(dir, alpha[i]-beta, ss[i])
		}
		floats.Scale(-1, dir)
		slope := floats.Dot(g, dir)
		if slope >= 0 { // not a descent direction: restart from the gradient
			ss, ys, rhos = nil, nil, nil
			copy(dir, g)
			floats.Scale(-1/max(floats.Norm(g, 2), 1), dir)
			slope = floats.Dot(g, dir)
		}
		step, fNew := 1.0, 0.0
		found := false
		for range 40 {
			copy(xNew, x)
			floats.AddScaled(xNew, step, dir)
			fNew = f(xNew, gNew)
			if fNew <= fx+armijo*step*slope {
				found = true
				break
			}
			step /= 2
		}
		if !found {
			return fx, iter
		}
		s, y := make([]float64, n), make([]float64, n)
		floats.SubTo(s, xNew, x)
		floats.SubTo(y, gNew, g)
		if sy := floats.Dot(s, y); sy > 1e-12 {
			if len(ss) == lbfgsMemory {
				ss, ys, rhos = ss[1:], ys[1:], rhos[1:]
			}
			ss, ys, rhos = append(ss, s), append(ys, y), append(rhos, 1/sy)
		}
		copy(x, xNew)
		copy(g, gNew)
		decrease := fx - fNew
		fx = fNew
		if decrease <= lossTolerance*max(1, math.Abs(fx)) {
			return fx, iter + 1
		}
	}
	return fx, maxIter
}

// objective is the mean cross-entropy plus λ/2·‖W‖² over parameters laid out
// as W ([dim, c] row-major) then b ([c]).
type objective struct {
	x         *mat.Dense
	y         []int
	n, dim, c int
	lambda    float64
}

func (o *objective) eval(p, grad []float64) float64 {
	dc := o.dim * o.c
	w := mat.NewDense(o.dim, o.c, p[:dc])
	b := p[dc:]
	z := mat.NewDense(o.n, o.c, nil)
	z.Mul(o.x, w)
	loss := 0.0
	raw := z.RawMatrix()
	for r := range o.n {
		row := raw.Data[r*raw.Stride : r*raw.Stride+o.c]
		top := math.Inf(-1)
		for k := range row {
			row[k] += b[k]
			top = max(top, row[k])
		}
		sum := 0.0
		for k, v := range row {
			row[k] = math.Exp(v - top)
			sum += row[k]
		}
		y := o.y[r]
		loss += math.Log(sum) - (math.Log(row[y]))
		// row becomes (softmax - onehot) / n, the gradient of the mean loss
		// with respect to the logits.
		for k := range row {
			row[k] /= sum
		}
		row[y]--
		for k := range row {
			row[k] /= float64(o.n)
		}
	}
	reg := 0.0
	for _, v := range p[:dc] {
		reg += v * v
	}
	f := loss/float64(o.n) + o.lambda/2*reg
	g := grad
	clear(g)
	gw := mat.NewDense(o.dim, o.c, g[:dc])
	gw.Mul(o.x.T(), z)
	for i := range dc {
		g[i] += o.lambda * p[i]
	}
	for r := range o.n {
		for k := range o.c {
			g[dc+k] += raw.Data[r*raw.Stride+k]
		}
	}
	return f
}

// StratifiedSplit holds out about fraction of each class's examples (at
// least one, and never a class's only example), chosen with a PCG stream
// seeded by seed and the class, and returns the indices kept for fitting
// and those held out, each in increasing order.
func StratifiedSplit(y []int, fraction float64, seed uint64) (fit, held []int) {
	byClass := map[int][]int{}
	var classes []int
	for i, c := range y {
		if _, ok := byClass[c]; !ok {
			classes = append(classes, c)
		}
		byClass[c] = append(byClass[c], i)
	}
	slices.Sort(classes)
	for _, c := range classes {
		idx := byClass[c]
		k := int(math.Round(fraction * float64(len(idx))))
		if len(idx) >= 2 {
			k = min(max(k, 1), len(idx)-1)
		} else {
			k = 0
		}
		r := rand.New(rand.NewPCG(seed, uint64(c)+0x70726f6265)) // "probe"
		r.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		held = append(held, idx[:k]...)
		fit = append(fit, idx[k:]...)
	}
	slices.Sort(fit)
	slices.Sort(held)
	return fit, held
}
